package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/fakeopenai"
)

// BenchmarkResponseCache measures, in one run, a request answered from
// the response cache against the same request passed through to the
// upstream, one request at a time (ns/op is the latency). The upstream is
// the fake, answering at once (upstream=0s: the pass-through is Junction's
// own overhead plus loopback) or after a delay standing in for a model's
// generation time.
//
//	go test -run XXX -bench ResponseCache -benchtime 2000x ./internal/server
func BenchmarkResponseCache(b *testing.B) {
	for _, delay := range []time.Duration{0, 20 * time.Millisecond} {
		fake := &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault { return fakeopenai.Fault{Delay: delay} }}
		_, j := startBenchJunctionOn(b, fake, `  - {name: cached, provider: fake, upstream_model: bench-upstream, price: {input_per_1k: 0.00015, output_per_1k: 0.0006}}
cache: {models: [cached]}`)
		url := j + "/v1/chat/completions"
		for _, tc := range []struct{ name, model string }{{"pass-through", "bench-model"}, {"hit", "cached"}} {
			b.Run(fmt.Sprintf("upstream=%v/%s", delay, tc.name), func(b *testing.B) {
				body := []byte(`{"model":"` + tc.model + `","messages":[{"role":"user","content":"Say hello."}]}`)
				client := &http.Client{}
				send := func() {
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+benchAdminKey)
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
				send() // warms the connection, and the cache for "hit"
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					send()
				}
			})
		}
	}
}
