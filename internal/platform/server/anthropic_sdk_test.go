package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// The official Anthropic Go SDK talks to Junction's /v1/messages with only
// its base URL and key changed, in front of an OpenAI-compatible upstream
// (Messages in, chat completions out) and an Anthropic one (pass-through).

// claude returns the official Anthropic client pointed at Junction.
func (j *junction) claude(key string, opts ...option.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]option.RequestOption{
		option.WithBaseURL(j.url), option.WithAPIKey(key), option.WithMaxRetries(0)}, opts...)...)
}

// messages posts body to /v1/messages as an Anthropic client does, with
// the key in x-api-key (none when key is empty).
func (j *junction) messages(key, body string) (int, http.Header, []byte) {
	j.t.Helper()
	req, _ := http.NewRequest("POST", j.url+"/v1/messages", strings.NewReader(body))
	if key != "" {
		req.Header.Set("X-Api-Key", key)
	}
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		j.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// anthropicError decodes an Anthropic error body, failing t on any other.
func anthropicError(t *testing.T, b []byte) (typ, message string) {
	t.Helper()
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Type != "error" || e.Error.Type == "" || e.Error.Message == "" {
		t.Fatalf("not an Anthropic error body: %s", b)
	}
	return e.Error.Type, e.Error.Message
}

func costNear(t *testing.T, got *float64, want float64) {
	t.Helper()
	if got == nil || math.Abs(*got-want) > 1e-12 {
		t.Fatalf("cost %v, want %v", got, want)
	}
}

func weatherToolParam() anthropic.ToolUnionParam {
	return anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
		Name:        "get_weather",
		Description: anthropic.String("Current weather for a city"),
		InputSchema: anthropic.ToolInputSchemaParam{
			Properties: map[string]any{"city": map[string]any{"type": "string"}},
			Required:   []string{"city"},
		},
	}}
}

