package llm

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrorType classifies an error independent of any one API's vocabulary.
// Each inbound surface maps these to its own error shape in one place.
type ErrorType string

// Error types.
const (
	ErrInvalidRequest ErrorType = "invalid_request_error"
	ErrAuthentication ErrorType = "authentication_error"
	ErrPermission     ErrorType = "permission_error"
	ErrNotFound       ErrorType = "not_found_error"
	ErrTooLarge       ErrorType = "request_too_large"
	ErrRateLimit      ErrorType = "rate_limit_error"
	ErrUpstream       ErrorType = "upstream_error"
	ErrTimeout        ErrorType = "timeout_error"
	ErrInternal       ErrorType = "internal_error"
	ErrOverloaded     ErrorType = "overloaded_error"
	// ErrConflict is a change the current state refuses (a resource in
	// use); it may succeed once that state changes.
	ErrConflict ErrorType = "conflict_error"
	// ErrContextWindow is a request too long for the model's context
	// window; a model with a larger one may serve it.
	ErrContextWindow ErrorType = "context_length_exceeded"
	// ErrContentPolicy is a request the upstream refused on content
	// policy; another provider may serve it.
	ErrContentPolicy ErrorType = "content_policy_violation"
	// ErrBudgetExceeded is a request a hard spending budget cannot cover
	// until it resets. The value is OpenAI's type for an exhausted quota.
	ErrBudgetExceeded ErrorType = "insufficient_quota"
)

// ErrMalformedEvent is wrapped by the error a stream returns for one event
// it could not parse (invalid JSON). The stream may be read on after it:
// the gateway skips such an event unless told to be strict.
var ErrMalformedEvent = errors.New("malformed stream event")

// Error is an error with an HTTP status and a meaning, raised by the
// gateway itself or translated from an upstream's answer.
type Error struct {
	// Status is the HTTP status the client should receive.
	Status int
	Type   ErrorType
	// Message says what happened and, for client errors, what to fix.
	Message string
	// Param names the offending request field, when there is one.
	Param string
	// Provider names the upstream that failed, when one did.
	Provider string
	// Code is the upstream's own error code or type, when it gave one.
	Code string
	// RetryAfter is the upstream's Retry-After value, passed on to clients.
	RetryAfter string
	// Err is the underlying cause, if any; it is never shown to clients.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Provider != "" {
		return fmt.Sprintf("%s: %s", e.Provider, e.Message)
	}
	return e.Message
}

// Public is the message clients see: the message, naming the provider
// when one failed.
func (e *Error) Public() string {
	if e.Provider != "" {
		return "provider " + e.Provider + ": " + e.Message
	}
	return e.Message
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given status and type.
func Errorf(status int, typ ErrorType, format string, args ...any) *Error {
	return &Error{Status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
}

// BadRequest returns a 400 invalid-request error naming the field param.
func BadRequest(param, format string, args ...any) *Error {
	e := Errorf(http.StatusBadRequest, ErrInvalidRequest, format, args...)
	e.Param = param
	return e
}

// AsError returns err as an *Error, wrapping unknown errors as 500s.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Status: http.StatusInternalServerError, Type: ErrInternal, Message: "internal error", Err: err}
}

// Retryable reports whether a call that failed with err may succeed if
// sent again, possibly to another upstream.
func Retryable(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Type {
	case ErrRateLimit, ErrUpstream, ErrTimeout, ErrOverloaded:
		return true
	}
	return e.Status >= 500
}
