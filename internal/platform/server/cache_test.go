package server_test

import (
	"context"
	"math"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

const cachedModels = `  - {name: cached, provider: openai, upstream_model: my-model, price: {input_per_1k: 1, output_per_1k: 2}}
cache: {models: [cached], ttl: 1h}`

// TestResponseCache: a repeated request is answered from the cache —
// within its team only — plain or streamed; Cache-Control no-cache skips
// the lookup and no-store the cache; a hit is a ledger record costing
// nothing and saving what the answer cost.
func TestResponseCache(t *testing.T) {
	fake := &fakeopenai.Server{Record: true, PromptTokens: 100, CompletionTokens: 50}
	j := start(t, fake, cachedModels)
	_, a1 := j.createKey("a1", map[string]string{"team": "alpha"})
	_, a2 := j.createKey("a2", map[string]string{"team": "alpha"})
	_, b := j.createKey("b", map[string]string{"team": "beta"})
	ctx := context.Background()
	ask := func(key, prompt string, opts ...option.RequestOption) string {
		t.Helper()
		client := j.sdk(key)
		resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "cached",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)}}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Choices[0].Message.Content
	}
	upstream := func(want int) {
		t.Helper()
		if got := len(fake.Requests()); got != want {
			t.Fatalf("the upstream saw %d requests, want %d", got, want)
		}
	}
	first := ask(a1, "Say hello")
	upstream(1)
	if ask(a1, "Say hello") != first || ask(a2, "Say hello") != first {
		t.Fatal("a hit must answer what was stored")
	}
	upstream(1) // both answered from the cache: same team
	ask(b, "Say hello")
	upstream(2) // another team never reads alpha's answers
	ask(a1, "Say hello", option.WithHeader("Cache-Control", "no-cache"))
	upstream(3)
	ask(a1, "Say goodbye", option.WithHeader("Cache-Control", "no-store"))
	ask(a1, "Say goodbye")
	upstream(5) // no-store kept nothing

	// A stream is answered from a plain request's entry, as a stream.
	ca2, cb := j.sdk(a2), j.sdk(b)
	st := ca2.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "cached",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")}})
	acc := openai.ChatCompletionAccumulator{}
	for st.Next() {
		acc.AddChunk(st.Current())
	}
	if st.Err() != nil || acc.Choices[0].Message.Content != first {
		t.Fatalf("stream replay: %v %q", st.Err(), acc.Choices[0].Message.Content)
	}
	upstream(5)
	// A streamed miss is stored too, and answers a plain request.
	st = cb.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "cached",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Stream me")}})
	for st.Next() {
	}
	if st.Err() != nil {
		t.Fatal(st.Err())
	}
	upstream(6)
	if ask(b, "Stream me") != first {
		t.Fatal("the streamed answer was not stored whole")
	}
	upstream(6)

	recs := j.records(10)
	hits := 0
	cost := wantCost(100, 0, 50, 1, 2)
	for _, r := range recs {
		if r.RouteReason != "cache hit" {
			if r.CostUSD == nil || math.Abs(*r.CostUSD-cost) > 1e-12 {
				t.Fatalf("miss record %+v", r)
			}
			continue
		}
		hits++
		if r.CostUSD == nil || *r.CostUSD != 0 || r.CounterfactualUSD == nil || math.Abs(*r.CounterfactualUSD-cost) > 1e-12 ||
			r.InputTokens != 0 || r.Provider != "openai" || r.Status != 200 {
			t.Fatalf("hit record %+v", r)
		}
	}
	if hits != 4 {
		t.Fatalf("%d hits recorded, want 4", hits)
	}
}
