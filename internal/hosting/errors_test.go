package hosting

import (
	"errors"
	"net/http"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// Hosting's errors reach every surface but SageMaker's as llm.Errors,
// mapped in one place: the status keeps its meaning, the SageMaker code
// and Retry-After go along, and the hosting error stays the cause.
func TestErrorInTheOneTaxonomy(t *testing.T) {
	for _, tc := range []struct {
		in     *Error
		status int
		typ    llm.ErrorType
	}{
		{Validation("bad"), http.StatusBadRequest, llm.ErrInvalidRequest},
		{notFound("endpoint", "x"), http.StatusNotFound, llm.ErrNotFound},
		{conflict(ErrInUse, "in use"), http.StatusConflict, llm.ErrConflict},
		{ModelFailed("v", 500, "boom"), http.StatusFailedDependency, llm.ErrUpstream},
		{&Error{Status: http.StatusTooManyRequests, Code: ErrModelNotReady}, http.StatusTooManyRequests, llm.ErrRateLimit},
		{unavailable("starting"), http.StatusServiceUnavailable, llm.ErrOverloaded},
		{&Error{Code: ErrInternalFailure}, http.StatusInternalServerError, llm.ErrInternal},
	} {
		le := tc.in.LLM()
		if le.Status != tc.status || le.Type != tc.typ || le.Code != tc.in.Code || le.RetryAfter != tc.in.RetryAfter || le.Message != tc.in.Message {
			t.Errorf("%+v: %+v, want %d %s", tc.in, le, tc.status, tc.typ)
		}
		var he *Error
		if !errors.As(le, &he) || he != tc.in {
			t.Errorf("%+v: the cause is lost", tc.in)
		}
	}
	if le := unavailable("x").LLM(); le.RetryAfter != "1" {
		t.Errorf("Retry-After %q, want 1", le.RetryAfter)
	}
}
