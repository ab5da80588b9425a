package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// BenchmarkResponseCache measures, in one run, a request answered from
// the response cache against the same request passed through to the
// upstream, one request at a time (ns/op is the latency). The upstream is
// the fake, answering at once (upstream=0s: the pass-through is Junction's
// own overhead plus loopback) or after a delay standing in for a model's
// generation time. A semantic hit is asked in other words than the
// answer it gets, so it misses the exact cache and costs an embeddings
// call to the fake (answering at once, as a local embeddings model would
// in a few milliseconds) and the search.
//
//	go test -run XXX -bench ResponseCache -benchtime 2000x ./internal/platform/server
func BenchmarkResponseCache(b *testing.B) {
	for _, delay := range []time.Duration{0, 20 * time.Millisecond} {
		fake := &fakeopenai.Server{Embedding: fakeopenai.WordEmbedding, Fault: func(r *fakeopenai.Request) fakeopenai.Fault {
			if strings.HasSuffix(r.Path, "/embeddings") {
				return fakeopenai.Fault{}
			}
			return fakeopenai.Fault{Delay: delay}
		}}
		_, j := startBenchJunctionOn(b, fake, `  - {name: cached, provider: fake, upstream_model: bench-upstream, price: {input_per_1k: 0.00015, output_per_1k: 0.0006}}
  - {name: cached-semantic, provider: fake, upstream_model: bench-upstream, price: {input_per_1k: 0.00015, output_per_1k: 0.0006}}
  - {name: embedder, provider: fake, upstream_model: bench-embed}
cache: {models: [cached, cached-semantic], semantic: {models: [cached-semantic], embedding_model: embedder, threshold: 0.9}}`)
		url := j + "/v1/chat/completions"
		for _, tc := range []struct{ name, model, warm, ask string }{
			{"pass-through", "bench-model", "Say hello.", "Say hello."},
			{"hit", "cached", "Say hello.", "Say hello."},
			{"semantic-hit", "cached-semantic", "Say hello.", "Please say hello!"},
		} {
			b.Run(fmt.Sprintf("upstream=%v/%s", delay, tc.name), func(b *testing.B) {
				body := func(text string) []byte {
					return []byte(`{"model":"` + tc.model + `","messages":[{"role":"user","content":"` + text + `"}]}`)
				}
				client := &http.Client{}
				send := func(body []byte, hit bool) {
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
					if r := resp.Header.Get("X-Junction-Route-Reason"); hit && !strings.Contains(r, "cache hit") {
						b.Fatalf("%s: a miss (%s)", tc.name, r)
					}
				}
				send(body(tc.warm), false) // warms the connection, and the cache for the hits
				ask, hit := body(tc.ask), tc.name != "pass-through"
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					send(ask, hit)
				}
			})
		}
	}
}
