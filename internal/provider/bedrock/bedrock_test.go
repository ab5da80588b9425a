package bedrock

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/junctionhq/junction/internal/wire/llm"
)

func ptr[T any](v T) *T { return &v }

func text(s string) []llm.Part { return []llm.Part{{Type: llm.PartText, Text: s}} }

func toolCall(id, name, args string) llm.Part {
	return llm.Part{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: id, Name: name, Arguments: args}}
}

func toolResult(id, content string, isError bool) []llm.Part {
	return []llm.Part{{Type: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: id, Content: content, IsError: isError}}}
}

// decode parses JSON keeping numbers as written.
func decode(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// only returns the one request the fake saw.
func only(t *testing.T, reqs <-chan seen) seen {
	t.Helper()
	select {
	case r := <-reqs:
		return r
	default:
		t.Fatal("the fake saw no request")
	}
	return seen{}
}

// TestConverseRequest checks the wire request: the path names the model,
// the SDK signed it, and the body holds the system blocks, the merged
// turns, tool results, tools and inference settings of converse_request.json.
func TestConverseRequest(t *testing.T) {
	p, reqs := newFake(t, jsonReply(golden(t, "converse_response.json")))
	if _, err := p.Chat(t.Context(), travelRequest()); err != nil {
		t.Fatalf("Chat: %v", err)
	}
	got := only(t, reqs)
	if got.method != http.MethodPost || got.path != "/model/"+testModel+"/converse" || got.model != testModel {
		t.Errorf("request %s %s (model %q), want POST /model/%s/converse", got.method, got.path, got.model, testModel)
	}
	if !strings.HasPrefix(got.auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/") || !strings.Contains(got.auth, "/us-east-1/bedrock/aws4_request") {
		t.Errorf("Authorization = %q, want a SigV4 signature by AKIDTEST for bedrock in us-east-1", got.auth)
	}
	if want, body := decode(t, golden(t, "converse_request.json")), decode(t, got.body); !reflect.DeepEqual(body, want) {
		t.Errorf("body:\n%s\nwant converse_request.json", got.body)
	}
}

func BenchmarkTranslate(b *testing.B) {
	req := travelRequest()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := translate(req); err != nil {
			b.Fatal(err)
		}
	}
}

// travelRequest is a conversation using every translated feature: system
// messages, an image, tool calls and their results, a user turn after the
// results, inference settings, tools and a tool choice.
func travelRequest() *llm.Request {
	return &llm.Request{
		Model: testModel,
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: text("You are a travel agent.")},
			{Role: llm.RoleSystem, Content: text("Answer briefly.")},
			{Role: llm.RoleUser, Content: []llm.Part{
				{Type: llm.PartText, Text: "What is the weather in Paris and Rome?"},
				{Type: llm.PartImage, Image: &llm.Image{MediaType: "image/png", Data: []byte("\x89PNG\r\n\x1a\n")}},
			}},
			{Role: llm.RoleAssistant, Content: []llm.Part{
				{Type: llm.PartText, Text: "Let me check."},
				toolCall("call_1", "get_weather", `{"city":"Paris","days":3,"trip":9007199254740993}`),
				toolCall("call_2", "get_weather", ""),
			}},
			{Role: llm.RoleTool, Content: toolResult("call_1", "18C and sunny", false)},
			{Role: llm.RoleTool, Content: toolResult("call_2", "lookup failed", true)},
			{Role: llm.RoleUser, Content: text("Thanks. And tomorrow?")},
		},
		MaxTokens:   ptr(512),
		Temperature: ptr(0.5),
		TopP:        ptr(0.25),
		Stop:        []string{"END"},
		Tools: []llm.Tool{
			{Name: "get_weather", Description: "Current weather for a city.", Parameters: json.RawMessage(
				`{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer","maximum":10}},"required":["city"]}`)},
			{Name: "now"},
		},
		ToolChoice: &llm.ToolChoice{Mode: llm.ToolChoiceTool, Name: "get_weather"},
	}
}

