package server_test

import (
	"bytes"
	"strings"
	"testing"
)

// BenchmarkResponsesVsChat is what a Responses API call costs Junction
// against the same conversation sent as chat completions, in one run,
// through a real Junction on loopback in front of the fake upstream, one
// request at a time (benchSequential: ns/op is the latency, cpu-µs/op the
// whole process's CPU per request). Both reach the upstream as the same
// chat request; the Responses path adds its own decoding, its response
// object or typed events, and — with store on, its default — writing the
// response and its input to the database.
//
//	go test -run '^$' -bench '^BenchmarkResponsesVsChat$' -benchmem -count 5 ./internal/server
func BenchmarkResponsesVsChat(b *testing.B) {
	responses := []byte(`{"model":"bench-model","max_output_tokens":256,"instructions":"Be brief.","input":"Say hello."}`)
	unstored := bytes.Replace(responses, []byte(`{`), []byte(`{"store":false,`), 1)
	for _, stream := range []bool{false, true} {
		for _, tc := range []struct {
			name, path string
			body       []byte
			want, end  string // what a whole plain answer and a whole stream hold
		}{
			{"chat", "/v1/chat/completions", benchOpenAIBody, `"finish_reason":"stop"`, "data: [DONE]"},
			{"responses", "/v1/responses", responses, `"status":"completed"`, "event: response.completed"},
			{"responses-unstored", "/v1/responses", unstored, `"status":"completed"`, "event: response.completed"},
		} {
			name, body, want := tc.name+"/plain", tc.body, tc.want
			if stream {
				name, body, want = tc.name+"/stream", bytes.Replace(body, []byte(`{`), []byte(`{"stream":true,`), 1), tc.end
			}
			b.Run(name, func(b *testing.B) {
				_, chat := benchTargets(b)
				benchSequential(b, strings.TrimSuffix(chat, "/v1/chat/completions")+tc.path, body, want)
			})
		}
	}
}
