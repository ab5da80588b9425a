package server_test

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// BenchmarkResponsesVsChat is what a Responses API call costs Junction
// against the same conversation sent as chat completions, in one run,
// through a real Junction on loopback in front of the fake upstream. Both
// reach the upstream as the same chat request; the Responses path adds
// its own decoding, its response object or typed events, and — with
// store on, its default — writing the response and its input to the
// database before answering.
//
// Each round sends one request of each kind in turn, one at a time, the
// order rotating from round to round, so that a machine whose load
// changes during the run slows every kind alike. It reports each kind's
// mean latency (µs/op) and the ratios to chat completions' in the same
// rounds.
//
//	go test -run '^$' -bench '^BenchmarkResponsesVsChat$' -count 5 ./internal/platform/server
func BenchmarkResponsesVsChat(b *testing.B) {
	responses := []byte(`{"model":"bench-model","max_output_tokens":256,"instructions":"Be brief.","input":"Say hello."}`)
	kinds := []struct {
		name, path string
		body       []byte
		want, end  string // what a whole plain answer and a whole stream hold
	}{
		{"chat", "/v1/chat/completions", benchOpenAIBody, `"finish_reason":"stop"`, "data: [DONE]"},
		{"responses", "/v1/responses", responses, `"status":"completed"`, "event: response.completed"},
		{"unstored", "/v1/responses", bytes.Replace(responses, []byte(`{`), []byte(`{"store":false,`), 1), `"status":"completed"`, "event: response.completed"},
	}
	for _, stream := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "stream"}[stream], func(b *testing.B) {
			_, chat := benchTargets(b)
			base := strings.TrimSuffix(chat, "/v1/chat/completions")
			send := make([]func(), len(kinds))
			for i, k := range kinds {
				body, want := k.body, k.want
				if stream {
					body, want = bytes.Replace(body, []byte(`{`), []byte(`{"stream":true,`), 1), k.end
				}
				send[i] = benchPoster(b, base+k.path, body, want)
				send[i]() // warm the connection
			}
			spent := make([]time.Duration, len(kinds))
			b.ResetTimer()
			for n := range b.N {
				for j := range kinds {
					i := (n + j) % len(kinds)
					start := time.Now()
					send[i]()
					spent[i] += time.Since(start)
				}
			}
			b.StopTimer()
			for i, k := range kinds {
				b.ReportMetric(float64(spent[i].Microseconds())/float64(b.N), k.name+"-µs/op")
				if i > 0 {
					b.ReportMetric(float64(spent[i])/float64(spent[0]), k.name+"/chat")
				}
			}
		})
	}
}
