package anthropicwire

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

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

func text(s string) llm.Part { return llm.Part{Type: llm.PartText, Text: s} }

func TestDecodeFullRequest(t *testing.T) {
	req, err := DecodeRequest(golden(t, "request_full.json"))
	if err != nil {
		t.Fatal(err)
	}
	n := func(i int) *int { return &i }
	f := func(v float64) *float64 { return &v }
	want := &llm.Request{
		Model: "claude-sonnet-4-5",
		Messages: []llm.Message{
			// The system blocks lead, as one system message.
			{Role: llm.RoleSystem, Content: []llm.Part{text("You are a weather assistant."), text("Answer briefly.")}},
			{Role: llm.RoleUser, Content: []llm.Part{text("What's the weather like in San Francisco?")}},
			// The thinking block has no canonical form.
			{Role: llm.RoleAssistant, Content: []llm.Part{
				text("I'll check the current weather in San Francisco for you."),
				{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "toolu_01A09q90qw90lq917835lq9", Name: "get_weather",
					Arguments: `{"location": "San Francisco, CA", "unit": "celsius"}`}},
				{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "toolu_01B19r01rx01mr028946mr0", Name: "get_time", Arguments: `{}`}},
			}},
			// The user turn splits: its tool results become a tool
			// message, the rest a user message.
			{Role: llm.RoleTool, Content: []llm.Part{
				{Type: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: "toolu_01A09q90qw90lq917835lq9", Content: "15 degrees"}},
				{Type: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: "toolu_01B19r01rx01mr028946mr0", Content: "clock\nunavailable", IsError: true}},
			}},
			{Role: llm.RoleUser, Content: []llm.Part{
				text("And what is in these pictures?"),
				{Type: llm.PartImage, Image: &llm.Image{MediaType: "image/png", Data: []byte("\x89PNG\r\n\x1a\n")}},
				{Type: llm.PartImage, Image: &llm.Image{URL: "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"}},
			}},
		},
		MaxTokens:   n(1024),
		Temperature: f(0.5),
		TopP:        f(0.9),
		Stop:        []string{"\n\nHuman:"},
		Tools: []llm.Tool{
			{Name: "get_weather", Description: "Get the current weather in a given location",
				Parameters: json.RawMessage(`{
        "type": "object",
        "properties": {
          "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
          "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
        },
        "required": ["location"]
      }`)},
			{Name: "get_time", Description: "Get the current time", Parameters: json.RawMessage(`{"type": "object", "properties": {}}`)},
		},
		ToolChoice: &llm.ToolChoice{Mode: llm.ToolChoiceAuto},
		User:       "13803d75-b4b5-4c3e-b2a2-6f21399b021b",
		Extra: map[string]json.RawMessage{
			"top_k":        json.RawMessage(`40`),
			"service_tier": json.RawMessage(`"auto"`),
		},
		Dialect: Dialect,
	}
	if !reflect.DeepEqual(req, want) {
		g, _ := json.MarshalIndent(req, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("decoded\ngot:  %s\nwant: %s", g, w)
	}
}

// An Anthropic request passed through to an Anthropic upstream keeps its
// meaning: only the shapes Junction normalises (system blocks, string
// content, tool result blocks) and what has no canonical form (thinking
// history, cache_control) differ.
func TestRequestRoundTrip(t *testing.T) {
	req, err := DecodeRequest(golden(t, "request_full.json"))
	if err != nil {
		t.Fatal(err)
	}
	req.Model = "claude-sonnet-4-5-20250929" // as the gateway does
	out, err := EncodeRequest(req, 4096, req.Stream)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, out, golden(t, "request_full_upstream.json"))

	// What was sent is a fixed point: decoded and encoded again, it is
	// the same body, byte for byte.
	again, err := DecodeRequest(out)
	if err != nil {
		t.Fatal(err)
	}
	out2, err := EncodeRequest(again, 4096, again.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if string(out2) != string(out) {
		t.Fatalf("second round differs:\n%s\n%s", out2, out)
	}
}

