package openaiwire

import (
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/sse"
)

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeFullRequestAndRoundTrip(t *testing.T) {
	req, err := DecodeChatRequest(golden(t, "chat_request_full.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Messages) != 4 || req.Messages[0].Role != llm.RoleSystem {
		t.Fatalf("messages %+v", req.Messages)
	}
	img := req.Messages[1].Content[1].Image
	if img == nil || img.MediaType != "image/png" || len(img.Data) != 8 || img.Detail != "low" {
		t.Fatalf("image %+v", img)
	}
	if tc := req.Messages[2].Content[0].ToolCall; tc == nil || tc.Name != "lookup" || tc.Arguments != `{"q":"cat"}` {
		t.Fatalf("tool call %+v", req.Messages[2].Content)
	}
	if tr := req.Messages[3].Content[0].ToolResult; tr == nil || tr.CallID != "call_1" || tr.Content != "a cat" {
		t.Fatalf("tool result %+v", req.Messages[3].Content)
	}
	if req.ToolChoice.Mode != llm.ToolChoiceTool || req.ToolChoice.Name != "lookup" || !req.Tools[0].Strict {
		t.Fatalf("tools %+v %+v", req.Tools, req.ToolChoice)
	}
	if *req.MaxTokens != 300 || req.Stop[0] != "END" || string(req.ResponseFormat) != `{"type": "json_object"}` {
		t.Fatalf("max=%v stop=%v rf=%s", req.MaxTokens, req.Stop, req.ResponseFormat)
	}
	for _, k := range []string{"seed", "logit_bias", "parallel_tool_calls", "max_completion_tokens"} {
		if _, ok := req.Extra[k]; !ok {
			t.Errorf("unmodelled field %s not kept", k)
		}
	}

	// Re-encoded for an OpenAI upstream, every field survives.
	req.Model = "gpt-4o-2024-08-06"
	out, err := EncodeChatRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("encoded body is not JSON: %v\n%s", err, out)
	}
	var want map[string]any
	json.Unmarshal(golden(t, "chat_request_full.json"), &want)
	want["model"] = "gpt-4o-2024-08-06"
	want["messages"].([]any)[0].(map[string]any)["role"] = "system" // developer is sent as system
	want["stop"] = []any{"END"}
	for k, v := range want {
		a, _ := json.Marshal(v)
		b, _ := json.Marshal(got[k])
		if string(a) != string(b) {
			t.Errorf("%s: sent %s, want %s", k, b, a)
		}
	}
	if _, ok := got["max_tokens"]; ok {
		t.Error("max_tokens sent beside max_completion_tokens")
	}
}

func TestExtraNotForwardedAcrossDialects(t *testing.T) {
	req, _ := DecodeChatRequest([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"seed":1}`))
	req.Dialect = "anthropic"
	out, _ := EncodeChatRequest(req)
	if strings.Contains(string(out), "seed") {
		t.Fatalf("a field of another dialect was forwarded: %s", out)
	}
}

func TestDecodeResponses(t *testing.T) {
	r, err := DecodeChatResponse(golden(t, "chat_response.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Content[0].Text != "Hello! How can I assist you today?" || r.StopReason != llm.StopEnd || r.Usage.InputTokens != 19 || r.Usage.OutputTokens != 10 {
		t.Fatalf("%+v", r)
	}
	r, err = DecodeChatResponse(golden(t, "chat_tool_calls_response.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Content) != 1 || r.Content[0].ToolCall.Name != "get_current_weather" || r.StopReason != llm.StopToolCalls {
		t.Fatalf("%+v", r)
	}
	// And back: a response with only tool calls has null content.
	b, _ := EncodeChatResponse(r, "chatcmpl-x", "my-model", 1)
	var w ChatResponse
	json.Unmarshal(b, &w)
	if w.Choices[0].Message.Content != nil || w.Choices[0].Message.ToolCalls[0].Function.Arguments != "{\n\"location\": \"Boston, MA\"\n}" || w.Model != "my-model" {
		t.Fatalf("%s", b)
	}
}

// streamThrough decodes a golden stream into events and re-encodes them
// as Junction would send them, returning both.
func streamThrough(t *testing.T, name string) ([]llm.Event, string) {
	t.Helper()
	r := sse.NewReader(strings.NewReader(string(golden(t, name))))
	var dec ChunkDecoder
	enc := ChunkEncoder{ID: "chatcmpl-j", Model: "alias", Created: 5}
	var events []llm.Event
	var out strings.Builder
	for {
		ev, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(ev.Data) == "[DONE]" {
			continue
		}
		evs, eb, err := dec.Decode(ev.Data)
		if err != nil || eb != nil {
			t.Fatalf("decode: %v %v", err, eb)
		}
		for _, e := range evs {
			events = append(events, e)
			out.WriteString(string(enc.Encode(e)) + "\n")
		}
	}
	return events, out.String()
}

func TestStreamText(t *testing.T) {
	events, out := streamThrough(t, "chat_stream.sse")
	var text string
	var usage *llm.Usage
	var stop llm.StopReason
	for _, e := range events {
		switch e.Type {
		case llm.EventText:
			text += e.Text
		case llm.EventUsage:
			usage = e.Usage
		case llm.EventStop:
			stop = e.StopReason
		}
	}
	if events[0].Type != llm.EventStart || text != "Hello!" || stop != llm.StopEnd || usage.InputTokens != 9 || usage.CachedInputTokens != 4 {
		t.Fatalf("events %+v", events)
	}
	// Every re-encoded chunk is a valid chat.completion.chunk.
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var c Chunk
		if err := json.Unmarshal([]byte(line), &c); err != nil || c.Object != "chat.completion.chunk" || c.Model != "alias" {
			t.Fatalf("bad chunk %s: %v", line, err)
		}
	}
}

func TestStreamToolCalls(t *testing.T) {
	events, out := streamThrough(t, "chat_stream_tool_calls.sse")
	args := map[int]string{}
	names := map[int]string{}
	for _, e := range events {
		switch e.Type {
		case llm.EventToolCall:
			names[e.Index] = e.ToolCall.Name
		case llm.EventToolArgs:
			args[e.Index] += e.ToolCall.Arguments
		}
	}
	if names[0] != "get_weather" || names[1] != "get_time" || args[0] != `{"location": "Paris"}` || args[1] != "{}" {
		t.Fatalf("names %v args %v", names, args)
	}
	if !strings.Contains(out, `"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":""}}]`) {
		t.Fatalf("re-encoded stream lacks the second tool call opening:\n%s", out)
	}
}

func TestDecodeChatRequestErrors(t *testing.T) {
	cases := map[string]string{
		`[]`: "",
		`{"model":"m","messages":[{"role":"user","content":[{"type":"audio"}]}]}`:                                             "messages[0].content[0].type",
		`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,xx"}}]}]}`: "base64",
		`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{}}]}`:                "tools[0].function.name",
		`{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"}`:                                  "tool_choice",
		`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}`:                                             "max_tokens",
		`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"ten"}`:                                         "max_tokens",
	}
	for body, want := range cases {
		_, err := DecodeChatRequest([]byte(body))
		e, ok := err.(*llm.Error)
		if !ok || e.Status != 400 || !strings.Contains(e.Message, want) {
			t.Errorf("%s: err = %v, want 400 mentioning %q", body, err, want)
		}
	}
}

