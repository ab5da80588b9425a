package bedrock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/junctionhq/junction/internal/provider/upstream"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// apiError maps an error from the SDK, returned by an operation or read
// from an event stream, to an *llm.Error. It is the one place that knows
// Bedrock's error codes:
//
//   - once the caller's context is done, any failure is ctx.Err();
//   - a modelled Bedrock exception maps by its code, whether it came as an
//     HTTP answer or as an exception message inside an event stream;
//   - another non-2xx answer maps by its HTTP status, as for every upstream;
//   - a failure to reach or read from Bedrock is a transport error;
//   - an answer or event that cannot be parsed is upstream garbage.
func apiError(ctx context.Context, name string, err error) error {
	if ctx.Err() != nil {
		// Whatever failed, the caller has gone: the transport reports a
		// cancelled read in several ways, not all of them wrapping the
		// context's error.
		return ctx.Err()
	}

	var invalid smithy.InvalidParamsError
	if errors.As(err, &invalid) {
		// The SDK's own check of required fields, before sending; the
		// translation fills every field it can, so the request lacks one.
		e := llm.BadRequest("", "invalid Bedrock request: %s", invalid.Error())
		e.Provider, e.Err = name, err
		return e
	}

	var status int
	var header http.Header
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		status, header = re.Response.StatusCode, re.Response.Header
	}

	var api smithy.APIError
	if !errors.As(err, &api) {
		var op *smithy.OperationError
		switch {
		case status != 0 && (status < 200 || status > 299):
			// A non-2xx answer whose body was not an AWS error document.
			e := upstream.StatusError(name, status, header, "", "")
			e.Err = err
			return e
		case readFailure(err):
			return upstream.TransportError(ctx, name, err)
		case status != 0 || !errors.As(err, &op):
			// A 2xx answer the SDK could not parse, or an event stream
			// that failed with neither an exception nor a read error (bad
			// framing or checksum, an unparseable event): stream errors
			// are not wrapped in an OperationError.
			return upstream.Garbage(name, err)
		}
		// The SDK failed before an answer: the request was not sent, or
		// no connection was made.
		return upstream.TransportError(ctx, name, err)
	}

	code, msg := api.ErrorCode(), api.ErrorMessage()
	if msg == "" {
		msg = code
	}
	e := &llm.Error{Provider: name, Code: code, Err: err, Message: fmt.Sprintf("upstream answered %s: %s", code, msg)}
	switch code {
	case "ThrottlingException", "ModelNotReadyException", "ServiceQuotaExceededException":
		// ModelNotReady: the model is being brought up and will answer
		// later. ServiceQuotaExceeded: Junction's account quota, not the
		// client's request, is at fault, so another upstream may serve it.
		e.Status, e.Type = http.StatusTooManyRequests, llm.ErrRateLimit
		e.RetryAfter = header.Get("Retry-After")
	case "ValidationException":
		e.Status, e.Type = http.StatusBadRequest, llm.ErrInvalidRequest
		upstream.Classify(e, msg)
	case "ResourceNotFoundException":
		e.Status, e.Type = http.StatusNotFound, llm.ErrNotFound
	case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
		"ExpiredTokenException", "IncompleteSignatureException", "MissingAuthenticationTokenException":
		// The client's key is fine; Junction's AWS identity is not.
		e.Status, e.Type = http.StatusBadGateway, llm.ErrUpstream
		e.Message = fmt.Sprintf("upstream rejected Junction's credentials (%s): %s", code, msg)
	case "ModelTimeoutException":
		e.Status, e.Type = http.StatusGatewayTimeout, llm.ErrTimeout
	case "ServiceUnavailableException":
		e.Status, e.Type = http.StatusServiceUnavailable, llm.ErrOverloaded
		e.RetryAfter = header.Get("Retry-After")
	case "InternalServerException", "ModelErrorException", "ModelStreamErrorException":
		e.Status, e.Type = http.StatusBadGateway, llm.ErrUpstream
	default:
		if status == 0 {
			// An unmodelled exception inside an event stream.
			status = http.StatusInternalServerError
		}
		se := upstream.StatusError(name, status, header, msg, code)
		se.Err = err
		return se
	}
	return e
}

// readFailure reports whether err is a failure to connect to Bedrock or to
// read its answer, rather than a problem with what it sent.
func readFailure(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET)
}
