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

// agreeAfter decodes second with a fast decoder that has read first (so
// that first's frame may be remembered) and with the full decoder, and
// reports how they differ, if they do.
func agreeAfter(first, second []byte) string {
	fast := ChunkDecoder{started: true}
	fast.Decode(first)
	gotEv, gotErr, gotFail := fast.Decode(second)
	gotEv = append([]llm.Event(nil), gotEv...)
	full := ChunkDecoder{Full: true}
	full.Decode(first)
	wantEv, wantErr, wantFail := full.Decode(second)
	if len(wantEv) > 0 && wantEv[0].Type == llm.EventStart {
		wantEv = wantEv[1:] // first did not decode, so this starts the stream
	}
	if (gotFail == nil) != (wantFail == nil) || !reflect.DeepEqual(gotErr, wantErr) {
		return fmt.Sprintf("fast %v %+v, full %v %+v", gotFail, gotErr, wantFail, wantErr)
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

// TestTextShapeTakesTheNextChunkByItsFrame: after one text chunk, the
// next in the same frame is read by comparing bytes, and one that only
// looks alike (another member, an escape, a quote, no text) is not.
func TestTextShapeTakesTheNextChunkByItsFrame(t *testing.T) {
	const head = `{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"`
	const tail = `"},"logprobs":null,"finish_reason":null}],"usage":null}`
	var f textShape
	if text, ok := f.textDelta([]byte(head + "Hello" + tail)); !ok || text != "Hello" {
		t.Fatalf("first chunk: %q %v", text, ok)
	}
	if text, ok := f.text([]byte(head + " wörld <&>" + tail)); !ok || text != " wörld <&>" {
		t.Fatalf("a chunk in the same frame: %q %v", text, ok)
	}
	for _, text := range []string{``, `a\"b`, `a"b`, "tab\tin", "\xff", `x"},"logprobs":null,"finish_reason":"stop"}],"usage":null} "`} {
		chunk := []byte(head + text + tail)
		if got, ok := f.text(chunk); ok {
			t.Errorf("frame took %q as text %q", chunk, got)
		}
		if d := agreeAfter([]byte(head+"Hello"+tail), chunk); d != "" {
			t.Errorf("%s\n  %s", chunk, d)
		}
	}
	if _, ok := f.text([]byte(`{"usage":{"prompt_tokens":1},` + head[1:] + "x" + tail)); ok {
		t.Error("frame took a chunk with another head")
	}
}

// FuzzTextShape fuzzes a decoder that remembered one chunk's frame against
// the full decoder on the next chunk.
func FuzzTextShape(f *testing.F) {
	gen := generatedChunks()
	for i, c := range gen {
		f.Add([]byte(c), []byte(gen[(i+7)%len(gen)]))
		if j := strings.Index(c, `"content":"`); j >= 0 {
			// The same frame around other text.
			k := j + len(`"content":"`)
			f.Add([]byte(c), []byte(c[:k]+`other text`+c[k+strings.IndexByte(c[k:], '"'):]))
		}
	}
	f.Fuzz(func(t *testing.T, first, second []byte) {
		if d := agreeAfter(first, second); d != "" {
			t.Errorf("%q after %q\n  %s", second, first, d)
		}
	})
}