// TestToolChoice checks each canonical tool choice on the wire. Converse
// has no "none": the tools are left out, unless the conversation already
// holds tool blocks, which Bedrock accepts only with a toolConfig.
func TestToolChoice(t *testing.T) {
	tools := []llm.Tool{{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object"}`)}}
	plain := []llm.Message{{Role: llm.RoleUser, Content: text("hi")}}
	withTools := []llm.Message{
		{Role: llm.RoleUser, Content: text("weather?")},
		{Role: llm.RoleAssistant, Content: []llm.Part{toolCall("c1", "get_weather", "{}")}},
		{Role: llm.RoleTool, Content: toolResult("c1", "sunny", false)},
	}
	for _, tc := range []struct {
		name       string
		choice     *llm.ToolChoice
		msgs       []llm.Message
		wantTools  bool
		wantChoice string // JSON of toolConfig.toolChoice; "" for none
	}{
		{"unset", nil, plain, true, ""},
		{"auto", &llm.ToolChoice{Mode: llm.ToolChoiceAuto}, plain, true, `{"auto":{}}`},
		{"required", &llm.ToolChoice{Mode: llm.ToolChoiceRequired}, plain, true, `{"any":{}}`},
		{"tool", &llm.ToolChoice{Mode: llm.ToolChoiceTool, Name: "get_weather"}, plain, true, `{"tool":{"name":"get_weather"}}`},
		{"none", &llm.ToolChoice{Mode: llm.ToolChoiceNone}, plain, false, ""},
		{"none with tool history", &llm.ToolChoice{Mode: llm.ToolChoiceNone}, withTools, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, reqs := newFake(t, jsonReply(golden(t, "converse_response.json")))
			req := &llm.Request{Model: testModel, Messages: tc.msgs, Tools: tools, ToolChoice: tc.choice}
			if _, err := p.Chat(t.Context(), req); err != nil {
				t.Fatalf("Chat: %v", err)
			}
			var body struct {
				ToolConfig *struct {
					Tools      []json.RawMessage `json:"tools"`
					ToolChoice json.RawMessage   `json:"toolChoice"`
				} `json:"toolConfig"`
			}
			if err := json.Unmarshal(only(t, reqs).body, &body); err != nil {
				t.Fatal(err)
			}
			if !tc.wantTools {
				if body.ToolConfig != nil {
					t.Fatalf("toolConfig sent, want none")
				}
				return
			}
			if body.ToolConfig == nil || len(body.ToolConfig.Tools) != 1 {
				t.Fatalf("toolConfig = %+v, want the one tool", body.ToolConfig)
			}
			if got := string(body.ToolConfig.ToolChoice); got != tc.wantChoice {
				t.Errorf("toolChoice = %s, want %s", got, tc.wantChoice)
			}
		})
	}
}

// TestBadRequest checks that requests Bedrock cannot take fail before
// anything is sent, as 400s naming the field.
func TestBadRequest(t *testing.T) {
	for _, tc := range []struct {
		name      string
		msg       llm.Message
		wantParam string
		wantText  string
	}{
		{"image by URL", llm.Message{Role: llm.RoleUser, Content: []llm.Part{
			{Type: llm.PartImage, Image: &llm.Image{URL: "https://example.com/cat.png"}}}},
			"messages[0].content[0]", "Bedrock accepts only inline images"},
		{"image type", llm.Message{Role: llm.RoleUser, Content: []llm.Part{
			{Type: llm.PartImage, Image: &llm.Image{MediaType: "image/tiff", Data: []byte("II*")}}}},
			"messages[0].content[0]", "image/tiff"},
		{"tool arguments", llm.Message{Role: llm.RoleAssistant, Content: []llm.Part{toolCall("c1", "f", `{"a":`)}},
			"messages[0].content[0]", "not valid JSON"},
		{"role", llm.Message{Role: "developer", Content: text("x")}, "messages[0].role", "developer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, reqs := newFake(t, jsonReply(golden(t, "converse_response.json")))
			req := &llm.Request{Model: testModel, Messages: []llm.Message{tc.msg}}
			for _, call := range []func() error{
				func() error { _, err := p.Chat(t.Context(), req); return err },
				func() error { _, err := p.ChatStream(t.Context(), req); return err },
			} {
				var e *llm.Error
				if err := call(); !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Param != tc.wantParam || !strings.Contains(e.Message, tc.wantText) {
					t.Errorf("err = %#v, want a 400 on %s saying %q", err, tc.wantParam, tc.wantText)
				}
			}
			if len(reqs) != 0 {
				t.Errorf("a bad request reached Bedrock")
			}
		})
	}
}

