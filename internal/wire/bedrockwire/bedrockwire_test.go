package bedrockwire

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/junctionhq/junction/internal/wire/jsonenc"
	"github.com/junctionhq/junction/internal/wire/llm"
)

func golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }

func text(s string) llm.Part { return llm.Part{Type: llm.PartText, Text: s} }

// TestDecodeConverseRequest decodes a request using every mapped member.
func TestDecodeConverseRequest(t *testing.T) {
	req, meta, err := DecodeConverseRequest(golden(t, "converse_request.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := &llm.Request{
		Dialect: Dialect,
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: []llm.Part{text("You are a travel agent."), text("Answer briefly.")}},
			{Role: llm.RoleUser, Content: []llm.Part{
				text("What is the weather in Paris and Rome?"),
				{Type: llm.PartImage, Image: &llm.Image{MediaType: "image/png", Data: []byte("\x89PNG\r\n\x1a\n")}},
			}},
			{Role: llm.RoleAssistant, Content: []llm.Part{
				text("Let me check."),
				{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", Name: "get_weather", Arguments: `{"city":"Paris","days":3}`}},
				{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "tooluse_2", Name: "get_weather", Arguments: `{"city":"Rome"}`}},
			}},
			{Role: llm.RoleTool, Content: []llm.Part{
				{Type: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", Content: `{"temp_c":18,"sky":"sunny"}`}},
				{Type: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: "tooluse_2", Content: "lookup failed", IsError: true}},
			}},
			{Role: llm.RoleUser, Content: []llm.Part{text("Thanks. And tomorrow?")}},
		},
		MaxTokens:   ptr(512),
		Temperature: ptr(0.5),
		TopP:        ptr(0.9),
		Stop:        []string{"END"},
		Tools: []llm.Tool{{Name: "get_weather", Description: "Current weather for a city.",
			Parameters: json.RawMessage(`{"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}`)}},
		ToolChoice: &llm.ToolChoice{Mode: llm.ToolChoiceTool, Name: "get_weather"},
	}
	if !reflect.DeepEqual(req, want) {
		g, _ := json.MarshalIndent(req, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("decoded\n%s\nwant\n%s", g, w)
	}
	if !reflect.DeepEqual(meta, map[string]string{"team": "travel", "app": "planner"}) {
		t.Fatalf("requestMetadata %v", meta)
	}
}

func TestDecodeToolChoices(t *testing.T) {
	const tools = `"tools":[{"toolSpec":{"name":"f","inputSchema":{"json":{"type":"object"}}}}]`
	for choice, want := range map[string]llm.ToolChoice{
		`{"auto":{}}`:           {Mode: llm.ToolChoiceAuto},
		`{"any":{}}`:            {Mode: llm.ToolChoiceRequired},
		`{"tool":{"name":"f"}}`: {Mode: llm.ToolChoiceTool, Name: "f"},
	} {
		body := `{"messages":[{"role":"user","content":[{"text":"hi"}]}],"toolConfig":{` + tools + `,"toolChoice":` + choice + `}}`
		req, _, err := DecodeConverseRequest([]byte(body))
		if err != nil || req.ToolChoice == nil || *req.ToolChoice != want {
			t.Errorf("%s: %+v, %v", choice, req.ToolChoice, err)
		}
	}
}

