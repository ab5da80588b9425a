package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/wire/anthropicwire"
	"github.com/junctionhq/junction/internal/wire/llm"
)

const testModel = "claude-sonnet-4-5-20250929"

// received is what the fake Anthropic server saw of one request.
type received struct {
	method, path string
	header       http.Header
	body         []byte
}

// fake starts an Anthropic stand-in that records each request and answers
// it with respond, and returns a Provider pointed at it.
func fake(t testing.TB, cfg Config, respond http.HandlerFunc) (*Provider, <-chan received) {
	t.Helper()
	got := make(chan received, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		select {
		case got <- received{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body}:
		default: // benchmarks send more than anyone reads
		}
		respond(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL + "/" // a trailing slash is tolerated
	if cfg.Name == "" {
		cfg.Name = "claude-test"
	}
	if cfg.APIKey == "" {
		cfg.APIKey = "sk-ant-test"
	}
	return New(cfg), got
}

// serve answers with a golden file from testdata, as JSON or, for .sse
// files, as an event stream.
func serve(t testing.TB, status int, file string, header ...string) http.HandlerFunc {
	body := golden(t, file)
	return func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(file, ".sse") {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		w.Write(body)
	}
}

func golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lastRequest returns the request the fake received.
func lastRequest(t *testing.T, got <-chan received) received {
	t.Helper()
	select {
	case r := <-got:
		return r
	default:
		t.Fatal("the fake received no request")
		return received{}
	}
}

// jsonEqual fails t unless got and want hold the same JSON value.
func jsonEqual(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want invalid JSON %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		gi, _ := json.MarshalIndent(g, "", "  ")
		wi, _ := json.MarshalIndent(w, "", "  ")
		t.Fatalf("JSON differs\ngot:  %s\nwant: %s", gi, wi)
	}
}

// weatherRequest is a canonical conversation with everything the
// translation must handle: system messages in two places, consecutive user
// turns, images, tool calls with and without arguments, tool results
// followed by a user turn.
func weatherRequest() *llm.Request {
	temp := 0.5
	text := func(s string) llm.Part { return llm.Part{Type: llm.PartText, Text: s} }
	return &llm.Request{
		Model: testModel,
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: []llm.Part{text("You are a weather assistant.")}},
			{Role: llm.RoleUser, Content: []llm.Part{text("What's the weather and the time in San Francisco?")}},
			{Role: llm.RoleSystem, Content: []llm.Part{text("Answer briefly.")}},
			{Role: llm.RoleUser, Content: []llm.Part{text("Use celsius."), text(""),
				{Type: llm.PartImage, Image: &llm.Image{MediaType: "image/png", Data: []byte("\x89PNG\r\n\x1a\n")}}}},
			{Role: llm.RoleAssistant, Content: []llm.Part{
				text("I'll check the current weather and time in San Francisco for you."),
				{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "toolu_01A09q90qw90lq917835lq9", Name: "get_weather",
					Arguments: `{"location": "San Francisco, CA", "unit": "celsius"}`}},
				{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "toolu_01B19r01rx01mr028946mr0", Name: "get_time"}},
			}},
			{Role: llm.RoleTool, Content: []llm.Part{{Type: llm.PartToolResult, ToolResult: &llm.ToolResult{
				CallID: "toolu_01A09q90qw90lq917835lq9", Content: "15 degrees, sunny"}}}},
			{Role: llm.RoleTool, Content: []llm.Part{{Type: llm.PartToolResult, ToolResult: &llm.ToolResult{
				CallID: "toolu_01B19r01rx01mr028946mr0", Content: "clock unavailable", IsError: true}}}},
			{Role: llm.RoleUser, Content: []llm.Part{text("Thanks. What about this place?"),
				{Type: llm.PartImage, Image: &llm.Image{URL: "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"}}}},
		},
		Temperature: &temp,
		Stop:        []string{"\n\nHuman:"},
		Tools: []llm.Tool{
			{Name: "get_weather", Description: "Get the current weather in a given location",
				Parameters: json.RawMessage(`{"type":"object","properties":{"location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["location"]}`)},
			{Name: "get_time", Description: "Get the current time"},
		},
		ToolChoice: &llm.ToolChoice{Mode: llm.ToolChoiceAuto},
		User:       "user-42",
	}
}

