package openaiwire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// Real-shaped chat.completion bodies: OpenAI's documented examples and
// what vLLM, llama.cpp and Ollama send (extra members the decoder does not
// read, nulls where OpenAI has values).
var responseCorpus = []string{
	// OpenAI, text, with the members of 2025 answers.
	`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4.1-2025-04-14","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_44709d6fcb"}`,
	// OpenAI, a tool call.
	`{"id":"chatcmpl-abc123","object":"chat.completion","created":1699896916,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc123","type":"function","function":{"name":"get_current_weather","arguments":"{\n\"location\": \"Boston, MA\"\n}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99,"completion_tokens_details":{"reasoning_tokens":0}}}`,
	// Escapes and non-ASCII text, cached tokens.
	`{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Line 1\nLine \"2\" \u00e9 – ✓ 🎉 \ud83c\udf89 <b>&amp;</b>"},"finish_reason":"length"}],"usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920}}}`,
	// A refusal.
	`{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}}`,
	// vLLM.
	`{"id":"chatcmpl-3f1f2a","object":"chat.completion","created":1733000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"message":{"role":"assistant","reasoning_content":null,"content":"Paris.","tool_calls":[]},"logprobs":null,"finish_reason":"stop","stop_reason":null}],"usage":{"prompt_tokens":14,"total_tokens":17,"completion_tokens":3,"prompt_tokens_details":null},"prompt_logprobs":null,"kv_transfer_params":null}`,
	// llama.cpp server.
	`{"choices":[{"finish_reason":"stop","index":0,"message":{"role":"assistant","content":"Hi there"}}],"created":1733000000,"model":"gpt-3.5-turbo","system_fingerprint":"b4000-abc","object":"chat.completion","usage":{"completion_tokens":3,"prompt_tokens":9,"total_tokens":12},"id":"chatcmpl-x","timings":{"prompt_n":9,"prompt_ms":12.5,"predicted_per_second":88.1}}`,
	// Ollama.
	`{"id":"chatcmpl-123","object":"chat.completion","created":1733000000,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":26,"completion_tokens":2,"total_tokens":28}}` + "\n",
	// Two choices (n=2), parallel tool calls, index given.
	`{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"","tool_calls":[{"index":0,"id":"a","type":"function","function":{"name":"f","arguments":"{}"}},{"index":1,"id":"b","type":"function","function":{"name":"g","arguments":"{\"x\":[1,2]}"}}]},"finish_reason":"tool_calls"},{"index":1,"message":{"role":"assistant","content":"two"},"finish_reason":"stop"}]}`,
	// White space everywhere.
	" {\n  \"id\" : \"c\" ,\n  \"choices\" : [ { \"index\" : 0 , \"message\" : { \"role\" : \"assistant\" , \"content\" : \"x\" } , \"finish_reason\" : \"stop\" } ] ,\n  \"usage\" : { \"prompt_tokens\" : 1 , \"completion_tokens\" : 1 , \"total_tokens\" : 2 }\n} \n",
}

// Bodies the scanner must refuse or agree on: mutations that change what
// encoding/json does.
var responseEdges = []string{
	`{"ID":"c","choices":[]}`,                    // a field name in another case
	`{"id":"a","id":"b"}`,                        // a field twice
	`{"usage":{"prompt_tokens":1},"usage":null}`, // usage twice
	`{"created":1.5}`, `{"created":"1"}`, `{"created":12345678901234567890}`,
	`{"model":true}`, `{"choices":{}}`, `{"choices":[null]}`, `{"choices":[{"message":[]}]}`,
	`{"choices":[{"index":0,"message":{"content":5}}]}`,
	`{"usage":{"prompt_tokens":-3,"completion_tokens":0,"total_tokens":-0}}`,
	`{"id":"\ud800"}`, "{\"id\":\"\xff\"}", `{"id":"a\/b"}`, `{"x":"\q"}`, "{\"x\":\"tab\tin\"}",
	`{"x":[1,]}`, `{"x":{"a":1,}}`, `{,}`, `{}`, `{} {}`, `[]`, `null`, ``, `{"x":01}`, `{"x":-}`, `{"x":1e}`, `{"x":1.e5}`,
	`{"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
	`{"x":tru}`, `{"x":nul}`, `{"x":falsey}`, `{"\u0069d":"c"}`, `{"iD":"c"}`,
}

// agreeScan reports how a scanner and encoding/json differ on b, if they
// do; fast reports whether the scanner took it.
func agreeScan[T any](b []byte, scanner func([]byte, *T) bool) (diff string, fast bool) {
	var got, want T
	fast = scanner(b, &got)
	err := json.Unmarshal(b, &want)
	switch {
	case !fast:
		return "", false
	case err != nil:
		return "scanner took a document encoding/json refuses: " + err.Error(), true
	case !reflect.DeepEqual(got, want):
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		return "scanner " + string(g) + "\n  encoding/json " + string(w), true
	}
	return "", true
}

func agreeResponse(b []byte) (string, bool) { return agreeScan(b, scanChatResponse) }

func agreeChunk(b []byte) (string, bool) { return agreeScan(b, scanChunk) }

func TestScanChatResponseTakesRealBodies(t *testing.T) {
	for _, b := range responseCorpus {
		d, fast := agreeResponse([]byte(b))
		if d != "" {
			t.Errorf("%s\n  %s", b, d)
		}
		if !fast {
			t.Errorf("scanner refused a real-shaped body: %s", b)
		}
		got, err := ScanChatResponse([]byte(b))
		want, werr := DecodeChatResponse([]byte(b))
		if err != nil || werr != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ScanChatResponse = %+v, %v; DecodeChatResponse = %+v, %v", got, err, want, werr)
		}
	}
}

func TestScanChatResponseAgreesOnEdges(t *testing.T) {
	for _, b := range responseEdges {
		if d, _ := agreeResponse([]byte(b)); d != "" {
			t.Errorf("%q\n  %s", b, d)
		}
	}
}

// FuzzScanChatResponse: on any body the scanner takes, it fills the
// struct exactly as encoding/json does. The seeds run with a plain go test.
func FuzzScanChatResponse(f *testing.F) {
	for _, b := range append(append([]string(nil), responseCorpus...), responseEdges...) {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, _ := agreeResponse(b); d != "" {
			t.Errorf("%q\n  %s", b, d)
		}
	})
}

// Real-shaped stream chunks beyond the text-only ones textDelta takes.
var chunkCorpus = []string{
	`{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`,
	`{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`,
	`{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`,
	`{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}]}`,
	`{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"logprobs":null,"finish_reason":null}]}`,
	`{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Line\nbreak \"quoted\""},"logprobs":null,"finish_reason":null}]}`,
	// vLLM's last chunks.
	`{"id":"chatcmpl-3f","object":"chat.completion.chunk","created":1733000000,"model":"llama","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"length","stop_reason":null}]}`,
	`{"id":"chatcmpl-3f","object":"chat.completion.chunk","created":1733000000,"model":"llama","choices":[],"usage":{"prompt_tokens":14,"total_tokens":30,"completion_tokens":16}}`,
	// An error in the stream.
	`{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`,
}

