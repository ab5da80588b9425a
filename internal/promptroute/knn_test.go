package promptroute

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/vec"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// bagOfWords is a deterministic fake embedding model: each word (lowered,
// stop words dropped) adds ±1 at a hashed position. Prompts sharing
// words land close together, as with a real embedding model.
type bagOfWords struct {
	dims  int
	calls atomic.Int64
	texts atomic.Int64
}

var stopWords = map[string]bool{"the": true, "a": true, "an": true, "of": true, "to": true, "in": true,
	"and": true, "is": true, "what": true, "this": true, "for": true, "into": true, "it": true, "on": true}

func (b *bagOfWords) embed(_ context.Context, texts []string) ([][]float32, error) {
	b.calls.Add(1)
	b.texts.Add(int64(len(texts)))
	out := make([][]float32, len(texts))
	for i, t := range texts {
		v := make([]float32, b.dims)
		for _, w := range strings.FieldsFunc(strings.ToLower(t), func(r rune) bool {
			return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
		}) {
			if stopWords[w] {
				continue
			}
			h := fnv.New64a()
			h.Write([]byte(w))
			x := h.Sum64()
			if x>>63 == 1 {
				v[x%uint64(b.dims)]--
			} else {
				v[x%uint64(b.dims)]++
			}
		}
		out[i] = v
	}
	return out, nil
}

