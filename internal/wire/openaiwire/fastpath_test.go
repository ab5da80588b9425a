package openaiwire

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// agree decodes data with the fast path available and with the full
// decoder alone, and reports how they differ, if they do.
func agree(data []byte) string {
	fast := ChunkDecoder{started: true}
	gotEv, gotErr, gotFail := fast.Decode(data)
	gotEv = append([]llm.Event(nil), gotEv...)
	var full ChunkDecoder
	wantEv, wantErr, wantFail := decodeFull(&full, data)
	if (gotFail == nil) != (wantFail == nil) {
		return fmt.Sprintf("fast err %v, full err %v", gotFail, wantFail)
	}
	if !reflect.DeepEqual(gotErr, wantErr) {
		return fmt.Sprintf("fast error body %+v, full %+v", gotErr, wantErr)
	}
	if len(gotEv) == 0 && len(wantEv) == 0 {
		return ""
	}
	a, _ := json.Marshal(gotEv)
	b, _ := json.Marshal(wantEv)
	if string(a) != string(b) {
		return fmt.Sprintf("fast %s, full %s", a, b)
	}
	return ""
}

// generatedChunks builds chunks the way different servers write them:
// members in any order, with whitespace, escapes, usage, errors, tool
// calls and finish reasons mixed in.
func generatedChunks() []string {
	heads := []string{
		`"id":"c","object":"chat.completion.chunk","created":1,"model":"m"`,
		`"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"`,
		`"model":"m","system_fingerprint":null`,
		`"id":"c\u00e9"`,
		`"usage": {"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}`,
		`"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}`,
		`"Usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}`,
		`"error":{"message":"overloaded","type":"server_error"}`,
		`"error": null, "usage": null`,
		`"created":1.5`,
		`"created":"1"`,
		`"model":true`,
		`"choices":null`,
	}
	choices := []string{
		`[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]`,
		`[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]`,
		`[{"index":0,"delta":{"content":"Hello"} , "finish_reason" : null }]`,
		`[{"index":0,"delta":{"content":"a \"b\""},"finish_reason":null}]`,
		`[{"index":0,"delta":{"content":""},"finish_reason":null}]`,
		`[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]`,
		`[{"index":0,"delta":{"content":"x"},"finish_reason":null,"finish_reason":"length"}]`,
		`[{"index":0,"delta":{"content":"x"},"finish_reason":null,"index":1}]`,
		`[{"index":0,"delta":{"content":"x","tool_calls":[{"index":0,"id":"t","function":{"name":"f","arguments":""}}]},"finish_reason":null}]`,
		`[{"index":0,"delta":{"content":"x"},"finish_reason":null},{"index":1,"delta":{"content":"y"},"finish_reason":null}]`,
		`[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]},"finish_reason":null}]`,
	}
	tails := []string{"", `"usage":null`, `"usage": {"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}`,
		`"error":{"message":"boom","type":"server_error"}`, `"choices":[]`, `"x":1e5`}
	var out []string
	for _, h := range heads {
		for _, c := range choices {
			for _, t := range tails {
				members := []string{h, `"choices":` + c}
				if t != "" {
					members = append(members, t)
				}
				out = append(out, "{"+strings.Join(members, ",")+"}")
				// choices first, the head after it
				rev := append([]string{members[1], members[0]}, members[2:]...)
				out = append(out, "{ "+strings.Join(rev, " , ")+" }\n")
			}
		}
	}
	out = append(out,
		`{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]`, // truncated
		`{"id":"a" "choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}`,
		`{,"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}`,
		`{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null},]}`,
		`{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}],}`,
		`{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]} trailing`,
		`{"choices":[{"index":0,"delta":{"content":"\xff"},"finish_reason":null}]}`,
		`{"choices":[{"index":0,"delta":{"content":"tab	in"},"finish_reason":null}]}`,
	)
	return out
}

// TestTextDeltaAgreesOnGeneratedChunks checks the fast path against the
// full decoder on every generated chunk, including the ones that broke it:
// usage before choices, "usage": with a space, an error before choices.
func TestTextDeltaAgreesOnGeneratedChunks(t *testing.T) {
	fastSeen := 0
	for _, chunk := range generatedChunks() {
		if _, ok := textDelta([]byte(chunk)); ok {
			fastSeen++
		}
		if d := agree([]byte(chunk)); d != "" {
			t.Errorf("%s\n  %s", chunk, d)
		}
	}
	if fastSeen == 0 {
		t.Fatal("no generated chunk took the fast path; the test checks nothing")
	}
	for _, chunk := range []string{
		`{"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4},"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}`,
		`{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage": {"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`,
		`{"error":{"message":"boom","type":"server_error"},"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}`,
	} {
		if _, ok := textDelta([]byte(chunk)); ok {
			t.Errorf("fast path took %s, which carries more than text", chunk)
		}
	}
}

// FuzzTextDelta fuzzes the fast path against the full decoder. Its seeds
// are the generated chunks, so a plain `go test` runs them all.
func FuzzTextDelta(f *testing.F) {
	for _, c := range generatedChunks() {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if d := agree(data); d != "" {
			t.Errorf("%q\n  %s", data, d)
		}
	})
}

func TestTextDeltaTakesTheBenchmarkChunk(t *testing.T) {
	chunk := `{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"Hello there"},"logprobs":null,"finish_reason":null}]}`
	if text, ok := textDelta([]byte(chunk)); !ok || text != "Hello there" {
		t.Fatalf("textDelta = %q, %v; want the fast path", text, ok)
	}
}