func TestAnthropicSDKOverOpenAIUpstream(t *testing.T) {
	fake := &fakeopenai.Server{Record: true, PromptTokens: 120, CompletionTokens: 30, CachedTokens: 100}
	j := start(t, fake, "")
	_, secret := j.createKey("claude-app", map[string]string{"team": "search"})
	client := j.claude(secret, option.WithHeader("X-Junction-Tags", "app=faq"))
	msg, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model:       "priced",
		MaxTokens:   256,
		System:      []anthropic.TextBlockParam{{Text: "Be brief."}},
		Messages:    []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello"))},
		Temperature: anthropic.Float(0.2),
		TopK:        anthropic.Int(5),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Type != "text" || msg.Content[0].Text != "Hello from the fake upstream. Junction forwarded this." {
		t.Fatalf("content %+v", msg.Content)
	}
	if msg.Model != "priced" || msg.StopReason != anthropic.StopReasonEndTurn || msg.Role != "assistant" || msg.ID == "" {
		t.Fatalf("message %+v", msg)
	}
	// Anthropic counts cache reads apart from input_tokens; OpenAI's
	// prompt_tokens includes them.
	if u := msg.Usage; u.InputTokens != 20 || u.CacheReadInputTokens != 100 || u.CacheCreationInputTokens != 0 || u.OutputTokens != 30 {
		t.Fatalf("usage %+v", msg.Usage)
	}

	// The upstream got chat completions: the system prompt as a system
	// message, max_tokens, temperature; top_k has no OpenAI counterpart.
	up := fake.Requests()[0]
	if up.Path != "/v1/chat/completions" || up.Body["model"] != "my-model" || up.Body["max_tokens"] != float64(256) || up.Body["temperature"] != 0.2 {
		t.Fatalf("upstream request %s %s", up.Path, up.Raw)
	}
	if _, ok := up.Body["top_k"]; ok {
		t.Fatalf("top_k sent to an OpenAI upstream: %s", up.Raw)
	}
	msgs := up.Body["messages"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["role"] != "system" || msgs[0].(map[string]any)["content"] != "Be brief." ||
		msgs[1].(map[string]any)["content"] != "Say hello" {
		t.Fatalf("upstream messages %s", up.Raw)
	}

	r := j.records(1)[0]
	if r.Surface != "anthropic" || r.Model != "priced" || r.Provider != "openai" || r.UpstreamModel != "my-model" || r.Status != 200 || r.Stream {
		t.Fatalf("record %+v", r)
	}
	if r.KeyName != "claude-app" || r.Tags["team"] != "search" || r.Tags["app"] != "faq" {
		t.Fatalf("record key and tags %+v", r)
	}
	if r.InputTokens != 120 || r.CachedTokens != 100 || r.OutputTokens != 30 {
		t.Fatalf("record tokens %+v", r)
	}
	costNear(t, r.CostUSD, wantCost(120, 100, 30, 1, 2))
}

func TestAnthropicSDKStreamOverOpenAIUpstream(t *testing.T) {
	fake := &fakeopenai.Server{Record: true, PromptTokens: 50, CompletionTokens: 10, CachedTokens: 20}
	j := start(t, fake, "")
	client := j.claude(adminKey)
	stream := client.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
		Model:     "priced",
		MaxTokens: 100,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello"))},
	})
	var msg anthropic.Message
	deltas := 0
	var types []string
	for stream.Next() {
		ev := stream.Current()
		if err := msg.Accumulate(ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type == "content_block_delta" {
			deltas++
		} else {
			types = append(types, ev.Type)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != "Hello from the fake upstream. Junction forwarded this." {
		t.Fatalf("content %+v", msg.Content)
	}
	if deltas < 8 {
		t.Fatalf("only %d deltas: the stream was buffered, not forwarded", deltas)
	}
	if got := strings.Join(types, " "); got != "message_start content_block_start content_block_stop message_delta message_stop" {
		t.Fatalf("events %s", got)
	}
	if msg.StopReason != anthropic.StopReasonEndTurn || msg.Model != "priced" {
		t.Fatalf("message %+v", msg)
	}
	if u := msg.Usage; u.InputTokens != 30 || u.CacheReadInputTokens != 20 || u.OutputTokens != 10 {
		t.Fatalf("usage %+v", msg.Usage)
	}
	if so, _ := fake.Requests()[0].Body["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Fatal("Junction must ask the upstream for usage in streams")
	}
	r := j.records(1)[0]
	if r.Surface != "anthropic" || !r.Stream || r.TTFTMS == nil || r.InputTokens != 50 || r.CachedTokens != 20 || r.OutputTokens != 10 {
		t.Fatalf("stream record %+v", r)
	}
	costNear(t, r.CostUSD, wantCost(50, 20, 10, 1, 2))
}

func TestAnthropicSDKToolUseOverOpenAIUpstream(t *testing.T) {
	fake := &fakeopenai.Server{Record: true}
	j := start(t, fake, "")
	client := j.claude(adminKey)
	params := anthropic.MessageNewParams{
		Model:      "gpt-4o-mini",
		MaxTokens:  100,
		Messages:   []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in Paris?"))},
		Tools:      []anthropic.ToolUnionParam{weatherToolParam()},
		ToolChoice: anthropic.ToolChoiceUnionParam{OfAny: &anthropic.ToolChoiceAnyParam{}},
	}
	msg, err := client.Messages.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.StopReason != anthropic.StopReasonToolUse {
		t.Fatalf("message %+v", msg)
	}
	use := msg.Content[0].AsToolUse()
	var input map[string]string
	if err := json.Unmarshal(use.Input, &input); err != nil || use.ID != "call_abc123" || use.Name != "get_weather" || input["city"] != "Paris" {
		t.Fatalf("tool use %+v (%s)", use, use.Input)
	}
	// The tool went upstream as an OpenAI function, tool_choice any as
	// "required".
	up := fake.Requests()[0].Body
	tools, _ := json.Marshal(up["tools"])
	if !strings.Contains(string(tools), `"name":"get_weather"`) || !strings.Contains(string(tools), `"required":["city"]`) || up["tool_choice"] != "required" {
		t.Fatalf("tools sent as %s, tool_choice %v", tools, up["tool_choice"])
	}

	// The same, streamed: the SDK reassembles the input from fragments.
	stream := client.Messages.NewStreaming(context.Background(), params)
	var acc anthropic.Message
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(acc.Content) != 1 || acc.Content[0].Type != "tool_use" || string(acc.Content[0].Input) != `{"city":"Paris","unit":"celsius"}` ||
		acc.StopReason != anthropic.StopReasonToolUse {
		t.Fatalf("streamed %+v (input %s)", acc, acc.Content[0].Input)
	}

	// The tool result goes back: the assistant turn as tool_calls, the
	// result as a tool message, the user's words after it.
	params.Messages = append(params.Messages, msg.ToParam(), anthropic.NewUserMessage(
		anthropic.NewToolResultBlock(use.ID, `{"temp":21}`, false), anthropic.NewTextBlock("Thanks!")))
	params.ToolChoice = anthropic.ToolChoiceUnionParam{}
	if _, err := client.Messages.New(context.Background(), params); err != nil {
		t.Fatal(err)
	}
	sent := fake.Requests()[2]
	var body struct {
		Messages []struct {
			Role       string          `json:"role"`
			Content    json.RawMessage `json:"content"`
			ToolCallID string          `json:"tool_call_id"`
			ToolCalls  []struct {
				ID       string `json:"id"`
				Function struct{ Name, Arguments string }
			} `json:"tool_calls"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(sent.Raw, &body); err != nil || len(body.Messages) != 4 {
		t.Fatalf("upstream messages %s", sent.Raw)
	}
	asst, tool, user := body.Messages[1], body.Messages[2], body.Messages[3]
	if asst.Role != "assistant" || len(asst.ToolCalls) != 1 || asst.ToolCalls[0].ID != "call_abc123" ||
		asst.ToolCalls[0].Function.Name != "get_weather" || asst.ToolCalls[0].Function.Arguments != `{"city":"Paris","unit":"celsius"}` {
		t.Fatalf("assistant turn sent as %+v", asst)
	}
	if tool.Role != "tool" || tool.ToolCallID != "call_abc123" || string(tool.Content) != `"{\"temp\":21}"` {
		t.Fatalf("tool result sent as %+v (%s)", tool, tool.Content)
	}
	if user.Role != "user" || string(user.Content) != `"Thanks!"` {
		t.Fatalf("user turn sent as %+v (%s)", user, user.Content)
	}
	if recs := j.records(3); recs[0].Surface != "anthropic" || recs[0].Status != 200 {
		t.Fatalf("record %+v", recs[0])
	}
}

func TestAnthropicSDKOverAnthropicUpstream(t *testing.T) {
	up, got := fakeAnthropic(t, "messages_response.json", "stream_text.sse")
	j := startWith(t, &fakeopenai.Server{},
		fmt.Sprintf(`  - {name: claude, type: anthropic, base_url: %q, api_key: "ak-upstream"}`, up.URL),
		`  - {name: sonnet, provider: claude, upstream_model: claude-sonnet-4-5, price: {input_per_1k: 0.003, output_per_1k: 0.015, cached_input_per_1k: 0.0003}}`)
	client := j.claude(adminKey)
	params := anthropic.MessageNewParams{
		Model:     "sonnet",
		MaxTokens: 1024,
		System:    []anthropic.TextBlockParam{{Text: "You are Claude."}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hello"))},
		TopK:      anthropic.Int(5),
		Metadata:  anthropic.MetadataParam{UserID: anthropic.String("user-42")},
		Thinking:  anthropic.ThinkingConfigParamOfEnabled(1024),
	}
	msg, err := client.Messages.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if msg.ID != "msg_013Zva2CMHLNnXjNJJKqJ2EF" || len(msg.Content) != 1 || msg.Content[0].Text != "Hi! My name is Claude." || msg.StopReason != anthropic.StopReasonEndTurn {
		t.Fatalf("message %+v", msg)
	}
	// Cache reads and writes come back exactly as the upstream counted them.
	if u := msg.Usage; u.InputTokens != 21 || u.CacheCreationInputTokens != 1000 || u.CacheReadInputTokens != 2000 || u.OutputTokens != 393 {
		t.Fatalf("usage %+v", msg.Usage)
	}
	// Fields Junction does not model reach an Anthropic upstream untouched.
	body := (*got)[0]
	thinking, _ := json.Marshal(body["thinking"])
	if body["model"] != "claude-sonnet-4-5" || body["system"] != "You are Claude." || body["top_k"] != float64(5) ||
		body["max_tokens"] != float64(1024) || string(thinking) != `{"budget_tokens":1024,"type":"enabled"}` {
		t.Fatalf("upstream body %v", body)
	}
	if md, _ := body["metadata"].(map[string]any); md["user_id"] != "user-42" {
		t.Fatalf("metadata %v", body["metadata"])
	}

	stream := client.Messages.NewStreaming(context.Background(), params)
	var acc anthropic.Message
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(acc.Content) != 1 || acc.Content[0].Text != "Hello!" || acc.Usage.InputTokens != 25 || acc.Usage.OutputTokens != 15 {
		t.Fatalf("streamed %+v", acc)
	}

	recs := j.records(2)
	plain, streamed := recs[1], recs[0] // newest first
	if plain.Surface != "anthropic" || plain.Provider != "claude" || plain.InputTokens != 21+1000+2000 || plain.CachedTokens != 2000 || plain.OutputTokens != 393 {
		t.Fatalf("plain record %+v", plain)
	}
	// 21 plain input tokens, 1000 written to the cache (at 1.25 × input),
	// 2000 read from it, 393 output.
	costNear(t, plain.CostUSD, (21*0.003+1000*0.003*1.25+2000*0.0003+393*0.015)/1000)
	if !streamed.Stream || streamed.InputTokens != 25 || streamed.OutputTokens != 15 || streamed.TTFTMS == nil {
		t.Fatalf("stream record %+v", streamed)
	}
}

func TestAnthropicSurfaceBadInput(t *testing.T) {
	j := start(t, &fakeopenai.Server{Record: true}, "")
	const hi = `"messages":[{"role":"user","content":"hi"}]`
	cases := []struct {
		name, key, body string
		status          int
		typ, want       string
	}{
		{"no key", "", `{"model":"gpt-4o-mini","max_tokens":5,` + hi + `}`, 401, "authentication_error", "missing API key"},
		{"wrong key", "jk-wrong", `{"model":"gpt-4o-mini","max_tokens":5,` + hi + `}`, 401, "authentication_error", "invalid"},
		{"malformed JSON", adminKey, `{"model":`, 400, "invalid_request_error", "not valid JSON"},
		{"missing max_tokens", adminKey, `{"model":"gpt-4o-mini",` + hi + `}`, 400, "invalid_request_error", "max_tokens: required"},
		{"missing model", adminKey, `{"max_tokens":5,` + hi + `}`, 400, "invalid_request_error", "model: required"},
		{"bad block", adminKey, `{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":[{"type":"video"}]}]}`, 400, "invalid_request_error", "messages.0.content.0.type"},
		{"system role", adminKey, `{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"system","content":"x"}]}`, 400, "invalid_request_error", "messages.0.role"},
		{"unknown model", adminKey, `{"model":"claude-9","max_tokens":5,` + hi + `}`, 404, "not_found_error", "gpt-4o-mini"},
		{"oversize", adminKey, `{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"` + strings.Repeat("x", 70000) + `"}]}`, 413, "request_too_large", "max_body_bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, b := j.messages(tc.key, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, b)
			}
			typ, msg := anthropicError(t, b)
			if typ != tc.typ || !strings.Contains(msg, tc.want) {
				t.Fatalf("error %s %q, want %s containing %q", typ, msg, tc.typ, tc.want)
			}
			if hdr.Get("Content-Type") != "application/json" || hdr.Get("Request-Id") == "" {
				t.Fatalf("headers %v", hdr)
			}
		})
	}
	if n := len(j.fake.Requests()); n != 0 {
		t.Fatalf("bad requests reached the upstream %d times", n)
	}

	// The SDK sees the same as typed errors.
	client := j.claude(adminKey)
	_, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "claude-9", MaxTokens: 5, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Type() != "not_found_error" {
		t.Fatalf("err = %v", err)
	}
}

func TestAnthropicSDKSeesUpstreamRateLimit(t *testing.T) {
	j := start(t, &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault {
		return fakeopenai.Fault{Status: 429, RetryAfter: "3", Message: "Rate limit reached for gpt-4o-mini"}
	}}, "")
	client := j.claude(adminKey)
	_, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "gpt-4o-mini", MaxTokens: 5, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Type() != "rate_limit_error" {
		t.Fatalf("err = %v", err)
	}
	if got := apiErr.Response.Header.Get("Retry-After"); got != "3" {
		t.Fatalf("Retry-After %q, want 3", got)
	}
	if !strings.Contains(apiErr.Error(), "provider openai") || !strings.Contains(apiErr.Error(), "Rate limit reached") {
		t.Fatalf("message %s", apiErr.Error())
	}
	if r := j.records(1)[0]; r.Surface != "anthropic" || r.Status != 429 || r.ErrorType != "rate_limit_error" {
		t.Fatalf("record %+v", r)
	}
}

func TestAnthropicStreamFailuresAreNeverSilent(t *testing.T) {
	var fault atomic.Pointer[fakeopenai.Fault]
	fault.Store(&fakeopenai.Fault{})
	fake := &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault { return *fault.Load() }}
	j := start(t, fake, "")
	body := `{"model":"gpt-4o-mini","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
	for _, f := range []fakeopenai.Fault{{CutAfter: 2}, {ErrorAfter: 2}} {
		fault.Store(&f)
		status, hdr, b := j.messages(adminKey, body)
		s := string(b)
		if status != 200 || hdr.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, headers %v", status, hdr)
		}
		if strings.Contains(s, "message_stop") || strings.Contains(s, "message_delta") {
			t.Fatalf("a failed stream ended as if it succeeded:\n%s", s)
		}
		if !strings.Contains(s, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"provider openai: ") {
			t.Fatalf("no error event naming the provider:\n%s", s)
		}
		if !strings.Contains(s, `"text":"Hello "`) {
			t.Fatalf("text before the failure was not forwarded:\n%s", s)
		}
	}

	// The SDK reports the failure from the stream.
	client := j.claude(adminKey)
	stream := client.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
		Model: "gpt-4o-mini", MaxTokens: 50, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	for stream.Next() {
	}
	if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "provider openai") {
		t.Fatalf("stream error %v", err)
	}
	for _, r := range j.records(3) {
		if r.Surface != "anthropic" || r.Status != 502 || !r.Stream {
			t.Fatalf("stream failure recorded as %+v", r)
		}
	}
}

func TestAnthropicClientDisconnectCancelsUpstream(t *testing.T) {
	arrived := make(chan string, 1)
	fake := &fakeopenai.Server{Arrived: arrived, Fault: func(*fakeopenai.Request) fakeopenai.Fault {
		return fakeopenai.Fault{Delay: time.Minute}
	}}
	j := start(t, fake, "")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		client := j.claude(adminKey)
		stream := client.Messages.NewStreaming(ctx, anthropic.MessageNewParams{
			Model: "gpt-4o-mini", MaxTokens: 50, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
		})
		for stream.Next() {
		}
		errc <- stream.Err()
	}()
	<-arrived
	begun := time.Now()
	cancel()
	<-errc
	r := j.records(1)[0]
	if r.Surface != "anthropic" || r.Status != 499 || r.ErrorType != "client_closed" {
		t.Fatalf("record %+v, want status 499", r)
	}
	// The fake's one-minute delay ended early only if the upstream call was cancelled.
	if time.Since(begun) > 30*time.Second {
		t.Fatal("upstream call was not cancelled")
	}
}
