package respcache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/testkit/cputime"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// BenchmarkSemanticLookup is the semantic mode's own cost of one lookup
// that finds its answer, the embedding call aside (the embedder here
// returns a vector at once): scanning a bucket of n messages of 1,536
// dimensions (text-embedding-3-small's size), all from one system prompt,
// up to the default bound and four times it, and reading the answer from
// memory. cpu-µs/op is the process's CPU time per lookup, which a loaded
// machine moves less than ns/op.
//
//	go test -run '^$' -bench SemanticLookup -benchmem ./internal/respcache
func BenchmarkSemanticLookup(b *testing.B) {
	const dims = 1536
	rng := rand.New(rand.NewPCG(1, 2))
	vector := func() []float32 {
		v := make([]float32, dims)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	for _, n := range []int{1, 256, DefaultMaxEntries, 4 * DefaultMaxEntries} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			vecs := map[string][]float32{}
			c := &Cache{Store: &Memory{MaxBytes: 1 << 30}, TTL: time.Hour,
				Semantic: &Semantic{Threshold: 0.95, MaxEntries: n, Embed: func(_ context.Context, texts []string) ([][]float32, error) {
					return [][]float32{vecs[texts[0]]}, nil
				}}}
			ctx := context.Background()
			for i := range n {
				q := fmt.Sprintf("question %d", i)
				vecs[q] = vector()
				req := &llm.Request{Messages: text(q)}
				key := Key("team:a", "m", req)
				c.Put(ctx, key, answer(q))
				c.Index(ctx, c.Probe("team:a", "m", req), key)
			}
			vecs["asked"] = vecs["question 0"]
			asked := &llm.Request{Messages: text("asked")}
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				if _, _, ok := c.Similar(ctx, c.Probe("team:a", "m", asked)); !ok {
					b.Fatal("a miss")
				}
			}
			b.ReportMetric(float64((cputime.Process()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