func TestTextDeltaFastPathAgreesWithDecoder(t *testing.T) {
	cases := []struct {
		chunk string
		fast  bool
	}{
		{`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}`, true},
		{`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":" wor"},"finish_reason":null}],"usage":null}`, true},
		{`{"id":"c","choices":[{"index":0,"delta":{"content":"a \"quoted\" word"},"finish_reason":null}]}`, false},
		{`{"id":"c","choices":[{"index":0,"delta":{"content":"x","tool_calls":[]},"finish_reason":null}]}`, false},
		{`{"id":"c","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}`, false},
		{`{"id":"c","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null},{"index":1,"delta":{"content":"y"},"finish_reason":null}]}`, false},
		{`{"id":"c","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`, false},
		{`{"id":"c","choices":[{"index":0,"delta":{"content":"x"},"logprobs":{"content":[]},"finish_reason":null}]}`, false},
	}
	for _, tc := range cases {
		_, fast := textDelta([]byte(tc.chunk))
		if fast != tc.fast {
			t.Errorf("fast path %v, want %v: %s", fast, tc.fast, tc.chunk)
		}
		// Whichever path runs, the events are those of a full decode.
		var fastDec, slowDec ChunkDecoder
		fastDec.started, slowDec.started = true, true
		got, _, err := fastDec.Decode([]byte(tc.chunk))
		if err != nil {
			t.Fatal(err)
		}
		gotCopy := append([]llm.Event(nil), got...)
		var c Chunk
		json.Unmarshal([]byte(tc.chunk), &c)
		slowDec.pending = nil
		want, _, _ := decodeFull(&slowDec, []byte(tc.chunk))
		a, _ := json.Marshal(gotCopy)
		b, _ := json.Marshal(want)
		if string(a) != string(b) {
			t.Errorf("events differ for %s:\nfast %s\nfull %s", tc.chunk, a, b)
		}
	}
}

// decodeFull runs the decoder with the fast path out of the way.
func decodeFull(d *ChunkDecoder, data []byte) ([]llm.Event, *ErrorBody, error) {
	d.started, d.Full = false, true
	evs, eb, err := d.Decode(data)
	if len(evs) > 0 && evs[0].Type == llm.EventStart {
		evs = evs[1:]
	}
	return evs, eb, err
}

func BenchmarkChunkDecode(b *testing.B) {
	chunk := []byte(`{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"Hello there"},"logprobs":null,"finish_reason":null}]}`)
	d := ChunkDecoder{started: true}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d.Decode(chunk)
	}
}

func TestReasoningModelsGetMaxCompletionTokens(t *testing.T) {
	n := 300
	for model, want := range map[string]string{"o3-mini": "max_completion_tokens", "gpt-5": "max_completion_tokens", "o1": "max_completion_tokens",
		"gpt-4o-mini": "max_tokens", "openai/o4-mini": "max_completion_tokens", "ollama-llama3": "max_tokens"} {
		out, _ := EncodeChatRequest(&llm.Request{Model: model, MaxTokens: &n, Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hi"}}}}})
		var m map[string]any
		json.Unmarshal(out, &m)
		if m[want] != float64(300) || len(m) != 3 {
			t.Errorf("%s: %s", model, out)
		}
	}
}
