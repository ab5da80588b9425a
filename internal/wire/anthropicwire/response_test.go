package anthropicwire

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
)

func TestDecodeResponse(t *testing.T) {
	call := func(id, name, args string) llm.Part {
		return llm.Part{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: id, Name: name, Arguments: args}}
	}
	tests := []struct {
		file string
		want llm.Response
	}{
		{"response_text.json", llm.Response{
			ID: "msg_013Zva2CMHLNnXjNJJKqJ2EF", Model: "claude-sonnet-4-5-20250929",
			Content:    []llm.Part{text("Hi! My name is Claude.")},
			StopReason: llm.StopEnd,
			Usage:      llm.Usage{InputTokens: 21 + 2000 + 1000, OutputTokens: 393, CachedInputTokens: 2000, CacheWriteTokens: 1000},
		}},
		{"response_tool_use.json", llm.Response{
			ID: "msg_01Aq9w938a90dw8q", Model: "claude-sonnet-4-5-20250929",
			Content: []llm.Part{
				text("I'll check the current weather and time in San Francisco for you."),
				call("toolu_01A09q90qw90lq917835lq9", "get_weather", `{"location": "San Francisco, CA", "unit": "celsius"}`),
				call("toolu_01B19r01rx01mr028946mr0", "get_time", `{}`),
			},
			StopReason: llm.StopToolCalls,
			Usage:      llm.Usage{InputTokens: 472, OutputTokens: 89},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := DecodeResponse(golden(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("response\ngot:  %+v\nwant: %+v", *got, tt.want)
			}
		})
	}
}

// A response from an Anthropic upstream reaches an Anthropic client as it
// was, but for what has no canonical form: the thinking block, the
// matched stop sequence and the service tier.
func TestResponseRoundTrip(t *testing.T) {
	for _, file := range []string{"response_text.json", "response_tool_use.json"} {
		t.Run(file, func(t *testing.T) {
			in := golden(t, file)
			resp, err := DecodeResponse(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := EncodeResponse(resp, resp.ID, "claude-sonnet-4-5-20250929")
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			json.Unmarshal(in, &want)
			delete(want["usage"].(map[string]any), "service_tier")
			var content []any
			for _, b := range want["content"].([]any) {
				if b.(map[string]any)["type"] != "thinking" {
					content = append(content, b)
				}
			}
			want["content"] = content
			w, _ := json.Marshal(want)
			jsonEqual(t, out, w)
		})
	}
}

func TestEncodeResponseFromOpenAIShapes(t *testing.T) {
	resp := &llm.Response{
		ID: "chatcmpl-123", Model: "gpt-4o-mini-2024-07-18",
		Content: []llm.Part{
			{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "call_abc123", Name: "get_weather", Arguments: `{"city":"Paris"}`}},
			{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "call_2", Name: "now", Arguments: ``}},
		},
		StopReason: llm.StopToolCalls,
		Usage:      llm.Usage{InputTokens: 120, OutputTokens: 30, CachedInputTokens: 100},
	}
	out, err := EncodeResponse(resp, "msg_1", "gpt-4o-mini")
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, out, []byte(`{"id":"msg_1","type":"message","role":"assistant","model":"gpt-4o-mini",
		"content":[{"type":"tool_use","id":"call_abc123","name":"get_weather","input":{"city":"Paris"}},
			{"type":"tool_use","id":"call_2","name":"now","input":{}}],
		"stop_reason":"tool_use","stop_sequence":null,
		"usage":{"input_tokens":20,"cache_creation_input_tokens":0,"cache_read_input_tokens":100,"output_tokens":30}}`))

	// An empty answer still has a content array.
	out, _ = EncodeResponse(&llm.Response{StopReason: llm.StopLength}, "msg_2", "m")
	jsonEqual(t, out, []byte(`{"id":"msg_2","type":"message","role":"assistant","model":"m","content":[],
		"stop_reason":"max_tokens","stop_sequence":null,
		"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}`))
}

