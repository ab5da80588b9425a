package guardrail

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
)

// TestMatcherAgainstNaive compares the automaton with a direct search
// for every word at every token start, on random texts over a small
// alphabet where words overlap, nest and repeat.
func TestMatcherAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "b", "ab", "ba", " ", "-", "x"}
	gen := func(n int) string {
		var b strings.Builder
		for b.Len() < n {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for round := 0; round < 200; round++ {
		seen := map[string]bool{}
		var words []string
		var pats []pattern
		for len(words) < 1+rng.IntN(8) {
			w := normalizePhrase(strings.Trim(gen(1+rng.IntN(6)), " -"))
			if w == "" || seen[w] {
				continue
			}
			seen[w] = true
			pats = append(pats, pattern{index: len(words), n: len(w)})
			words = append(words, w)
		}
		m := newMatcher(words, pats)
		text := strings.ToUpper(gen(80)) // case folding, single spaces only
		for strings.Contains(text, "  ") {
			text = strings.ReplaceAll(text, "  ", " ")
		}
		var got, want []string
		// Through the production pass (Guard.find), with its skip table.
		g := &Guard{words: m}
		g.buildSkip()
		g.find(text, func(p *pattern, s, e int) { got = append(got, fmt.Sprintf("%d:%d-%d", p.index, s, e)) }, nil)
		lower := strings.ToLower(text)
		for id, w := range words {
			for s := 0; s+len(w) <= len(lower); s++ {
				e := s + len(w)
				if lower[s:e] == w && (s == 0 || !isWordByte(lower[s-1])) && (e == len(lower) || !isWordByte(lower[e])) {
					want = append(want, fmt.Sprintf("%d:%d-%d", id, s, e))
				}
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("words %q text %q\n got %v\nwant %v", words, text, got, want)
		}
	}
}

func TestPhrasesIgnoreSpacing(t *testing.T) {
	g := mustCompile(t, Policy{WordPolicy: WordPolicy{Words: []Word{{Text: "New York"}, {Text: "york"}}}})
	var got []string
	for _, f := range g.scan("I love NEW \t\n york, and Yorkshire.", Input, nil) {
		got = append(got, f.Match)
	}
	if strings.Join(got, "|") != "NEW \t\n york|york" {
		t.Errorf("found %q", got)
	}
}