var chunkEdges = []string{
	`{"choices":[{"index":0,"delta":{"Content":"x"}}]}`, `{"choices":[{"index":0,"delta":{"content":"a","content":"b"}}]}`,
	`{"choices":[{"index":"0"}]}`, `{"choices":[{"index":0,"finish_reason":5}]}`, `{"error":"boom"}`,
	`{"error":{"message":"a","message":"b"}}`, `{"choices":[{"delta":{"tool_calls":[{"index":null}]}}]}`,
	`{"choices":[{"delta":{"tool_calls":[null]}}]}`, `{"choices":[{"delta":null,"finish_reason":null}]}`,
}

func TestScanChunkTakesRealChunks(t *testing.T) {
	for _, b := range chunkCorpus {
		d, fast := agreeChunk([]byte(b))
		if d != "" {
			t.Errorf("%s\n  %s", b, d)
		}
		if !fast {
			t.Errorf("scanner refused a real-shaped chunk: %s", b)
		}
	}
	for _, b := range append(append([]string(nil), chunkEdges...), generatedChunks()...) {
		if d, _ := agreeChunk([]byte(b)); d != "" {
			t.Errorf("%q\n  %s", b, d)
		}
	}
}

// FuzzScanChunk is FuzzScanChatResponse for stream chunks.
func FuzzScanChunk(f *testing.F) {
	for _, b := range append(append(append([]string(nil), chunkCorpus...), chunkEdges...), generatedChunks()...) {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, _ := agreeChunk(b); d != "" {
			t.Errorf("%q\n  %s", b, d)
		}
	})
}

// TestChunkDecoderFastAndFullAgreeOnAStream decodes whole streams with
// the fast paths and with encoding/json alone: the same events, chunk by
// chunk, tool calls included.
func TestChunkDecoderFastAndFullAgreeOnAStream(t *testing.T) {
	stream := append([]string{chunkCorpus[0], chunkCorpus[3], chunkCorpus[4]}, chunkCorpus[5], chunkCorpus[1], chunkCorpus[2])
	var fast, full ChunkDecoder
	full.Full = true
	for _, c := range stream {
		a, ae, aerr := fast.Decode([]byte(c))
		ga, _ := json.Marshal(a)
		b, be, berr := full.Decode([]byte(c))
		gb, _ := json.Marshal(b)
		if string(ga) != string(gb) || !reflect.DeepEqual(ae, be) || (aerr == nil) != (berr == nil) {
			t.Errorf("%s:\n fast %s %v %v\n full %s %v %v", c, ga, ae, aerr, gb, be, berr)
		}
	}
	if !fast.Stopped() || !full.Stopped() {
		t.Error("the finish chunk was not seen")
	}
	if strings.Count(strings.Join(stream, ""), "tool_calls") == 0 {
		t.Fatal("the stream has no tool calls; it checks less than it says")
	}
}

func BenchmarkDecodeChatResponse(b *testing.B) {
	body := []byte(responseCorpus[0])
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			DecodeChatResponse(body)
		}
	})
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ScanChatResponse(body)
		}
	})
}

func BenchmarkDecodeChunk(b *testing.B) {
	for _, c := range []struct{ name, chunk string }{{"role", chunkCorpus[0]}, {"finish", chunkCorpus[1]}, {"usage", chunkCorpus[2]}, {"tool-args", chunkCorpus[4]}} {
		for _, full := range []bool{true, false} {
			name := c.name + "/scan"
			if full {
				name = c.name + "/encoding-json"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				d := ChunkDecoder{Full: full}
				for b.Loop() {
					d.Decode([]byte(c.chunk))
				}
			})
		}
	}
}