func TestDecodeRequestShapes(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, r *llm.Request)
	}{
		{"string system and content", `{"model":"m","max_tokens":5,"system":"Be brief.","messages":[{"role":"user","content":"hi"}]}`,
			func(t *testing.T, r *llm.Request) {
				if len(r.Messages) != 2 || r.Messages[0].Role != llm.RoleSystem || r.Messages[0].Text() != "Be brief." || r.Messages[1].Text() != "hi" {
					t.Fatalf("messages %+v", r.Messages)
				}
			}},
		{"empty system is no system", `{"model":"m","max_tokens":5,"system":"","messages":[{"role":"user","content":"hi"}]}`,
			func(t *testing.T, r *llm.Request) {
				if len(r.Messages) != 1 {
					t.Fatalf("messages %+v", r.Messages)
				}
			}},
		{"tool choice any", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"}}`,
			func(t *testing.T, r *llm.Request) {
				if r.ToolChoice.Mode != llm.ToolChoiceRequired {
					t.Fatalf("tool choice %+v", r.ToolChoice)
				}
			}},
		{"tool choice tool", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"f","disable_parallel_tool_use":true}}`,
			func(t *testing.T, r *llm.Request) {
				if *r.ToolChoice != (llm.ToolChoice{Mode: llm.ToolChoiceTool, Name: "f"}) {
					t.Fatalf("tool choice %+v", r.ToolChoice)
				}
			}},
		{"tool choice none", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"tool_choice":{"type":"none"}}`,
			func(t *testing.T, r *llm.Request) {
				if r.ToolChoice.Mode != llm.ToolChoiceNone {
					t.Fatalf("tool choice %+v", r.ToolChoice)
				}
			}},
		{"text after tool results stays in order", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"tool_result","tool_use_id":"t1"},{"type":"text","text":"b"}]}]}`,
			func(t *testing.T, r *llm.Request) {
				var roles []string
				for _, m := range r.Messages {
					roles = append(roles, string(m.Role))
				}
				if strings.Join(roles, ",") != "user,tool,user" || r.Messages[1].Content[0].ToolResult.Content != "" {
					t.Fatalf("messages %+v", r.Messages)
				}
			}},
		{"stream and nulls", `{"model":"m","max_tokens":5,"stream":true,"temperature":null,"metadata":null,"messages":[{"role":"user","content":"hi"}]}`,
			func(t *testing.T, r *llm.Request) {
				if !r.Stream || r.Temperature != nil || r.User != "" {
					t.Fatalf("request %+v", r)
				}
			}},
		{"prefilled assistant turn", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"{"}]}`,
			func(t *testing.T, r *llm.Request) {
				if len(r.Messages) != 2 || r.Messages[1].Role != llm.RoleAssistant || r.Messages[1].Text() != "{" {
					t.Fatalf("messages %+v", r.Messages)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeRequest([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
		})
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	const ok = `"model":"m","max_tokens":5`
	user := func(content string) string {
		return `{` + ok + `,"messages":[{"role":"user","content":` + content + `}]}`
	}
	tests := []struct {
		name, body string
		param      string // the field, in Anthropic's dotted notation
	}{
		{"not JSON", `{"model":`, ""},
		{"not an object", `[1]`, ""},
		{"missing model", `{"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, "model"},
		{"missing max_tokens", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, "max_tokens"},
		{"zero max_tokens", `{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}`, "max_tokens"},
		{"fractional max_tokens", `{"model":"m","max_tokens":1.5,"messages":[{"role":"user","content":"hi"}]}`, "max_tokens"},
		{"missing messages", `{` + ok + `}`, "messages"},
		{"empty messages", `{` + ok + `,"messages":[]}`, "messages"},
		{"messages not an array", `{` + ok + `,"messages":"hi"}`, "messages"},
		{"system role in messages", `{` + ok + `,"messages":[{"role":"system","content":"x"}]}`, "messages.0.role"},
		{"missing role", `{` + ok + `,"messages":[{"content":"x"}]}`, "messages.0.role"},
		{"missing content", `{` + ok + `,"messages":[{"role":"user"}]}`, "messages.0.content"},
		{"empty user content", user(`[]`), "messages.0.content"},
		{"content a number", user(`5`), "messages.0.content"},
		{"unknown block type", `{` + ok + `,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"text","text":"b"},{"type":"hologram"}]}]}`, "messages.1.content.1.type"},
		{"block without type", user(`[{"text":"x"}]`), "messages.0.content.0.type"},
		{"block not an object", user(`["x"]`), "messages.0.content.0"},
		{"tool_use from the user", user(`[{"type":"tool_use","id":"t","name":"f","input":{}}]`), "messages.0.content.0.type"},
		{"tool_use without id", `{` + ok + `,"messages":[{"role":"assistant","content":[{"type":"tool_use","name":"f","input":{}}]}]}`, "messages.0.content.0.id"},
		{"tool_use input not an object", `{` + ok + `,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":[1]}]}]}`, "messages.0.content.0.input"},
		{"tool_result from the assistant", `{` + ok + `,"messages":[{"role":"assistant","content":[{"type":"tool_result","tool_use_id":"t"}]}]}`, "messages.0.content.0.type"},
		{"tool_result without id", user(`[{"type":"tool_result","content":"x"}]`), "messages.0.content.0.tool_use_id"},
		{"tool_result with an image", user(`[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image"}]}]`), "messages.0.content.0.content.0.type"},
		{"image without source", user(`[{"type":"image"}]`), "messages.0.content.0.source"},
		{"image of an unknown type", user(`[{"type":"image","source":{"type":"base64","media_type":"image/tiff","data":"AAAA"}}]`), "messages.0.content.0.source.media_type"},
		{"image data not base64", user(`[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"!!"}}]`), "messages.0.content.0"},
		{"image source type", user(`[{"type":"image","source":{"type":"file","file_id":"f"}}]`), "messages.0.content.0.source.type"},
		{"system block not text", `{` + ok + `,"system":[{"type":"image"}],"messages":[{"role":"user","content":"x"}]}`, "system.0.type"},
		{"temperature too high", `{` + ok + `,"temperature":1.5,"messages":[{"role":"user","content":"x"}]}`, "temperature"},
		{"top_p too high", `{` + ok + `,"top_p":2,"messages":[{"role":"user","content":"x"}]}`, "top_p"},
		{"top_k negative", `{` + ok + `,"top_k":-1,"messages":[{"role":"user","content":"x"}]}`, "top_k"},
		{"stop_sequences a string", `{` + ok + `,"stop_sequences":"END","messages":[{"role":"user","content":"x"}]}`, "stop_sequences"},
		{"server tool", `{` + ok + `,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"x"}]}`, "tools.0.type"},
		{"tool without schema", `{` + ok + `,"tools":[{"name":"f"}],"messages":[{"role":"user","content":"x"}]}`, "tools.0.input_schema"},
		{"tool without name", `{` + ok + `,"tools":[{"input_schema":{}}],"messages":[{"role":"user","content":"x"}]}`, "tools.0.name"},
		{"tool choice type", `{` + ok + `,"tool_choice":{"type":"required"},"messages":[{"role":"user","content":"x"}]}`, "tool_choice.type"},
		{"tool choice without name", `{` + ok + `,"tool_choice":{"type":"tool"},"messages":[{"role":"user","content":"x"}]}`, "tool_choice.name"},
		{"tool choice of an unknown tool", `{` + ok + `,"tool_choice":{"type":"tool","name":"g"},"messages":[{"role":"user","content":"x"}]}`, "tool_choice.name"},
		{"stream not a boolean", `{` + ok + `,"stream":"yes","messages":[{"role":"user","content":"x"}]}`, "stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tt.body))
			var e *llm.Error
			if !errors.As(err, &e) || e.Status != 400 || e.Type != llm.ErrInvalidRequest || e.Param != tt.param {
				t.Fatalf("err = %#v, want a 400 naming %q", err, tt.param)
			}
			// The message leads with the field, as Anthropic's do.
			if tt.param != "" && !strings.HasPrefix(e.Message, tt.param+": ") {
				t.Fatalf("message %q does not start with %q", e.Message, tt.param+": ")
			}
		})
	}
}

func TestDecodeMissingMaxTokensMessage(t *testing.T) {
	_, err := DecodeRequest([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	if err == nil || err.Error() != "max_tokens: required, the most tokens the model may generate" {
		t.Fatalf("err = %v", err)
	}
}

func TestExtraOnlyForAnthropicUpstreams(t *testing.T) {
	req, err := DecodeRequest([]byte(`{"model":"m","max_tokens":5,"top_k":3,"max_tokens_extra":1,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := EncodeRequest(req, 1, false)
	if !strings.Contains(string(out), `"top_k":3`) || !strings.Contains(string(out), `"max_tokens_extra":1`) {
		t.Fatalf("extra fields not forwarded: %s", out)
	}
	req.Dialect = "openai"
	out, _ = EncodeRequest(req, 1, false)
	if strings.Contains(string(out), "top_k") {
		t.Fatalf("extra fields of another dialect forwarded: %s", out)
	}
}