// TestDecodeRefusesWhatCannotBeMapped checks that each member Junction
// cannot honour gets a 400 naming it.
func TestDecodeRefusesWhatCannotBeMapped(t *testing.T) {
	user := func(block string) string {
		return `{"messages":[{"role":"user","content":[` + block + `]}]}`
	}
	cases := []struct {
		name, body, want string
	}{
		{"not JSON", `{"messages":`, "not valid JSON"},
		{"wrong type", `{"messages":{"role":"user"}}`, "messages: expected a list"},
		{"no messages", `{"messages":[]}`, "messages: required"},
		{"bad role", `{"messages":[{"role":"system","content":[{"text":"x"}]}]}`, `messages[0].role: "system" is not one of user, assistant`},
		{"empty content", `{"messages":[{"role":"user","content":[]}]}`, "messages[0].content: must not be empty"},
		{"document", user(`{"document":{"format":"pdf","name":"a","source":{"bytes":"AA=="}}}`), "messages[0].content[0].document: document blocks cannot be mapped"},
		{"video", user(`{"video":{"format":"mp4","source":{"bytes":"AA=="}}}`), "messages[0].content[0].video"},
		{"s3 image", user(`{"image":{"format":"png","source":{"s3Location":{"uri":"s3://b/k.png"}}}}`), "Junction cannot read S3"},
		{"bad image format", user(`{"image":{"format":"bmp","source":{"bytes":"AA=="}}}`), `"bmp" is not one of png, jpeg, gif, webp`},
		{"bad base64", user(`{"image":{"format":"png","source":{"bytes":"%%%"}}}`), "base64"},
		{"empty block", user(`{}`), "a content block needs one of"},
		{"image tool result", user(`{"toolResult":{"toolUseId":"t","content":[{"image":{"format":"png","source":{"bytes":"AA=="}}}]}}`), "only text and json tool results"},
		{"tool use from the user", user(`{"toolUse":{"toolUseId":"t","name":"f","input":{}}}`), "only assistant turns hold toolUse"},
		{"model fields", `{"messages":[{"role":"user","content":[{"text":"x"}]}],"additionalModelRequestFields":{"top_k":5}}`, "additionalModelRequestFields"},
		{"prompt variables", `{"messages":[{"role":"user","content":[{"text":"x"}]}],"promptVariables":{"a":{"text":"b"}}}`, "promptVariables"},
		{"max tokens", `{"messages":[{"role":"user","content":[{"text":"x"}]}],"inferenceConfig":{"maxTokens":0}}`, "inferenceConfig.maxTokens: must be at least 1"},
		{"temperature", `{"messages":[{"role":"user","content":[{"text":"x"}]}],"inferenceConfig":{"temperature":1.5}}`, "inferenceConfig.temperature"},
		{"system tool", `{"messages":[{"role":"user","content":[{"text":"x"}]}],"toolConfig":{"tools":[{"systemTool":{"name":"nova_grounding"}}]}}`, "systemTool"},
		{"no schema", `{"messages":[{"role":"user","content":[{"text":"x"}]}],"toolConfig":{"tools":[{"toolSpec":{"name":"f"}}]}}`, "inputSchema.json: required"},
		{"unknown tool choice", `{"messages":[{"role":"user","content":[{"text":"x"}]}],"toolConfig":{"tools":[{"toolSpec":{"name":"f","inputSchema":{"json":{}}}}],"toolChoice":{"tool":{"name":"g"}}}}`, `"g" is not one of the request's tools`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := DecodeConverseRequest([]byte(tc.body))
			e, ok := err.(*llm.Error)
			if !ok || e.Status != http.StatusBadRequest || !strings.Contains(e.Message, tc.want) {
				t.Fatalf("err = %v, want a 400 containing %q", err, tc.want)
			}
			if code, status := ErrorCode(e); code != CodeValidation || status != http.StatusBadRequest {
				t.Fatalf("answered as %s %d", code, status)
			}
		})
	}
}

func sameJSON(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	json.Unmarshal(want, &w)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestEncodeConverseResponse(t *testing.T) {
	t.Run("text with cache usage", func(t *testing.T) {
		out, err := EncodeConverseResponse(&llm.Response{
			Content:    []llm.Part{text("Paris will be sunny tomorrow, 19 C.")},
			StopReason: llm.StopEnd,
			// Canonical input includes the cache reads and writes.
			Usage: llm.Usage{InputTokens: 4 + 1000 + 748, OutputTokens: 116, CachedInputTokens: 1000, CacheWriteTokens: 748},
		}, 1275*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, out, golden(t, "converse_response_text.json"))
	})
	t.Run("tool use", func(t *testing.T) {
		out, err := EncodeConverseResponse(&llm.Response{
			Content: []llm.Part{text("Let me look that up."), {Type: llm.PartToolCall, ToolCall: &llm.ToolCall{
				ID: "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", Name: "get_weather", Arguments: `{"city":"Paris","unit":"celsius"}`}}},
			StopReason: llm.StopToolCalls,
			Usage:      llm.Usage{InputTokens: 410, OutputTokens: 52},
		}, 873*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, out, golden(t, "converse_response_tool_use.json"))
	})
	for reason, want := range map[llm.StopReason]string{llm.StopEnd: "end_turn", llm.StopLength: "max_tokens",
		llm.StopToolCalls: "tool_use", llm.StopContentFilter: "content_filtered"} {
		if got := StopReason(reason); got != want {
			t.Errorf("StopReason(%s) = %s, want %s", reason, got, want)
		}
	}
	if got := string(ToolInput("not json")); got != `"not json"` {
		t.Errorf("ToolInput of non-JSON = %s", got)
	}
}

// frame is one decoded event-stream message, as the stream_*.json golden
// files list them.
type frame struct {
	Event     string          `json:"event,omitempty"`
	Exception string          `json:"exception,omitempty"`
	Payload   json.RawMessage `json:"payload"`
}

// decodeFrames decodes an event stream with the SDK's decoder, checking
// the headers every message carries.
func decodeFrames(t *testing.T, b []byte) []frame {
	t.Helper()
	dec := eventstream.NewDecoder()
	r := bytes.NewReader(b)
	var out []frame
	for r.Len() > 0 {
		msg, err := dec.Decode(r, nil)
		if err != nil {
			t.Fatalf("frame %d: %v", len(out), err)
		}
		h := func(name string) string {
			if v := msg.Headers.Get(name); v != nil {
				return v.String()
			}
			return ""
		}
		if h(":content-type") != "application/json" {
			t.Fatalf("frame %d: :content-type %q", len(out), h(":content-type"))
		}
		switch h(":message-type") {
		case "event":
			out = append(out, frame{Event: h(":event-type"), Payload: bytes.Clone(msg.Payload)})
		case "exception":
			out = append(out, frame{Exception: h(":exception-type"), Payload: bytes.Clone(msg.Payload)})
		default:
			t.Fatalf("frame %d: :message-type %q", len(out), h(":message-type"))
		}
	}
	return out
}

func checkFrames(t *testing.T, got []frame, goldenName string) {
	t.Helper()
	var want []frame
	if err := json.Unmarshal(golden(t, goldenName), &want); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d frames, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Event != want[i].Event || got[i].Exception != want[i].Exception {
			t.Fatalf("frame %d is %s%s, want %s%s", i, got[i].Event, got[i].Exception, want[i].Event, want[i].Exception)
		}
		sameJSON(t, got[i].Payload, want[i].Payload)
	}
}

