package bedrockwire

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// AWS error codes, sent in the X-Amzn-ErrorType header, that Junction's
// Bedrock runtime answers with.
const (
	CodeValidation         = "ValidationException"
	CodeAccessDenied       = "AccessDeniedException"
	CodeUnrecognizedClient = "UnrecognizedClientException"
	CodeResourceNotFound   = "ResourceNotFoundException"
	CodeThrottling         = "ThrottlingException"
	CodeQuotaExceeded      = "ServiceQuotaExceededException"
	CodeModelTimeout       = "ModelTimeoutException"
	CodeModelError         = "ModelErrorException"
	CodeServiceUnavailable = "ServiceUnavailableException"
	CodeInternalServer     = "InternalServerException"
)

// ErrorCode returns the AWS error code and HTTP status an error is
// answered with, before a stream starts:
//
//	invalid request, body too large  ValidationException          400
//	authentication                   e.Code (a SigV4 failure) or
//	                                 UnrecognizedClientException   403
//	permission                       AccessDeniedException         403
//	unknown model                    ResourceNotFoundException     404
//	rate limited (upstream or        ThrottlingException           429
//	  Junction's own limits)
//	hard budget exhausted            ServiceQuotaExceededException 400
//	upstream timeout                 ModelTimeoutException         408
//	upstream failed (unreachable,    ModelErrorException           424
//	  5xx, unparseable answer)
//	upstream overloaded              ServiceUnavailableException   503
//	Junction's own failure           InternalServerException       500
//
// ModelErrorException is Bedrock's own answer when the model's provider
// fails; the SDKs do not retry it, as Junction already has. An exhausted
// budget is ServiceQuotaExceededException, Bedrock's answer to a request
// past an account quota, which the SDKs do not retry either: only the
// budget's reset helps.
func ErrorCode(e *llm.Error) (code string, status int) {
	switch e.Type {
	case llm.ErrInvalidRequest, llm.ErrTooLarge:
		return CodeValidation, http.StatusBadRequest
	case llm.ErrAuthentication:
		if strings.HasSuffix(e.Code, "Exception") {
			return e.Code, http.StatusForbidden
		}
		return CodeUnrecognizedClient, http.StatusForbidden
	case llm.ErrPermission:
		if strings.HasSuffix(e.Code, "Exception") {
			return e.Code, http.StatusForbidden
		}
		return CodeAccessDenied, http.StatusForbidden
	case llm.ErrNotFound:
		return CodeResourceNotFound, http.StatusNotFound
	case llm.ErrRateLimit:
		return CodeThrottling, http.StatusTooManyRequests
	case llm.ErrBudgetExceeded:
		return CodeQuotaExceeded, http.StatusBadRequest
	case llm.ErrTimeout:
		return CodeModelTimeout, http.StatusRequestTimeout
	case llm.ErrUpstream:
		return CodeModelError, http.StatusFailedDependency
	case llm.ErrOverloaded:
		return CodeServiceUnavailable, http.StatusServiceUnavailable
	case llm.ErrInternal:
		return CodeInternalServer, http.StatusInternalServerError
	}
	if e.Status >= 400 && e.Status < 500 {
		return CodeValidation, http.StatusBadRequest
	}
	return CodeInternalServer, http.StatusInternalServerError
}

// StreamException returns the ConverseStream exception (the
// :exception-type header) for a failure after the stream started:
// throttling, serviceUnavailable, internalServer and validation as
// before a stream; any other upstream failure, a timeout included, is a
// modelStreamErrorException.
func StreamException(e *llm.Error) string {
	switch e.Type {
	case llm.ErrRateLimit:
		return "throttlingException"
	case llm.ErrOverloaded:
		return "serviceUnavailableException"
	case llm.ErrInternal:
		return "internalServerException"
	case llm.ErrInvalidRequest:
		return "validationException"
	}
	return "modelStreamErrorException"
}

// EncodeError returns the {"message": ...} body of an error; the message
// names the provider that failed, if one did.
func EncodeError(e *llm.Error) []byte {
	b, _ := json.Marshal(ErrorBody{Message: e.Public()})
	return b
}
