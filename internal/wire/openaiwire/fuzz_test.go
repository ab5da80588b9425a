package openaiwire

import (
	"os"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// FuzzDecodeChatRequest: whatever a client sends, the decoder returns a
// request or a 400 saying what is wrong; it never panics.
func FuzzDecodeChatRequest(f *testing.F) {
	full, err := os.ReadFile("testdata/chat_request_full.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{string(full),
		`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}]}`,
		`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"1"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}`,
		`{"model":"m","messages":[],"max_tokens":-1,"temperature":"hot"}`, `[]`, `null`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeChatRequest(body)
		if err != nil {
			if e := llm.AsError(err); e.Status != 400 {
				t.Fatalf("error %d %q, want a 400", e.Status, e.Message)
			}
			return
		}
		if req == nil {
			t.Fatal("no request and no error")
		}
	})
}

// FuzzDecodeEmbedRequest is FuzzDecodeChatRequest for embeddings.
func FuzzDecodeEmbedRequest(f *testing.F) {
	for _, seed := range []string{`{"model":"e","input":"hi"}`, `{"model":"e","input":["a","b"],"dimensions":8}`,
		`{"model":"e","input":[1,2,3]}`, `{"input":""}`, `{`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := DecodeEmbedRequest(body); err != nil {
			if e := llm.AsError(err); e.Status != 400 {
				t.Fatalf("error %d %q, want a 400", e.Status, e.Message)
			}
		}
	})
}