func TestChatSendsMessagesRequest(t *testing.T) {
	p, got := fake(t, Config{APIKey: "sk-ant-api03-secret"}, serve(t, 200, "tool_use_response.json"))
	if _, err := p.Chat(context.Background(), weatherRequest()); err != nil {
		t.Fatal(err)
	}
	r := lastRequest(t, got)
	if r.method != http.MethodPost || r.path != "/v1/messages" {
		t.Errorf("request line = %s %s, want POST /v1/messages", r.method, r.path)
	}
	for k, want := range map[string]string{
		"X-Api-Key":         "sk-ant-api03-secret",
		"Anthropic-Version": "2023-06-01",
		"Content-Type":      "application/json",
	} {
		if v := r.header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	jsonEqual(t, r.body, golden(t, "tool_use_request.json"))
}

// body returns the JSON object the adapter writes for req.
func body(t *testing.T, req *llm.Request, maxTokens int, stream bool) map[string]json.RawMessage {
	t.Helper()
	b, err := anthropicwire.EncodeRequest(req, maxTokens, stream)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return m
}

func TestRequestFields(t *testing.T) {
	n := func(i int) *int { return &i }
	topP := 0.9
	user := func(s string) llm.Message {
		return llm.Message{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: s}}}
	}
	tool := func(id string) llm.Message {
		return llm.Message{Role: llm.RoleTool, Content: []llm.Part{{Type: llm.PartToolResult,
			ToolResult: &llm.ToolResult{CallID: id, Content: "ok"}}}}
	}
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	tests := []struct {
		name      string
		req       llm.Request
		maxTokens int
		field     string
		want      string // JSON; empty means the field must be absent
	}{
		{"max_tokens from config", llm.Request{}, 1000, "max_tokens", `1000`},
		{"max_tokens from request", llm.Request{MaxTokens: n(50)}, 1000, "max_tokens", `50`},
		{"top_p", llm.Request{TopP: &topP}, 1, "top_p", `0.9`},
		{"no sampling fields", llm.Request{}, 1, "temperature", ``},
		{"no stream for Chat", llm.Request{Stream: true}, 1, "stream", ``},
		{"no metadata without user", llm.Request{}, 1, "metadata", ``},
		{"tool_choice auto", llm.Request{ToolChoice: &llm.ToolChoice{Mode: llm.ToolChoiceAuto}}, 1, "tool_choice", `{"type":"auto"}`},
		{"tool_choice required", llm.Request{ToolChoice: &llm.ToolChoice{Mode: llm.ToolChoiceRequired}}, 1, "tool_choice", `{"type":"any"}`},
		{"tool_choice none", llm.Request{ToolChoice: &llm.ToolChoice{Mode: llm.ToolChoiceNone}}, 1, "tool_choice", `{"type":"none"}`},
		{"tool_choice tool", llm.Request{ToolChoice: &llm.ToolChoice{Mode: llm.ToolChoiceTool, Name: "get_weather"}}, 1, "tool_choice", `{"type":"tool","name":"get_weather"}`},
		{"no system", llm.Request{Messages: []llm.Message{user("hi")}}, 1, "system", ``},
		{"tool result goes before user text in a merged turn",
			llm.Request{Messages: []llm.Message{user("first"), tool("a"), user("second"), tool("b")}}, 1, "messages",
			`[{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":"ok"},{"type":"tool_result","tool_use_id":"b","content":"ok"},{"type":"text","text":"first"},{"type":"text","text":"second"}]}]`},
		{"message with only empty text is dropped",
			llm.Request{Messages: []llm.Message{user("a"), {Role: llm.RoleAssistant, Content: []llm.Part{{Type: llm.PartText}}}, user("b")}}, 1, "messages",
			`[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]`},
		{"extra forwarded in the anthropic dialect",
			llm.Request{Dialect: "anthropic", Extra: map[string]json.RawMessage{"top_k": raw(`5`), "thinking": raw(`{"type":"enabled","budget_tokens":1024}`)}},
			1, "thinking", `{"type":"enabled","budget_tokens":1024}`},
		{"extra ignored in another dialect",
			llm.Request{Dialect: "openai", Extra: map[string]json.RawMessage{"top_k": raw(`5`)}}, 1, "top_k", ``},
		{"extra cannot override a translated field",
			llm.Request{Dialect: "anthropic", MaxTokens: n(7), Extra: map[string]json.RawMessage{"max_tokens": raw(`99`)}}, 1, "max_tokens", `7`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Model = testModel
			got, ok := body(t, &tt.req, tt.maxTokens, false)[tt.field]
			switch {
			case tt.want == "" && ok:
				t.Fatalf("%s = %s, want it absent", tt.field, got)
			case tt.want != "" && !ok:
				t.Fatalf("%s is absent, want %s", tt.field, tt.want)
			case tt.want != "":
				jsonEqual(t, got, []byte(tt.want))
			}
		})
	}
}

