package anthropicwire

import (
	"encoding/json"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// ErrorType returns Anthropic's error type for a canonical one. A failing
// or unparseable upstream and Junction's own faults are api_error, as a
// 5xx from Anthropic would be. An exhausted budget is a rate_limit_error
// (429), the type Anthropic's SDKs expect with that status; the message
// names the budget.
func ErrorType(t llm.ErrorType) string {
	switch t {
	case llm.ErrInvalidRequest:
		return "invalid_request_error"
	case llm.ErrAuthentication:
		return "authentication_error"
	case llm.ErrPermission:
		return "permission_error"
	case llm.ErrNotFound:
		return "not_found_error"
	case llm.ErrTooLarge:
		return "request_too_large"
	case llm.ErrRateLimit, llm.ErrBudgetExceeded:
		return "rate_limit_error"
	case llm.ErrTimeout:
		return "timeout_error"
	case llm.ErrOverloaded:
		return "overloaded_error"
	}
	return "api_error"
}

// EncodeError renders an Anthropic error body,
// {"type":"error","error":{"type":...,"message":...}}, which is also the
// data of a stream's error event.
func EncodeError(t llm.ErrorType, message string) []byte {
	b, _ := json.Marshal(ErrorResponse{Type: "error", Error: ErrorBody{Type: ErrorType(t), Message: message}})
	return b
}