func TestEncodeResponseBrokenToolArguments(t *testing.T) {
	for _, args := range []string{`{"city":`, `[1,2]`, `"x"`} {
		_, err := EncodeResponse(&llm.Response{Content: []llm.Part{
			{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "c", Name: "f", Arguments: args}}}}, "msg", "m")
		var e *llm.Error
		if !errors.As(err, &e) || e.Status != 502 || e.Type != llm.ErrUpstream {
			t.Fatalf("arguments %s: err = %#v, want a 502", args, err)
		}
	}
}

func TestEncodeResponseEscapes(t *testing.T) {
	s := "quote \" backslash \\ newline \n tab \t nul \x00 html <b>&</b> unicode héllo 😀 line sep \u2028 bad \xff end"
	out, err := EncodeResponse(&llm.Response{Content: []llm.Part{text(s)}}, "msg\"1", "m")
	if err != nil {
		t.Fatal(err)
	}
	var got Response
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := "quote \" backslash \\ newline \n tab \t nul \x00 html <b>&</b> unicode héllo 😀 line sep \u2028 bad \ufffd end"
	if got.Content[0].Text != want || got.ID != "msg\"1" {
		t.Fatalf("text %q, id %q", got.Content[0].Text, got.ID)
	}
}

func TestUsageMapping(t *testing.T) {
	tests := []struct {
		canonical llm.Usage
		wire      Usage
	}{
		{llm.Usage{InputTokens: 3021, OutputTokens: 393, CachedInputTokens: 2000, CacheWriteTokens: 1000},
			Usage{InputTokens: 21, CacheReadInputTokens: 2000, CacheCreationInputTokens: 1000, OutputTokens: 393}},
		{llm.Usage{InputTokens: 50, OutputTokens: 10, CachedInputTokens: 20},
			Usage{InputTokens: 30, CacheReadInputTokens: 20, OutputTokens: 10}},
		// An upstream that counts oddly never yields negative input.
		{llm.Usage{InputTokens: 5, CachedInputTokens: 20}, Usage{InputTokens: 0, CacheReadInputTokens: 20}},
	}
	for _, tt := range tests {
		if got := usageToWire(tt.canonical); got != tt.wire {
			t.Errorf("usageToWire(%+v) = %+v, want %+v", tt.canonical, got, tt.wire)
		}
		if tt.wire.InputTokens > 0 {
			if got := tt.wire.canonical(); got != tt.canonical {
				t.Errorf("canonical(%+v) = %+v, want %+v", tt.wire, got, tt.canonical)
			}
		}
	}
}

func TestStopReason(t *testing.T) {
	for in, want := range map[string]llm.StopReason{
		"end_turn":      llm.StopEnd,
		"stop_sequence": llm.StopEnd,
		"max_tokens":    llm.StopLength,
		"tool_use":      llm.StopToolCalls,
		"refusal":       llm.StopContentFilter,
		"pause_turn":    llm.StopEnd,
	} {
		if got := stopReason(in); got != want {
			t.Errorf("stopReason(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[llm.StopReason]string{
		llm.StopEnd:           "end_turn",
		llm.StopLength:        "max_tokens",
		llm.StopToolCalls:     "tool_use",
		llm.StopContentFilter: "refusal",
		"function_call":       "tool_use",
		"":                    "end_turn",
	} {
		if got := wireStopReason(in); got != want {
			t.Errorf("wireStopReason(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEncodeError(t *testing.T) {
	for typ, want := range map[llm.ErrorType]string{
		llm.ErrInvalidRequest: "invalid_request_error",
		llm.ErrAuthentication: "authentication_error",
		llm.ErrPermission:     "permission_error",
		llm.ErrNotFound:       "not_found_error",
		llm.ErrTooLarge:       "request_too_large",
		llm.ErrRateLimit:      "rate_limit_error",
		llm.ErrUpstream:       "api_error",
		llm.ErrInternal:       "api_error",
		llm.ErrTimeout:        "timeout_error",
		llm.ErrOverloaded:     "overloaded_error",
		"something_new":       "api_error",
	} {
		if got := ErrorType(typ); got != want {
			t.Errorf("ErrorType(%q) = %q, want %q", typ, got, want)
		}
	}
	jsonEqual(t, EncodeError(llm.ErrNotFound, "The requested resource could not be found."), golden(t, "error_not_found.json"))
}
