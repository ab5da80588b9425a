package sagemaker

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/auth/sigv4"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Error codes this surface answers with besides the runtime's own
// (hosting's Err constants) and SigV4's (sigv4's Code constants).
const (
	// CodeAccessDenied answers a key that may not call the runtime.
	CodeAccessDenied = "AccessDeniedException"
	// CodeUnknownOperation answers a path under /endpoints/ that is not
	// one of the operations served.
	CodeUnknownOperation = "UnknownOperationException"
)

// Codes of a ModelStreamError event, as SageMaker documents them.
const (
	// StreamTimeExceeded: the model server stopped sending parts for
	// longer than the invocation timeout.
	StreamTimeExceeded = "ModelInvocationTimeExceeded"
	// StreamBroken: the connection to the model server was reset or
	// closed before the answer ended.
	StreamBroken = "StreamBroken"
)

// codeStatus is the HTTP status of each runtime error code, from the
// runtime's service model (the @httpError trait the SDKs are generated
// from). The SDKs pick the error type by its code, not its status, but a
// client that looks at the status sees what SageMaker would send.
var codeStatus = map[string]int{
	hosting.ErrValidation:         http.StatusBadRequest,
	hosting.ErrModel:              http.StatusFailedDependency,
	hosting.ErrModelNotReady:      http.StatusTooManyRequests,
	hosting.ErrInternalFailure:    http.StatusInternalServerError,
	hosting.ErrServiceUnavailable: http.StatusServiceUnavailable,
	hosting.ErrThrottling:         http.StatusTooManyRequests,
}

// wireError is an error as the runtime writes it: a status, the code in
// X-Amzn-ErrorType, and a JSON body holding the error shape's members.
type wireError struct {
	status int
	code   string
	body   errorBody
	// retryAfter is the Retry-After header, when the client should retry.
	retryAfter string
}

// errorBody is an error's JSON body. The keys are the member names of the
// runtime's error shapes, capitalised as the model spells them: the SDKs
// fill a typed error's fields by exact member name, so {"message": ...}
// would leave ModelError.Message empty.
type errorBody struct {
	Message string `json:"Message"`
	// OriginalStatusCode and OriginalMessage are ModelError's: the model
	// server's own status and body. Present on every ModelError, 0 and ""
	// when the server never answered.
	OriginalStatusCode *int    `json:"OriginalStatusCode,omitempty"`
	OriginalMessage    *string `json:"OriginalMessage,omitempty"`
}

// fromHosting maps a failed invocation to the wire. A known code keeps
// its model status whatever e.Status says; an unknown or missing code is
// derived from e.Status, and anything not a client error becomes an
// InternalFailure, so that the SDKs always find a type they know.
func fromHosting(e *hosting.Error) wireError {
	code := e.Code
	status, ok := codeStatus[code]
	if !ok {
		code = codeFor(e.Status)
		status = codeStatus[code]
	}
	we := wireError{status: status, code: code, body: errorBody{Message: e.Message}, retryAfter: e.RetryAfter}
	if code == hosting.ErrModel {
		os, om := e.OriginalStatus, e.OriginalMessage
		we.body.OriginalStatusCode, we.body.OriginalMessage = &os, &om
	}
	return we
}

// codeFor is the runtime error code of a status, for an error that
// came without a known code.
func codeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return hosting.ErrValidation
	case http.StatusFailedDependency:
		return hosting.ErrModel
	case http.StatusTooManyRequests:
		return hosting.ErrModelNotReady
	case http.StatusServiceUnavailable:
		return hosting.ErrServiceUnavailable
	}
	return hosting.ErrInternalFailure
}

// fromAPI maps the errors api.AWSAuth answers with: an authentication
// failure keeps AWS's code for it (InvalidSignatureException and the
// rest) with 403, as every AWS service sends them; a refused permission
// is AccessDeniedException; another client error (a bad X-Junction-Tags
// header) a ValidationError.
func fromAPI(e *llm.Error) wireError {
	switch e.Type {
	case llm.ErrAuthentication:
		code := e.Code
		if !strings.HasSuffix(code, "Exception") {
			code = sigv4.CodeUnrecognizedClient
		}
		return wireError{status: http.StatusForbidden, code: code, body: errorBody{Message: e.Message}}
	case llm.ErrPermission:
		return wireError{status: http.StatusForbidden, code: CodeAccessDenied, body: errorBody{Message: e.Message}}
	}
	if e.Status >= 400 && e.Status < 500 {
		return fromHosting(hosting.Validation("%s", e.Message))
	}
	if e.Status == http.StatusServiceUnavailable {
		return fromHosting(hosting.Unavailable("%s", e.Message))
	}
	return fromHosting(&hosting.Error{Code: hosting.ErrInternalFailure, Message: e.Message})
}

// internalFailure is the answer to an error that is not a *hosting.Error:
// a fault in Junction, whose detail goes to the log, not the client.
func internalFailure(endpoint, requestID string) *hosting.Error {
	return &hosting.Error{Status: http.StatusInternalServerError, Code: hosting.ErrInternalFailure,
		Message: fmt.Sprintf("An internal failure occurred while invoking endpoint %s; the request id %s finds it in Junction's log.", endpoint, requestID)}
}

// writeError writes e: the code in X-Amzn-ErrorType, the request id in
// x-amzn-RequestId and the members as JSON.
func writeError(w http.ResponseWriter, r *http.Request, e wireError) {
	setRequestID(w, r)
	h := w.Header()
	h.Set("X-Amzn-Errortype", e.code)
	if e.retryAfter != "" {
		h.Set("Retry-After", e.retryAfter)
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	b, _ := json.Marshal(e.body)
	w.Write(b)
}

// setRequestID sets x-amzn-RequestId, which the AWS SDKs report as the
// request id; it is Junction's X-Request-Id.
func setRequestID(w http.ResponseWriter, r *http.Request) {
	if id := api.InfoFrom(r.Context()).RequestID; id != "" {
		w.Header().Set("X-Amzn-Requestid", id)
	}
}

// asHosting returns err's *hosting.Error, if it carries one.
func asHosting(err error) (*hosting.Error, bool) {
	var he *hosting.Error
	ok := errors.As(err, &he)
	return he, ok
}