func TestDefaultMaxTokens(t *testing.T) {
	p, got := fake(t, Config{}, serve(t, 200, "messages_response.json"))
	if _, err := p.Chat(context.Background(), &llm.Request{Model: testModel}); err != nil {
		t.Fatal(err)
	}
	var b struct {
		MaxTokens int `json:"max_tokens"`
	}
	json.Unmarshal(lastRequest(t, got).body, &b)
	if b.MaxTokens != 4096 {
		t.Fatalf("max_tokens = %d, want 4096", b.MaxTokens)
	}
}

func TestRequestRejected(t *testing.T) {
	tests := []struct {
		name  string
		msg   llm.Message
		param string
	}{
		{"tool call arguments not JSON", llm.Message{Role: llm.RoleAssistant, Content: []llm.Part{{Type: llm.PartToolCall,
			ToolCall: &llm.ToolCall{ID: "t", Name: "f", Arguments: `{"a":`}}}}, "messages[0].content[0]"},
		{"image without data or url", llm.Message{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartImage, Image: &llm.Image{}}}},
			"messages[0].content[0]"},
		{"unknown role", llm.Message{Role: "developer"}, "messages[0].role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, got := fake(t, Config{}, serve(t, 200, "messages_response.json"))
			_, err := p.Chat(context.Background(), &llm.Request{Model: testModel, Messages: []llm.Message{tt.msg}})
			var e *llm.Error
			if !errors.As(err, &e) || e.Status != 400 || e.Type != llm.ErrInvalidRequest || e.Param != tt.param {
				t.Fatalf("err = %#v, want a 400 for %s", err, tt.param)
			}
			if len(got) != 0 {
				t.Fatal("an invalid request was sent upstream")
			}
		})
	}
}

func TestChatResponse(t *testing.T) {
	text := func(s string) llm.Part { return llm.Part{Type: llm.PartText, Text: s} }
	call := func(id, name, args string) llm.Part {
		return llm.Part{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: id, Name: name, Arguments: args}}
	}
	tests := []struct {
		file string
		want llm.Response
	}{
		{"messages_response.json", llm.Response{
			ID: "msg_013Zva2CMHLNnXjNJJKqJ2EF", Model: testModel,
			Content:    []llm.Part{text("Hi! My name is Claude.")},
			StopReason: llm.StopEnd,
			Usage:      llm.Usage{InputTokens: 21 + 2000 + 1000, OutputTokens: 393, CachedInputTokens: 2000, CacheWriteTokens: 1000},
		}},
		{"tool_use_response.json", llm.Response{
			ID: "msg_01Aq9w938a90dw8q", Model: testModel,
			Content: []llm.Part{
				text("I'll check the current weather and time in San Francisco for you."),
				call("toolu_01A09q90qw90lq917835lq9", "get_weather", `{"location":"San Francisco, CA","unit":"celsius"}`),
				call("toolu_01B19r01rx01mr028946mr0", "get_time", `{}`),
			},
			StopReason: llm.StopToolCalls,
			Usage:      llm.Usage{InputTokens: 472, OutputTokens: 89},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, _ := fake(t, Config{}, serve(t, 200, tt.file))
			got, err := p.Chat(context.Background(), &llm.Request{Model: testModel})
			if err != nil {
				t.Fatal(err)
			}
			// Arguments keep the upstream's spacing; compare them as JSON.
			for i, part := range got.Content {
				if part.ToolCall != nil && i < len(tt.want.Content) && tt.want.Content[i].ToolCall != nil {
					jsonEqual(t, []byte(part.ToolCall.Arguments), []byte(tt.want.Content[i].ToolCall.Arguments))
					part.ToolCall.Arguments = tt.want.Content[i].ToolCall.Arguments
				}
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("response\ngot:  %+v\nwant: %+v", *got, tt.want)
			}
		})
	}
}

