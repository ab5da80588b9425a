package anthropicwire

import (
	"os"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// FuzzDecodeRequest: whatever a client sends to /v1/messages, the decoder
// returns a request or a 400 saying what is wrong; it never panics.
func FuzzDecodeRequest(f *testing.F) {
	full, err := os.ReadFile("testdata/request_full.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{string(full),
		`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","max_tokens":10,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}}]}]}`,
		`{"model":"m","max_tokens":10,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"1"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"}}`,
		`{"model":"m","messages":[]}`, `{"max_tokens":"x"}`, `0`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body)
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