// TestConverseResponse checks the translation of Converse answers.
func TestConverseResponse(t *testing.T) {
	for _, tc := range []struct {
		golden string
		want   llm.Response
	}{
		{"converse_response.json", llm.Response{
			ID: testRequestID, Model: testModel,
			Content:    text("Paris is the capital of France."),
			StopReason: llm.StopEnd,
			// inputTokens 12 + cacheRead 2000 + cacheWrite 48
			Usage: llm.Usage{InputTokens: 2060, OutputTokens: 9, CachedInputTokens: 2000, CacheWriteTokens: 48},
		}},
		{"converse_tool_use.json", llm.Response{
			ID: testRequestID, Model: testModel,
			Content: []llm.Part{
				{Type: llm.PartText, Text: "Let me check the weather in both cities."},
				toolCall("tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "get_weather", `{"city":"Paris","days":3,"units":{"temperature":"celsius"}}`),
				toolCall("tooluse_q2JbbKhxTJ2A9SZTM3pM8w", "get_weather", `{"city":"Rome","days":1,"detailed":false}`),
			},
			StopReason: llm.StopToolCalls,
			Usage:      llm.Usage{InputTokens: 431, OutputTokens: 96},
		}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			p, _ := newFake(t, jsonReply(golden(t, tc.golden)))
			got, err := p.Chat(t.Context(), &llm.Request{Model: testModel, Messages: []llm.Message{{Role: llm.RoleUser, Content: text("hi")}}})
			if err != nil {
				t.Fatalf("Chat: %v", err)
			}
			// Arguments are compared as JSON values: key order is the
			// encoder's business.
			for i, part := range got.Content {
				if part.Type == llm.PartToolCall && i < len(tc.want.Content) && tc.want.Content[i].ToolCall != nil {
					g, w := decode(t, []byte(part.ToolCall.Arguments)), decode(t, []byte(tc.want.Content[i].ToolCall.Arguments))
					if !reflect.DeepEqual(g, w) {
						t.Errorf("tool call %d arguments = %s, want %s", i, part.ToolCall.Arguments, tc.want.Content[i].ToolCall.Arguments)
					}
					part.ToolCall.Arguments = tc.want.Content[i].ToolCall.Arguments
				}
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("response = %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestStopReason(t *testing.T) {
	for in, want := range map[types.StopReason]llm.StopReason{
		types.StopReasonEndTurn:                    llm.StopEnd,
		types.StopReasonStopSequence:               llm.StopEnd,
		types.StopReasonMaxTokens:                  llm.StopLength,
		types.StopReasonModelContextWindowExceeded: llm.StopLength,
		types.StopReasonToolUse:                    llm.StopToolCalls,
		types.StopReasonGuardrailIntervened:        llm.StopContentFilter,
		types.StopReasonContentFiltered:            llm.StopContentFilter,
		types.StopReasonMalformedToolUse:           llm.StopEnd,
		"added_later":                              llm.StopEnd,
	} {
		if got := stopReason(in); got != want {
			t.Errorf("stopReason(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNew checks the configuration New refuses, and the region taken from
// the environment.
func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"half a key", Config{Region: "us-east-1", AccessKeyID: "AKIDTEST"}, "set together"},
		{"relative endpoint", Config{Region: "us-east-1", Endpoint: "bedrock.local"}, "absolute URL"},
		{"no region", Config{}, "no region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(t.Context(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New(%+v) = %v, want an error saying %q", tc.cfg, err, tc.want)
			}
		})
	}
	t.Run("region from AWS_REGION", func(t *testing.T) {
		t.Setenv("AWS_REGION", "eu-west-3")
		p, err := New(t.Context(), Config{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if got := p.client.Options().Region; got != "eu-west-3" {
			t.Errorf("region = %q, want eu-west-3", got)
		}
	})
}

// closingBody reads like the SDK's request body: io.EOF once closed.
type closingBody struct {
	r      io.Reader
	closed bool
}

func (b *closingBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, io.EOF
	}
	return b.r.Read(p)
}

func (b *closingBody) Close() error { b.closed = true; return nil }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestOwnBody checks that the transport reads a body the SDK cannot close
// under it.
func TestOwnBody(t *testing.T) {
	const payload = `{"messages":[]}`
	sdkBody := &closingBody{r: strings.NewReader(payload)}
	var sent []byte
	c := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sdkBody.Close() // the SDK, once response headers are in
		var err error
		if sent, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
		if r.ContentLength != int64(len(payload)) {
			t.Errorf("ContentLength = %d, want %d", r.ContentLength, len(payload))
		}
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})}
	req, err := http.NewRequest(http.MethodPost, "http://bedrock.test/model/m/converse", sdkBody)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(payload))
	if _, err := (ownBody{c}).Do(req); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if string(sent) != payload {
		t.Errorf("transport read %q, want %q", sent, payload)
	}
}
