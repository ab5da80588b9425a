package bedrockwire

import (
	"os"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// FuzzDecodeConverseRequest: whatever a client sends to Converse, the
// decoders return a request (and its guardrailConfig) or a 400 saying what
// is wrong; they never panic.
func FuzzDecodeConverseRequest(f *testing.F) {
	full, err := os.ReadFile("testdata/converse_request.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{string(full),
		`{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`,
		`{"messages":[{"role":"user","content":[{"text":"hi"}]}],"system":[{"text":"s"}],"inferenceConfig":{"maxTokens":5,"temperature":0.5,"stopSequences":["x"]},"requestMetadata":{"team":"a"}}`,
		`{"messages":[{"role":"assistant","content":[{"toolUse":{"toolUseId":"t","name":"f","input":{}}}]},{"role":"user","content":[{"toolResult":{"toolUseId":"t","content":[{"json":{"a":1}}],"status":"success"}}]}],"toolConfig":{"tools":[{"toolSpec":{"name":"f","inputSchema":{"json":{"type":"object"}}}}]}}`,
		`{"messages":[{"role":"user","content":[{"text":"hi"}]}],"guardrailConfig":{"guardrailIdentifier":"g","guardrailVersion":"1","trace":"enabled","streamProcessingMode":"async"}}`,
		`{"messages":[{"role":"user","content":[{"image":{"format":"png","source":{"bytes":"AA=="}}}]}]}`,
		`{"messages":{}}`, `{`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _, err := DecodeConverseRequest(body)
		if err != nil {
			if e := llm.AsError(err); e.Status != 400 {
				t.Fatalf("error %d %q, want a 400", e.Status, e.Message)
			}
		} else if req == nil {
			t.Fatal("no request and no error")
		}
		if _, err := DecodeGuardrailConfig(body); err != nil {
			if e := llm.AsError(err); e.Status != 400 {
				t.Fatalf("guardrailConfig: error %d %q, want a 400", e.Status, e.Message)
			}
		}
	})
}
