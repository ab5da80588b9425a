package hosting

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// Invocation is one SageMaker-runtime InvokeEndpoint call, as the runtime
// surface parsed it: the endpoint, the optional target variant, and what
// passes through to the model server verbatim.
type Invocation struct {
	Endpoint string
	// TargetVariant is X-Amzn-SageMaker-Target-Variant; empty lets the
	// endpoint choose by weight.
	TargetVariant string
	// ContentType and Accept pass through to the container.
	ContentType, Accept string
	// TargetModel is X-Amzn-SageMaker-Target-Model: the model of a
	// multi-model endpoint to invoke, a path under its model data prefix.
	TargetModel string
	// CustomAttributes is X-Amzn-SageMaker-Custom-Attributes, forwarded
	// verbatim.
	CustomAttributes string
	// InferenceID is X-Amzn-SageMaker-Inference-Id, recorded with the call.
	InferenceID string
	Body        []byte
	// Timeout bounds the wait on the model server: for its answer, or
	// for a stream to begin. Zero means none but the caller's context.
	Timeout time.Duration
}

// Result is a model server's answer to an invocation.
type Result struct {
	// Variant is the production variant that served the call.
	Variant string
	// Instance is the instance that served it (for logs and the ledger).
	Instance string
	// ContentType is the container's Content-Type.
	ContentType string
	// CustomAttributes is the container's X-Amzn-SageMaker-Custom-Attributes.
	CustomAttributes string
	Body             []byte
	// ModelLatency is the time the model server took: from sending the
	// request to the instance until its answer was read.
	ModelLatency time.Duration
}

// StreamResult is a model server's streamed answer: the body is read as it
// arrives and closed by the caller.
type StreamResult struct {
	Variant, Instance, ContentType, CustomAttributes string
	Body                                             io.ReadCloser
	// model is the time spent waiting on the model server; nil where
	// the body is not a model server's.
	model *atomic.Int64
}

// ModelLatency is the time the model server has taken so far: from
// sending the request to the instance until its answer began, plus every
// wait in the Body's Read for the next part of it. Time the caller spends
// between reads (writing to its own client) is not the model's. Read it
// once the Body has ended; zero where it is not a model server's.
func (r *StreamResult) ModelLatency() time.Duration {
	if r.model == nil {
		return 0
	}
	return time.Duration(r.model.Load())
}

// Error codes, as the SageMaker runtime API names its errors.
const (
	ErrValidation         = "ValidationError"
	ErrModel              = "ModelError"
	ErrModelNotReady      = "ModelNotReadyException"
	ErrServiceUnavailable = "ServiceUnavailable"
	ErrInternalFailure    = "InternalFailure"
)

// Error is a failed invocation in the SageMaker runtime's terms. The
// runtime surface writes it in AWS's error shape.
type Error struct {
	// Status is the HTTP status the client sees: 400, 424, 429, 500, 503.
	Status int
	// Code is one of the Err constants.
	Code    string
	Message string
	// OriginalStatus and OriginalMessage are the container's own status
	// and body, for ModelError.
	OriginalStatus  int
	OriginalMessage string
	// Variant is the variant that failed, when one was chosen.
	Variant string
	// RetryAfter is the Retry-After the client is sent, in seconds, for
	// an error it should retry (a 503 of an endpoint not ready yet).
	RetryAfter string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// LLM is e in Junction's one error taxonomy, for every surface but the
// SageMaker runtime (which writes e in AWS's shape): the status keeps its
// meaning, the SageMaker code is kept as the Code, and e is the cause.
// Hosting's errors are mapped here and nowhere else.
func (e *Error) LLM() *llm.Error {
	typ := llm.ErrInternal
	switch {
	case e.Status == http.StatusNotFound:
		typ = llm.ErrNotFound
	case e.Status == http.StatusConflict:
		typ = llm.ErrConflict
	case e.Status == http.StatusRequestEntityTooLarge:
		typ = llm.ErrTooLarge
	case e.Status == http.StatusFailedDependency:
		typ = llm.ErrUpstream
	case e.Status == http.StatusTooManyRequests:
		typ = llm.ErrRateLimit
	case e.Status == http.StatusServiceUnavailable:
		typ = llm.ErrOverloaded
	case e.Status == http.StatusGatewayTimeout:
		typ = llm.ErrTimeout
	case e.Status >= 400 && e.Status < 500:
		typ = llm.ErrInvalidRequest
	}
	status := e.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	return &llm.Error{Status: status, Type: typ, Message: e.Message, Code: e.Code, RetryAfter: e.RetryAfter, Err: e}
}

// Validation returns a 400 ValidationError.
func Validation(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: ErrValidation, Message: fmt.Sprintf(format, args...)}
}

// Unavailable returns a 503 ServiceUnavailable.
func Unavailable(format string, args ...any) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: ErrServiceUnavailable, Message: fmt.Sprintf(format, args...)}
}

// unavailable returns a 503 ServiceUnavailable the client should retry
// in a second: the endpoint exists and will take the call shortly.
func unavailable(format string, args ...any) *Error {
	e := Unavailable(format, args...)
	e.RetryAfter = "1"
	return e
}

// ErrTimedOut is the cause of an invocation's context that ended because
// the model server did not answer within the invocation's timeout.
var ErrTimedOut = errors.New("hosting: the invocation timed out")

// TimedOut is the ModelError of an invocation the model server did not
// answer within limit, worded as SageMaker words it: a server error with
// status 0, since the container never sent one.
func TimedOut(variant string, limit time.Duration) *Error {
	return ModelFailed(variant, 0, fmt.Sprintf(
		"Your invocation timed out while waiting for a response from container %s: it did not answer within %s, Junction's invocation timeout.",
		variant, limit))
}

// ModelFailed returns a 424 ModelError carrying the container's status and
// message, worded as SageMaker words it.
func ModelFailed(variant string, status int, body string) *Error {
	return &Error{Status: http.StatusFailedDependency, Code: ErrModel, Variant: variant,
		Message:        fmt.Sprintf("Received server error (%d) from %s with message %q.", status, variant, body),
		OriginalStatus: status, OriginalMessage: body}
}
