package refmodel

import (
	"slices"
	"strings"
	"testing"
)

func demo(t testing.TB) *Model {
	t.Helper()
	m, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGreedyFollowsTheCorpus(t *testing.T) {
	m := demo(t)
	// "the keeper says that the best thing to do is to listen to it." is in
	// the prose, and every step of it is the most frequent continuation.
	g := m.Generate("What does the keeper", GenerateOptions{})
	want := "says that the best thing to do is to listen to it."
	if g.Text != want || g.FinishReason != FinishStop || g.Tokens != 13 || g.PromptTokens != 4 {
		t.Fatalf("got %+v, want %q ending in stop after 13 tokens", g, want)
	}
	if again := m.Generate("What does the keeper", GenerateOptions{}); again != g {
		t.Fatalf("greedy is not deterministic: %+v vs %+v", again, g)
	}
}

func TestGenerateStopsAtTheLimit(t *testing.T) {
	m := demo(t)
	// This context loops under greedy decoding, so only the limit ends it.
	g := m.Generate("what about the river?", GenerateOptions{MaxTokens: 7})
	if g.Tokens != 7 || g.FinishReason != FinishLength || len(strings.Fields(g.Text)) != 7 {
		t.Fatalf("got %+v, want 7 tokens and length", g)
	}
	if g := m.Generate("what about the river?", GenerateOptions{}); g.Tokens != DefaultMaxTokens {
		t.Fatalf("default limit: %d tokens", g.Tokens)
	}
}

func TestSamplingIsSeeded(t *testing.T) {
	m := demo(t)
	o := GenerateOptions{Temperature: 1, MaxTokens: 30}
	texts := map[string]bool{}
	for seed := range uint64(8) {
		o.Seed = seed
		a, b := m.Generate("the harbour", o), m.Generate("the harbour", o)
		if a != b {
			t.Fatalf("seed %d: %q then %q", seed, a.Text, b.Text)
		}
		texts[a.Text] = true
	}
	if len(texts) < 3 {
		t.Fatalf("8 seeds gave only %d distinct texts: %v", len(texts), texts)
	}
}

func TestSamplingStaysInVocabulary(t *testing.T) {
	m := demo(t)
	for seed := range uint64(20) {
		g := m.Generate("storm", GenerateOptions{Temperature: 1.5, Seed: seed, MaxTokens: 20})
		for _, tok := range lmTokens(g.Text) {
			if _, ok := m.lm.index[tok]; !ok || tok == bosToken || tok == eosToken {
				t.Fatalf("seed %d produced %q in %q", seed, tok, g.Text)
			}
		}
		if g.Tokens == 0 || m.CountTokens(g.Text) != g.Tokens {
			t.Fatalf("seed %d: %d tokens but text %q counts %d", seed, g.Tokens, g.Text, m.CountTokens(g.Text))
		}
	}
}

func TestGenerateFuncStreamsPieces(t *testing.T) {
	m := demo(t)
	var pieces []string
	g := m.GenerateFunc("the keeper", GenerateOptions{}, func(p string) bool {
		pieces = append(pieces, p)
		return true
	})
	if strings.Join(pieces, "") != g.Text || len(pieces) != g.Tokens {
		t.Fatalf("pieces %q do not make %q", pieces, g.Text)
	}
	if !slices.Contains(pieces, ".") || pieces[0] != "says" || pieces[1] != " that" {
		t.Fatalf("pieces %q: first without a space, punctuation attached", pieces)
	}
	pieces = pieces[:0]
	g = m.GenerateFunc("the keeper", GenerateOptions{}, func(p string) bool {
		pieces = append(pieces, p)
		return len(pieces) < 3
	})
	if g.Tokens != 3 || g.FinishReason != "" || g.Text != "says that the" {
		t.Fatalf("stopped by emit: %+v", g)
	}
}

func TestGenerateStartsFromKnownWords(t *testing.T) {
	m := demo(t)
	for _, tc := range []struct{ prompt, context string }{
		{"", "<s> <s>"},
		{"quokka xylophone", "<s> <s>"},
		{"the keeper", "the keeper"},
		{"the keeper quokka!", "the keeper"},
		{"tell me about the lighthouse.", "the lighthouse"},
		{"lighthouse", "<s> lighthouse"},
	} {
		u, v := m.lm.context(lmTokens(tc.prompt))
		if got := m.lm.vocab[u] + " " + m.lm.vocab[v]; got != tc.context {
			t.Errorf("%q: context %q, want %q", tc.prompt, got, tc.context)
		}
		if g := m.Generate(tc.prompt, GenerateOptions{}); g.Tokens == 0 || m.lm.punct[m.lm.index[lmTokens(g.Text)[0]]] {
			t.Errorf("%q: %+v must start with a word", tc.prompt, g)
		}
	}
}

func TestCountTokens(t *testing.T) {
	m := demo(t)
	for text, want := range map[string]int{
		"":                         0,
		"Hello, world!":            4,
		"  it's   fine ... really": 6,
		"naïve café":               2,
	} {
		if got := m.CountTokens(text); got != want || len(lmTokens(text)) != want {
			t.Errorf("%q: %d tokens (lmTokens %d), want %d", text, got, len(lmTokens(text)), want)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	m := demo(b)
	for b.Loop() {
		m.Generate("tell me about the keeper", GenerateOptions{MaxTokens: 32})
	}
}