func TestChatGarbage(t *testing.T) {
	p, _ := fake(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>not an API</html>"))
	})
	_, err := p.Chat(context.Background(), &llm.Request{Model: testModel})
	var e *llm.Error
	if !errors.As(err, &e) || e.Status != 502 || e.Type != llm.ErrUpstream || e.Provider != "claude-test" {
		t.Fatalf("err = %#v, want a 502 from claude-test", err)
	}
}

func TestErrorStatus(t *testing.T) {
	tests := []struct {
		name       string
		respond    func(t testing.TB) http.HandlerFunc
		status     int
		typ        llm.ErrorType
		code       string
		retryAfter string
		message    string
	}{
		{"429 rate limited", func(t testing.TB) http.HandlerFunc {
			return serve(t, 429, "error_rate_limit.json", "Retry-After", "30")
		}, 429, llm.ErrRateLimit, "rate_limit_error", "30", "per-minute rate limit"},
		{"529 overloaded", func(t testing.TB) http.HandlerFunc {
			return serve(t, 529, "error_overloaded.json")
		}, 503, llm.ErrOverloaded, "overloaded_error", "", "Overloaded"},
		{"500 api error", func(t testing.TB) http.HandlerFunc {
			return serve(t, 500, "error_api.json")
		}, 502, llm.ErrUpstream, "api_error", "", "Internal server error"},
		{"400 invalid request", func(t testing.TB) http.HandlerFunc {
			return serve(t, 400, "error_invalid_request.json")
		}, 400, llm.ErrInvalidRequest, "invalid_request_error", "", "roles must alternate"},
		{"401 is Junction's key, not the client's", func(t testing.TB) http.HandlerFunc {
			return serve(t, 401, "error_authentication.json")
		}, 502, llm.ErrUpstream, "authentication_error", "", "invalid x-api-key"},
		{"502 from a proxy, not JSON", func(t testing.TB) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "<html>bad gateway</html>", 502)
			}
		}, 502, llm.ErrUpstream, "", "", "Bad Gateway"},
	}
	calls := map[string]func(*Provider, context.Context, *llm.Request) error{
		"Chat": func(p *Provider, ctx context.Context, r *llm.Request) error {
			_, err := p.Chat(ctx, r)
			return err
		},
		"ChatStream": func(p *Provider, ctx context.Context, r *llm.Request) error {
			_, err := p.ChatStream(ctx, r)
			return err
		},
	}
	for _, tt := range tests {
		for method, call := range calls {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				p, _ := fake(t, Config{}, tt.respond(t))
				err := call(p, context.Background(), &llm.Request{Model: testModel})
				var e *llm.Error
				if !errors.As(err, &e) {
					t.Fatalf("err = %v, want *llm.Error", err)
				}
				if e.Status != tt.status || e.Type != tt.typ || e.Code != tt.code || e.RetryAfter != tt.retryAfter ||
					e.Provider != "claude-test" || !strings.Contains(e.Message, tt.message) {
					t.Fatalf("err = %+v\nwant status %d type %s code %q retry-after %q provider claude-test message ~ %q",
						e, tt.status, tt.typ, tt.code, tt.retryAfter, tt.message)
				}
			})
		}
	}
}

func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	p := New(Config{Name: "claude-test", BaseURL: url})
	if _, err := p.Chat(context.Background(), &llm.Request{Model: testModel}); !is502(err) {
		t.Errorf("Chat: err = %#v, want a 502", err)
	}
	if _, err := p.ChatStream(context.Background(), &llm.Request{Model: testModel}); !is502(err) {
		t.Errorf("ChatStream: err = %#v, want a 502", err)
	}
}

func is502(err error) bool {
	var e *llm.Error
	return errors.As(err, &e) && e.Status == 502 && e.Type == llm.ErrUpstream && e.Provider != ""
}

// waitFor fails t if ch does not close or deliver within a generous
// deadline; it never sleeps to synchronise.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestChatCancel(t *testing.T) {
	arrived, gone := make(chan struct{}), make(chan struct{})
	p, _ := fake(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
		close(gone)
	})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := p.Chat(ctx, &llm.Request{Model: testModel})
		errc <- err
	}()
	waitFor(t, arrived, "the request to reach the fake")
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	waitFor(t, gone, "the upstream request to be cancelled")
}
