package openaiwire

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// encodeReference is EncodeChatResponse as it was written with
// encoding/json: the hand-written encoder must write its bytes.
func encodeReference(resp *llm.Response, id, model string, created int64) []byte {
	msg := ResponseMessage{Role: "assistant"}
	var text []byte
	hasText := false
	for _, p := range resp.Content {
		switch p.Type {
		case llm.PartText:
			text = append(text, p.Text...)
			hasText = true
		case llm.PartToolCall:
			msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: p.ToolCall.ID, Type: "function",
				Function: FunctionCall{Name: p.ToolCall.Name, Arguments: p.ToolCall.Arguments}})
		}
	}
	if hasText || len(msg.ToolCalls) == 0 {
		s := string(text)
		msg.Content = &s
	}
	finish := string(resp.StopReason)
	if finish == "" {
		finish = string(llm.StopEnd)
	}
	b, _ := json.Marshal(&ChatResponse{
		ID: id, Object: "chat.completion", Created: created, Model: model,
		Choices: []Choice{{Index: 0, Message: msg, FinishReason: finish, Logprobs: json.RawMessage("null")}},
		Usage:   usageToWire(resp.Usage),
	})
	return b
}

func usageToWire(u llm.Usage) *Usage {
	w := &Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.InputTokens + u.OutputTokens}
	if u.CachedInputTokens > 0 {
		w.PromptTokensDetails = &TokenDetails{CachedTokens: u.CachedInputTokens}
	}
	return w
}

func text(s string) llm.Part { return llm.Part{Type: llm.PartText, Text: s} }

func call(id, name, args string) llm.Part {
	return llm.Part{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: id, Name: name, Arguments: args}}
}

func encodeCases() []*llm.Response {
	return []*llm.Response{
		{Content: []llm.Part{text("Hello! How can I help?")}, StopReason: llm.StopEnd, Usage: llm.Usage{InputTokens: 19, OutputTokens: 10}},
		{},
		{Content: []llm.Part{text("a <b> & \"c\"\n\u2028 \xff"), text("\xe2\x82"), text("\xac done")}, StopReason: llm.StopLength,
			Usage: llm.Usage{InputTokens: 2006, OutputTokens: 300, CachedInputTokens: 1920}},
		{Content: []llm.Part{call("call_1", "get_weather", `{"city":"Paris"}`), call("", "", "")}, StopReason: llm.StopToolCalls},
		{Content: []llm.Part{text("thinking aloud"), call("c", "f", "{}")}, StopReason: llm.StopToolCalls},
		{Content: []llm.Part{{Type: llm.PartImage}}, StopReason: llm.StopContentFilter},
	}
}

func TestEncodeChatResponseWritesWhatEncodingJSONWrites(t *testing.T) {
	for _, r := range encodeCases() {
		for _, idModel := range [][2]string{{"chatcmpl-x", "my-model"}, {"", "<m>"}, {"id\"q", "mödel"}} {
			got, err := EncodeChatResponse(r, idModel[0], idModel[1], 1741569952)
			want := encodeReference(r, idModel[0], idModel[1], 1741569952)
			if err != nil || string(got) != string(want) {
				t.Errorf("%+v:\n got  %s\n want %s", r, got, want)
			}
		}
	}
}

// FuzzEncodeChatResponse holds the encoder to encoding/json on any text,
// tool call and usage.
func FuzzEncodeChatResponse(f *testing.F) {
	f.Add("Hello", "", "", "", "stop", 3, 4, 0, int64(1))
	f.Add("a\u2028<&>\xff", "call", "f", `{"a":1}`, "tool_calls", 0, 0, 9, int64(-5))
	f.Fuzz(func(t *testing.T, txt, id, name, args, finish string, in, out, cached int, created int64) {
		r := &llm.Response{StopReason: llm.StopReason(finish), Usage: llm.Usage{InputTokens: in, OutputTokens: out, CachedInputTokens: cached}}
		if txt != "" {
			r.Content = append(r.Content, text(txt))
		}
		if id != "" || name != "" {
			r.Content = append(r.Content, call(id, name, args))
		}
		got, _ := EncodeChatResponse(r, id, name, created)
		if want := encodeReference(r, id, name, created); string(got) != string(want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
}

func TestUsageChunkWritesWhatEncodingJSONWrites(t *testing.T) {
	for _, u := range []llm.Usage{{}, {InputTokens: 3, OutputTokens: 4}, {InputTokens: 3, OutputTokens: 4, CachedInputTokens: 2}} {
		want, _ := json.Marshal(usageToWire(u))
		if got := appendUsage(nil, u); string(got) != string(want) {
			t.Errorf("%+v: got %s, want %s", u, got, want)
		}
	}
}

// TestChunkHeadEscapesAsEncodingJSON: the id and model stamped on every
// chunk are escaped as encoding/json escapes them, and a model changed
// mid-stream is stamped from then on.
func TestChunkHeadEscapesAsEncodingJSON(t *testing.T) {
	for _, name := range []string{"gpt-4o", `a<b>&"c\d`, "line\u2028sep", "bad\xffutf8", "ünï"} {
		enc := ChunkEncoder{ID: "chatcmpl-" + name, Model: name, Created: 7}
		var want struct {
			ID      string `json:"id"`
			Object  string `json:"object"`
			Created int64  `json:"created"`
			Model   string `json:"model"`
		}
		want.ID, want.Object, want.Created, want.Model = enc.ID, "chat.completion.chunk", 7, name
		w, _ := json.Marshal(want)
		head := string(w[:len(w)-1]) + `,"choices":`
		for i, ev := range []llm.Event{{Type: llm.EventText, Text: "x"}, {Type: llm.EventStop}} {
			if got := string(enc.Encode(ev)); !strings.HasPrefix(got, head) {
				t.Errorf("%q, chunk %d: %s\n want it to start %s", name, i, got, head)
			}
		}
	}
	enc := ChunkEncoder{ID: "c", Model: "first", Created: 1}
	enc.Encode(llm.Event{Type: llm.EventText, Text: "a"})
	enc.SetModel("second")
	if got := string(enc.Encode(llm.Event{Type: llm.EventText, Text: "b"})); got != `{"id":"c","object":"chat.completion.chunk","created":1,"model":"second","choices":[{"index":0,"delta":{"content":"b"},"finish_reason":null}]}` {
		t.Errorf("after SetModel: %s", got)
	}
}
