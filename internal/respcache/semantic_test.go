package respcache

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// words embeds with fakeopenai.WordEmbedding, counting its calls.
type words struct{ calls atomic.Int64 }

func (w *words) embed(_ context.Context, texts []string) ([][]float32, error) {
	w.calls.Add(1)
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = fakeopenai.WordEmbedding(t)
	}
	return out, nil
}

func answer(s string) *Entry {
	return &Entry{Response: &llm.Response{Content: []llm.Part{{Type: llm.PartText, Text: s}}, StopReason: llm.StopEnd}, Served: "m"}
}

func semanticCache(w *words) *Cache {
	return &Cache{Store: &Memory{MaxBytes: 1 << 20}, TTL: time.Minute, Models: []string{"m", "other"},
		Semantic: &Semantic{Embed: w.embed, Threshold: 0.9}}
}

// put stores ans as the answer to req, as the gateway does on a miss.
func put(t *testing.T, c *Cache, scope, model string, req *llm.Request, ans string) {
	t.Helper()
	p := c.Probe(scope, model, req)
	if p == nil {
		t.Fatalf("%q cannot be answered by meaning", req.Messages[len(req.Messages)-1].Text())
	}
	key := Key(scope, model, req)
	c.Put(context.Background(), key, answer(ans))
	c.Index(context.Background(), p, key)
}

// similar is the answer a semantic lookup gives, or "" for a miss.
func similar(c *Cache, scope, model string, req *llm.Request) string {
	e, _, ok := c.Similar(context.Background(), c.Probe(scope, model, req))
	if !ok {
		return ""
	}
	return e.Response.Content[0].Text
}

// TestSemanticAnswersTheNearestMeaning: a message worded differently gets
// the answer of the stored message nearest in meaning, never a neighbour's
// below the threshold.
func TestSemanticAnswersTheNearestMeaning(t *testing.T) {
	w := &words{}
	c := semanticCache(w)
	put(t, c, "team:a", "m", &llm.Request{Messages: text("What is the capital of France?")}, "Paris")
	put(t, c, "team:a", "m", &llm.Request{Messages: text("What is the capital of Germany?")}, "Berlin")
	for q, want := range map[string]string{
		"what's the capital of france":         "Paris",
		"Capital of Germany, please":           "Berlin",
		"Tell me the CAPITAL of germany":       "Berlin",
		"What is the capital of Spain?":        "", // shares "capital" only: below the threshold
		"What is the population of France?":    "",
		"What is the capital of France today?": "", // one word more than the stored message is too far at 0.9
	} {
		if got := similar(c, "team:a", "m", &llm.Request{Messages: text(q)}); got != want {
			t.Errorf("%q answered %q, want %q", q, got, want)
		}
	}
	if n := w.calls.Load(); n != 8 {
		t.Errorf("%d embedding calls for 8 messages", n)
	}
}

// TestSemanticNeverCrossesWhatTheExactKeyHolds: a request close in
// meaning but different in anything else the exact key holds — scope,
// model, parameters, earlier turns, the response format — misses; and
// requests with tools, images, a prefill or a very long message are never
// answered by meaning.
func TestSemanticNeverCrossesWhatTheExactKeyHolds(t *testing.T) {
	c := semanticCache(&words{})
	temp, other := 0.0, 0.7
	sys := llm.Message{Role: llm.RoleSystem, Content: []llm.Part{{Type: llm.PartText, Text: "Answer in French."}}}
	base := &llm.Request{Messages: append([]llm.Message{sys}, text("What is the capital of France?")...), Temperature: &temp}
	put(t, c, "team:a", "m", base, "Paris")
	q := func() *llm.Request {
		r := *base
		r.Messages = append([]llm.Message{sys}, text("what's the capital of france")...)
		return &r
	}
	if got := similar(c, "team:a", "m", q()); got != "Paris" {
		t.Fatalf("the paraphrase got %q", got)
	}
	if similar(c, "team:b", "m", q()) != "" || similar(c, "global", "m", q()) != "" {
		t.Error("another scope read team a's answer")
	}
	if similar(c, "team:a", "other", q()) != "" {
		t.Error("another model read the answer")
	}
	r := q()
	r.Temperature = &other
	if similar(c, "team:a", "m", r) != "" {
		t.Error("another temperature read the answer")
	}
	r = q()
	r.Messages = text("what's the capital of france")
	if similar(c, "team:a", "m", r) != "" {
		t.Error("a request without the system prompt read the answer")
	}
	r = q()
	r.ResponseFormat = []byte(`{"type":"json_object"}`)
	if similar(c, "team:a", "m", r) != "" {
		t.Error("another response format read the answer")
	}
	// Not answered by meaning at all.
	img := q()
	img.Messages[1].Content = append(img.Messages[1].Content, llm.Part{Type: llm.PartImage, Image: &llm.Image{URL: "https://x/y.png"}})
	tools := q()
	tools.Tools = []llm.Tool{{Name: "get_capital"}}
	choice := q()
	choice.ToolChoice = &llm.ToolChoice{Mode: "none"}
	prefill := q()
	prefill.Continue = true
	long := q()
	long.Messages = append([]llm.Message{sys}, text(strings.Repeat("capital france ", MaxSemanticBytes/15+1))...)
	assistantLast := q()
	assistantLast.Messages = append(assistantLast.Messages, llm.Message{Role: llm.RoleAssistant, Content: []llm.Part{{Type: llm.PartText, Text: "Paris"}}})
	for name, r := range map[string]*llm.Request{"image": img, "tools": tools, "tool choice": choice, "prefill": prefill,
		"long": long, "assistant last": assistantLast} {
		if c.Probe("team:a", "m", r) != nil {
			t.Errorf("a request with %s may be answered by meaning", name)
		}
	}
	c.Semantic.Models = []string{"other"}
	if c.Probe("team:a", "m", q()) != nil {
		t.Error("a model outside semantic.models may be answered by meaning")
	}
}