func write(t *testing.T, sw *StreamWriter, evs ...llm.Event) {
	t.Helper()
	for _, ev := range evs {
		if _, err := sw.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStreamWriter(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		var buf bytes.Buffer
		sw := NewStreamWriter(&buf)
		write(t, sw,
			llm.Event{Type: llm.EventStart, ID: "x", Model: "m"},
			llm.Event{Type: llm.EventText, Text: "Hello"},
			llm.Event{Type: llm.EventText, Text: ""},
			llm.Event{Type: llm.EventText, Text: " world"},
			// Usage before stop, as OpenAI-style upstreams may send it,
			// still follows messageStop on the wire.
			llm.Event{Type: llm.EventUsage, Usage: &llm.Usage{InputTokens: 25, OutputTokens: 2, CachedInputTokens: 5}},
			llm.Event{Type: llm.EventStop, StopReason: llm.StopEnd},
		)
		if err := sw.End(42 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		checkFrames(t, decodeFrames(t, buf.Bytes()), "stream_text.json")
	})
	t.Run("tool use", func(t *testing.T) {
		var buf bytes.Buffer
		sw := NewStreamWriter(&buf)
		write(t, sw,
			llm.Event{Type: llm.EventStart},
			llm.Event{Type: llm.EventText, Text: "Checking."},
			llm.Event{Type: llm.EventToolCall, Index: 0, ToolCall: &llm.ToolCall{ID: "tooluse_1", Name: "get_weather"}},
			llm.Event{Type: llm.EventToolArgs, Index: 0, ToolCall: &llm.ToolCall{Arguments: `{"city":`}},
			llm.Event{Type: llm.EventToolArgs, Index: 0, ToolCall: &llm.ToolCall{Arguments: `"Paris"}`}},
			llm.Event{Type: llm.EventToolCall, Index: 1, ToolCall: &llm.ToolCall{ID: "tooluse_2", Name: "get_time"}},
			llm.Event{Type: llm.EventToolArgs, Index: 1, ToolCall: &llm.ToolCall{Arguments: `{}`}},
			llm.Event{Type: llm.EventStop, StopReason: llm.StopToolCalls},
			llm.Event{Type: llm.EventUsage, Usage: &llm.Usage{InputTokens: 410, OutputTokens: 52}},
		)
		if err := sw.End(42 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		checkFrames(t, decodeFrames(t, buf.Bytes()), "stream_tool_use.json")
	})
	t.Run("failure", func(t *testing.T) {
		var buf bytes.Buffer
		sw := NewStreamWriter(&buf)
		write(t, sw, llm.Event{Type: llm.EventStart}, llm.Event{Type: llm.EventText, Text: "Hel"})
		if err := sw.Exception(&llm.Error{Status: 502, Type: llm.ErrUpstream, Provider: "openai", Message: "upstream closed the connection unexpectedly"}); err != nil {
			t.Fatal(err)
		}
		checkFrames(t, decodeFrames(t, buf.Bytes()), "stream_error.json")
	})
}

func TestErrorCodes(t *testing.T) {
	cases := []struct {
		e      *llm.Error
		code   string
		status int
		stream string
	}{
		{&llm.Error{Status: 400, Type: llm.ErrInvalidRequest}, "ValidationException", 400, "validationException"},
		{&llm.Error{Status: 413, Type: llm.ErrTooLarge}, "ValidationException", 400, "modelStreamErrorException"},
		{&llm.Error{Status: 401, Type: llm.ErrAuthentication}, "UnrecognizedClientException", 403, "modelStreamErrorException"},
		{&llm.Error{Status: 403, Type: llm.ErrAuthentication, Code: "InvalidSignatureException"}, "InvalidSignatureException", 403, "modelStreamErrorException"},
		{&llm.Error{Status: 403, Type: llm.ErrPermission}, "AccessDeniedException", 403, "modelStreamErrorException"},
		{&llm.Error{Status: 404, Type: llm.ErrNotFound}, "ResourceNotFoundException", 404, "modelStreamErrorException"},
		{&llm.Error{Status: 429, Type: llm.ErrRateLimit}, "ThrottlingException", 429, "throttlingException"},
		{&llm.Error{Status: 504, Type: llm.ErrTimeout}, "ModelTimeoutException", 408, "modelStreamErrorException"},
		{&llm.Error{Status: 502, Type: llm.ErrUpstream}, "ModelErrorException", 424, "modelStreamErrorException"},
		{&llm.Error{Status: 503, Type: llm.ErrOverloaded}, "ServiceUnavailableException", 503, "serviceUnavailableException"},
		{&llm.Error{Status: 500, Type: llm.ErrInternal}, "InternalServerException", 500, "internalServerException"},
	}
	for _, tc := range cases {
		code, status := ErrorCode(tc.e)
		if code != tc.code || status != tc.status || StreamException(tc.e) != tc.stream {
			t.Errorf("%s: %s %d %s, want %s %d %s", tc.e.Type, code, status, StreamException(tc.e), tc.code, tc.status, tc.stream)
		}
	}
}

func BenchmarkDecodeConverseRequest(b *testing.B) {
	body := golden(b, "converse_request.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeConverseRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAppendStringMatchesEncodingJSON checks the stream writer's string
// encoder against encoding/json.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain words", `quote " and \ backslash`, "tab\tnew\nline\r\b\f", "\x00\x01\x1f\x7f",
		"<b>&amp;</b>", "héllo wörld 日本語 🙂", "bad \xff utf8 \xc3", "line\u2028sep\u2029", `{"city":"Paris"}`} {
		want, _ := json.Marshal(s)
		if got := jsonenc.AppendString(nil, s); string(got) != string(want) {
			t.Errorf("jsonenc.AppendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("héllo \x00 \xff <&> \u2028")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := jsonenc.AppendString(nil, s); string(got) != string(want) {
			t.Fatalf("jsonenc.AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func BenchmarkStreamWriter(b *testing.B) {
	evs := []llm.Event{{Type: llm.EventStart}}
	for _, w := range strings.SplitAfter("Hello from the fake upstream. Junction forwarded this.", " ") {
		evs = append(evs, llm.Event{Type: llm.EventText, Text: w})
	}
	evs = append(evs, llm.Event{Type: llm.EventStop, StopReason: llm.StopEnd}, llm.Event{Type: llm.EventUsage, Usage: &llm.Usage{InputTokens: 12, OutputTokens: 9}})
	b.ReportAllocs()
	for b.Loop() {
		sw := NewStreamWriter(io.Discard)
		for _, ev := range evs {
			if _, err := sw.Write(ev); err != nil {
				b.Fatal(err)
			}
		}
		if err := sw.End(time.Millisecond); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDecodeGuardrailConfig(t *testing.T) {
	g, err := DecodeGuardrailConfig([]byte(`{"messages":[],"guardrailConfig":{"guardrailIdentifier":"support","guardrailVersion":"DRAFT","trace":"enabled","streamProcessingMode":"async"}}`))
	if err != nil || g.GuardrailIdentifier != "support" || g.GuardrailVersion != "DRAFT" || g.Trace != "enabled" || g.StreamProcessingMode != "async" {
		t.Fatalf("%+v %v", g, err)
	}
	if g, err := DecodeGuardrailConfig([]byte(`{"messages":[]}`)); g != nil || err != nil {
		t.Fatalf("none: %+v %v", g, err)
	}
	for body, want := range map[string]string{
		`{"guardrailConfig":{"guardrailIdentifier":"x"}}`:                                                       "guardrailVersion are required",
		`{"guardrailConfig":{"guardrailIdentifier":"x","guardrailVersion":"1","trace":"loud"}}`:                 "guardrailConfig.trace",
		`{"guardrailConfig":{"guardrailIdentifier":"x","guardrailVersion":"1","streamProcessingMode":"later"}}`: "streamProcessingMode",
	} {
		if _, err := DecodeGuardrailConfig([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}