func openDB(t testing.TB, dir string) *sql.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(dir, "junction.db"))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func openStore(t testing.TB, db *sql.DB, e EmbedFunc) *FeedbackStore {
	t.Helper()
	s, err := OpenFeedback(context.Background(), db, e)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A family of prompts the features call easy (short translations) but
// that the cheap model gets wrong: legal clauses into formal Japanese.
var (
	clauses = []string{
		"the licensee shall not sublicense the software without prior written consent",
		"either party may terminate this agreement upon thirty days written notice",
		"the licensor disclaims all warranties express or implied including merchantability",
		"liability shall not exceed the fees paid in the twelve months preceding the claim",
		"confidential information excludes information that becomes public without breach",
		"this agreement is governed by the laws of the state of delaware",
		"the licensee shall indemnify the licensor against third party claims",
		"no waiver of any breach shall be deemed a waiver of any other breach",
		"the parties agree to submit disputes to binding arbitration in geneva",
		"force majeure excuses performance delayed by events beyond reasonable control",
		"assignment of this agreement requires the consent of the other party",
		"all notices shall be delivered in writing to the addresses set out above",
	}
	legal = func(clause string) string {
		return "Translate this clause of a software licence agreement into formal legal Japanese: " + clause
	}
	capitals = []string{"France", "Peru", "Kenya", "Norway", "Vietnam", "Chile", "Egypt", "Canada",
		"Poland", "Ghana", "Nepal", "Spain"}
	capital = func(c string) string { return "What is the capital city of " + c + "?" }
)

func TestKNNLearnsFromFeedback(t *testing.T) {
	ctx := context.Background()
	emb := &bagOfWords{dims: 256}
	fs := openStore(t, openDB(t, t.TempDir()), emb.embed)
	knn := NewKNN(emb.embed, fs, 6)
	cands := []Candidate{cheap, strong}
	route := func(p string) string {
		probs, err := knn.Predict(ctx, userRequest(p), cands)
		if err != nil {
			t.Fatal(err)
		}
		i, _ := Choose(probs, cands, 0.7)
		return cands[i].Model
	}

	// Held-out prompts: the last four of each family are never labelled.
	train, test := clauses[:8], clauses[8:]
	for _, c := range test {
		if got := route(legal(c)); got != cheap.Model {
			t.Fatalf("before feedback, %q went to %s; the features alone call it easy", c, got)
		}
	}
	if emb.calls.Load() != 0 {
		t.Errorf("with no feedback stored, Predict embedded %d times; want 0", emb.calls.Load())
	}

	var fb []Feedback
	for _, c := range train {
		fb = append(fb, Feedback{Prompt: legal(c), Model: cheap.Model, Good: false},
			Feedback{Prompt: legal(c), Model: strong.Model, Good: true})
	}
	for _, c := range capitals[:8] {
		fb = append(fb, Feedback{Prompt: capital(c), Model: cheap.Model, Good: true})
	}
	if n, err := fs.Add(ctx, fb...); err != nil || n != 24 {
		t.Fatalf("Add = %d, %v", n, err)
	}

	for _, c := range test {
		if got := route(legal(c)); got != strong.Model {
			t.Errorf("after feedback, %q went to %s, want %s", c, got, strong.Model)
		}
	}
	for _, c := range capitals[8:] {
		if got := route(capital(c)); got != cheap.Model {
			t.Errorf("after feedback, the capital of %s went to %s, want %s", c, got, cheap.Model)
		}
	}
	// The strong model has no labels near capitals: it gets the features'
	// prediction; the cheap one its share of good neighbours, 1.
	probs, _ := knn.Predict(ctx, userRequest(capital("Chile")), cands)
	feat, _ := FeatureScorer{}.Predict(ctx, userRequest(capital("Chile")), cands)
	if probs[0] != 1 || probs[1] != feat[1] {
		t.Errorf("capital probs = %v, want [1 %v]", probs, feat[1])
	}
}

func TestKNNFallsBackWithFewNeighbours(t *testing.T) {
	ctx := context.Background()
	emb := &bagOfWords{dims: 64}
	fs := openStore(t, openDB(t, t.TempDir()), emb.embed)
	// Two labels for the cheap model; with k = 6 it needs 3.
	if _, err := fs.Add(ctx, Feedback{legal(clauses[0]), cheap.Model, false}, Feedback{legal(clauses[1]), cheap.Model, false}); err != nil {
		t.Fatal(err)
	}
	req := userRequest(legal(clauses[2]))
	probs, err := NewKNN(emb.embed, fs, 6).Predict(ctx, req, []Candidate{cheap})
	feat, _ := FeatureScorer{}.Predict(ctx, req, []Candidate{cheap})
	if err != nil || probs[0] != feat[0] {
		t.Errorf("probs = %v, %v; want the fallback's %v", probs, err, feat)
	}
	probs, _ = NewKNN(emb.embed, fs, 4).Predict(ctx, req, []Candidate{cheap})
	if probs[0] != 0 {
		t.Errorf("with k = 4 the two bad labels decide: p = %v, want 0", probs[0])
	}
}

func TestKNNEmbedError(t *testing.T) {
	ctx := context.Background()
	emb := &bagOfWords{dims: 16}
	fs := openStore(t, openDB(t, t.TempDir()), emb.embed)
	if _, err := fs.Add(ctx, Feedback{"hello there", cheap.Model, true}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("embeddings model unavailable")
	knn := NewKNN(func(context.Context, []string) ([][]float32, error) { return nil, boom }, fs, 3)
	if _, err := knn.Predict(ctx, userRequest("hi"), []Candidate{cheap}); !errors.Is(err, boom) {
		t.Errorf("err = %v, want it to wrap the embedding error", err)
	}
	if _, _, err := Route(ctx, knn, userRequest("hi"), []Candidate{cheap}, 0.7); !errors.Is(err, boom) || !strings.Contains(err.Error(), "knn") {
		t.Errorf("Route err = %v", err)
	}
}

func TestFeedbackStorePersists(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	emb := &bagOfWords{dims: 32}
	db := openDB(t, dir)
	fs := openStore(t, db, emb.embed)
	fs.Now = func() time.Time { return time.Unix(1700000000, 0) }
	var fb []Feedback
	for i := range 150 { // more than one embedding batch
		fb = append(fb, Feedback{Prompt: fmt.Sprintf("prompt number %d about topic %d", i, i%7), Model: []string{"a", "b"}[i%2], Good: i%3 != 0})
	}
	if _, err := fs.Add(ctx, fb...); err != nil {
		t.Fatal(err)
	}
	if got := emb.calls.Load(); got != 3 {
		t.Errorf("150 prompts took %d embedding calls, want 3 batches of up to %d", got, embedBatch)
	}
	before := fs.Stats()
	q, _ := emb.embed(ctx, []string{"prompt number 3 about topic 3"})
	vec.Normalize(q[0])
	nearBefore, _ := fs.nearest(q[0], 5)
	db.Close()

	db = openDB(t, dir)
	defer db.Close()
	fs2 := openStore(t, db, emb.embed)
	after := fs2.Stats()
	if fmt.Sprint(before) != fmt.Sprint(after) || after.Examples != 150 || after.Dimensions != 32 {
		t.Errorf("stats after reopen = %+v, before = %+v", after, before)
	}
	if after.Models["a"] != (LabelCounts{Good: 50, Bad: 25}) {
		t.Errorf("model a = %+v", after.Models["a"])
	}
	nearAfter, _ := fs2.nearest(q[0], 5)
	if fmt.Sprint(nearBefore) != fmt.Sprint(nearAfter) {
		t.Errorf("nearest after reopen = %v, before = %v", nearAfter, nearBefore)
	}
	var ts int64
	if err := db.QueryRow(`SELECT created_at FROM prompt_feedback LIMIT 1`).Scan(&ts); err != nil || ts != 1700000000 {
		t.Errorf("created_at = %d, %v", ts, err)
	}

	// A different embedding model is refused, not mixed in.
	other := &bagOfWords{dims: 48}
	fs3 := openStore(t, db, other.embed)
	if _, err := fs3.Add(ctx, Feedback{"x", "a", true}); err == nil || !strings.Contains(err.Error(), "dimensions") {
		t.Errorf("Add with another dimension: err = %v", err)
	}
	if fs3.Len() != 150 {
		t.Errorf("a refused Add changed the store: %d", fs3.Len())
	}
}

func TestFeedbackValidate(t *testing.T) {
	for _, tc := range []struct {
		f    Feedback
		want string
	}{
		{Feedback{Model: "m"}, "prompt: required"},
		{Feedback{Prompt: "p"}, "model: required"},
		{Feedback{Prompt: strings.Repeat("x", MaxPromptBytes+1), Model: "m"}, "prompt: longer"},
		{Feedback{Prompt: "\xff", Model: "m"}, "UTF-8"},
		{Feedback{Prompt: "p", Model: strings.Repeat("m", 300)}, "model: longer"},
	} {
		if err := tc.f.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%.20q) = %v, want %q", tc.f.Prompt, err, tc.want)
		}
	}
	fs := openStore(t, openDB(t, t.TempDir()), (&bagOfWords{dims: 8}).embed)
	if _, err := fs.Add(context.Background(), Feedback{"ok", "m", true}, Feedback{"", "m", true}); err == nil || !strings.HasPrefix(err.Error(), "feedback 2: prompt") {
		t.Errorf("Add with a bad item: %v", err)
	}
	if fs.Len() != 0 {
		t.Error("a rejected batch must store nothing")
	}
	if _, err := fs.Add(context.Background(), Feedback{"!!!", "m", true}); err == nil || !strings.Contains(err.Error(), "all zeros") {
		t.Errorf("a zero embedding: %v", err)
	}
}

