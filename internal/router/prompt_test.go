package router_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/promptroute"
	"github.com/junctionhq/junction/internal/router"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// countingScorer is a knn scorer that records the contexts it was called
// with, as an embeddings call would carry them.
type countingScorer struct {
	mu   sync.Mutex
	ctxs []context.Context
}

func (s *countingScorer) Predict(ctx context.Context, req *llm.Request, cands []promptroute.Candidate) ([]float64, error) {
	s.mu.Lock()
	s.ctxs = append(s.ctxs, ctx)
	s.mu.Unlock()
	out := make([]float64, len(cands))
	for i := range out {
		out[i] = 1 // every candidate is good enough: the cheapest is chosen
	}
	return out, nil
}

func (s *countingScorer) Name() string { return "knn" }

func (s *countingScorer) calls() []context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]context.Context(nil), s.ctxs...)
}

type ctxKey struct{}

// TestPromptRouteScoresInPrepareWithTheRequestsContext: a prompt route's
// scorer (the knn scorer embeds the prompt: a call out) runs once, in
// Prepare, on the request's context; handing out deployments (Next) makes
// no call.
func TestPromptRouteScoresInPrepareWithTheRequestsContext(t *testing.T) {
	cfg, err := config.Parse([]byte(`
providers: [{name: up, type: openai, base_url: "http://127.0.0.1:1/v1", api_key: k}]
models:
  - {name: dear, provider: up, price: {input_per_1k: 10, output_per_1k: 10}}
  - {name: cheap, provider: up, price: {input_per_1k: 1, output_per_1k: 1}}
routes:
  - {name: smart, type: prompt_router, scorer: knn, embedding_model: cheap,
     deployments: [{model: dear, quality: 0.9}, {model: cheap, quality: 0.5}]}
`), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(context.Background(), cfg, ledger.Builtin(), func(context.Context, config.Provider) (llm.Provider, error) {
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	knn := &countingScorer{}
	r.SetScorers(router.Scorers{KNN: knn})
	p, err := r.PlanWith("smart", router.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), ctxKey{}, "request")
	p.Prepare(ctx, &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hello"}}}}})
	calls := knn.calls()
	if len(calls) != 1 || calls[0].Value(ctxKey{}) != "request" {
		t.Fatalf("Prepare scored %d times (want once, on the request's context)", len(calls))
	}
	first, ok := p.Next()
	if !ok || first.Model != "cheap" {
		t.Fatalf("first deployment %v %v, want cheap", first, ok)
	}
	if second, ok := p.Next(); !ok || second.Model != "dear" {
		t.Fatalf("second deployment %v %v, want dear", second, ok)
	}
	if n := len(knn.calls()); n != 1 {
		t.Fatalf("the scorer was called %d times; Next must make no call", n)
	}
}