// TestSemanticBoundsAndExpires: the index keeps MaxEntries messages, the
// oldest leaving first; entries past the TTL, or whose answer the store
// dropped, are misses.
func TestSemanticBoundsAndExpires(t *testing.T) {
	now := time.Unix(1000, 0)
	w := &words{}
	c := semanticCache(w)
	c.Semantic.MaxEntries, c.Semantic.Now = 2, func() time.Time { return now }
	c.Store.(*Memory).Now = func() time.Time { return now }
	for _, country := range []string{"France", "Germany", "Spain"} {
		put(t, c, "team:a", "m", &llm.Request{Messages: text("capital of " + country)}, country)
	}
	if n := c.Semantic.Len(); n != 2 {
		t.Fatalf("%d indexed, want 2", n)
	}
	if similar(c, "team:a", "m", &llm.Request{Messages: text("the capital of france")}) != "" {
		t.Error("the oldest message was not dropped from the index")
	}
	if got := similar(c, "team:a", "m", &llm.Request{Messages: text("the capital of spain")}); got != "Spain" {
		t.Errorf("spain answered %q", got)
	}
	// The store dropped Germany's answer: the index entry is a miss.
	c.Store.(*Memory).Set(context.Background(), Key("team:a", "m", &llm.Request{Messages: text("capital of Germany")}), nil, -time.Second)
	if similar(c, "team:a", "m", &llm.Request{Messages: text("the capital of germany")}) != "" {
		t.Error("an answer the store no longer holds was served")
	}
	now = now.Add(time.Minute)
	c.Store.(*Memory).Now = func() time.Time { return now.Add(-time.Hour) } // the store still holds it
	if similar(c, "team:a", "m", &llm.Request{Messages: text("the capital of spain")}) != "" {
		t.Error("an index entry past its TTL was served")
	}
	put(t, c, "team:a", "m", &llm.Request{Messages: text("capital of Italy")}, "Italy")
	if n := c.Semantic.Len(); n != 1 {
		t.Errorf("%d indexed after the others expired, want 1", n)
	}
}

// TestSemanticEmbeddingFailureIsAMiss: an embeddings model that fails,
// hangs past the timeout or answers zeros costs a miss, never an error,
// and is asked once per request.
func TestSemanticEmbeddingFailureIsAMiss(t *testing.T) {
	var calls atomic.Int64
	for name, embed := range map[string]EmbedFunc{
		"error": func(context.Context, []string) ([][]float32, error) { calls.Add(1); return nil, errors.New("boom") },
		"hang": func(ctx context.Context, _ []string) ([][]float32, error) {
			calls.Add(1)
			<-ctx.Done()
			return nil, ctx.Err()
		},
		"zeros": func(context.Context, []string) ([][]float32, error) {
			calls.Add(1)
			return [][]float32{make([]float32, 8)}, nil
		},
		"none": func(context.Context, []string) ([][]float32, error) { calls.Add(1); return nil, nil },
	} {
		calls.Store(0)
		c := semanticCache(&words{})
		c.Semantic.Embed, c.Semantic.Timeout = embed, 20*time.Millisecond
		req := &llm.Request{Messages: text("capital of France")}
		p := c.Probe("team:a", "m", req)
		if _, _, ok := c.Similar(context.Background(), p); ok {
			t.Errorf("%s: a hit", name)
		}
		c.Index(context.Background(), p, Key("team:a", "m", req))
		if c.Semantic.Len() != 0 || calls.Load() != 1 {
			t.Errorf("%s: %d indexed after %d calls", name, c.Semantic.Len(), calls.Load())
		}
	}
}