func TestEmbedText(t *testing.T) {
	long := strings.Repeat("é", MaxEmbedBytes) // 2 bytes each
	if got := embedText(long); len(got) > MaxEmbedBytes || !strings.HasPrefix(long, got) || len(got) < MaxEmbedBytes-1 {
		t.Errorf("embedText cut to %d bytes", len(got))
	}
	if queryText(&llm.Request{Messages: []llm.Message{
		{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "first"}}},
		{Role: llm.RoleAssistant, Content: []llm.Part{{Type: llm.PartText, Text: "answer"}}},
		{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "second"}}},
	}}) != "second" {
		t.Error("queryText should be the last user message")
	}
	if queryText(&llm.Request{Messages: []llm.Message{{Role: llm.RoleSystem, Content: []llm.Part{{Type: llm.PartText, Text: "sys"}}}}}) != "sys" {
		t.Error("queryText without a user message")
	}
}

// BenchmarkKNNPredict measures Predict over 1000 stored examples, with
// the fake embedder (a few µs of it is the fake's own hashing) at 256
// dimensions and at 1536, the size of OpenAI's text-embedding-3-small.
func BenchmarkKNNPredict(b *testing.B) {
	for _, dims := range []int{256, 1536} {
		b.Run(fmt.Sprintf("1000x%d", dims), func(b *testing.B) {
			ctx := context.Background()
			emb := &bagOfWords{dims: dims}
			fs := openStore(b, openDB(b, b.TempDir()), emb.embed)
			var fb []Feedback
			for i := range 1000 {
				p := easyPrompts[i%len(easyPrompts)]
				if i%2 == 1 {
					p = hardPrompts[i%len(hardPrompts)]
				}
				fb = append(fb, Feedback{Prompt: fmt.Sprintf("%s (variant %d)", p, i), Model: []string{cheap.Model, strong.Model}[i%3%2], Good: i%4 != 0})
			}
			if _, err := fs.Add(ctx, fb...); err != nil {
				b.Fatal(err)
			}
			knn := NewKNN(emb.embed, fs, 10)
			req := userRequest(hardPrompts[2])
			cands := []Candidate{cheap, strong}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := knn.Predict(ctx, req, cands); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
