package guardrail

import (
	_ "embed"
	"sort"
	"strings"
)

// profanityList is the managed PROFANITY word list shipped with Junction:
// one word or phrase a line, lower case; lines starting with # are notes.
//
//go:embed profanity.txt
var profanityList string

// Profanity returns the managed profanity list.
func Profanity() []string {
	var out []string
	for _, l := range strings.Split(profanityList, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// patternKind says which policy a word-automaton pattern belongs to.
type patternKind uint8

const (
	kindCustomWord patternKind = iota
	kindManaged
	kindTopic
)

// pattern is one entry of the word automaton.
type pattern struct {
	kind patternKind
	// index is the word, managed list or topic the pattern came from.
	index int
	n     int // length in bytes
}

// matcher finds many words and phrases in one pass: an Aho-Corasick
// automaton compiled to a DFA over an alphabet of byte classes, with ASCII
// case folded, so that scanning costs one table lookup a byte whatever the
// number of words. A match counts only at word boundaries: the bytes
// either side must not be letters, digits, '_' or part of a multibyte
// character.
type matcher struct {
	class  [256]uint16
	nclass int
	// delta maps state*nclass + class to the next state, premultiplied
	// by nclass, with the sign bit set when patterns end there.
	delta    []int32
	out      []int32 // index into chains of the patterns ending at state, or -1
	chains   [][]int32
	patterns []pattern
	maxLen   int
	space    uint16 // the class of whitespace, 0 if no phrase has a space
}

func foldByte(b byte) byte {
	if b >= 'A' && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

var wordBytes = func() (t [256]bool) {
	for b := 0; b < 256; b++ {
		t[b] = isWordByte(byte(b))
	}
	return t
}()

// isWordByte reports whether b belongs to a word for boundary checks.
func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b >= 0x80
}

// normalizePhrase lowercases a word or phrase and collapses its inner
// whitespace to single spaces.
func normalizePhrase(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(s)), " ")
}

// newMatcher compiles the patterns (already normalized). It returns nil
// when there are none.
func newMatcher(words []string, pats []pattern) *matcher {
	if len(words) == 0 {
		return nil
	}
	m := &matcher{patterns: pats}
	// Byte classes: every distinct folded byte in a pattern gets one;
	// class 0 is "any other byte".
	m.nclass = 1
	for _, w := range words {
		for i := 0; i < len(w); i++ {
			b := foldByte(w[i])
			if m.class[b] == 0 {
				m.class[b] = uint16(m.nclass)
				m.nclass++
			}
		}
		m.maxLen = max(m.maxLen, len(w))
	}
	for c := 'A'; c <= 'Z'; c++ {
		m.class[c] = m.class[c+'a'-'A']
	}
	// Any whitespace matches the single spaces of a normalized phrase.
	m.space = m.class[' ']
	for _, c := range "\t\n\r\f\v" {
		m.class[c] = m.space
	}
	// Trie.
	type node struct {
		next map[uint16]int32
		fail int32
		out  []int32
		str  string
	}
	nodes := []node{{next: map[uint16]int32{}}}
	for id, w := range words {
		s := int32(0)
		for i := 0; i < len(w); i++ {
			c := m.class[foldByte(w[i])]
			t, ok := nodes[s].next[c]
			if !ok {
				t = int32(len(nodes))
				nodes = append(nodes, node{next: map[uint16]int32{}, str: w[:i+1]})
				nodes[s].next[c] = t
			}
			s = t
		}
		nodes[s].out = append(nodes[s].out, int32(id))
	}
	lookup := func(w string) int32 {
		s := int32(0)
		for i := 0; i < len(w); i++ {
			t, ok := nodes[s].next[m.class[foldByte(w[i])]]
			if !ok {
				return -1
			}
			s = t
		}
		return s
	}
	// Failure links go only to the longest suffix that starts at a word
	// boundary: a match must start at one, so a suffix starting inside a
	// word can never count. This keeps the automaton at the root inside
	// words, where find skips ahead to the next word.
	for s := 1; s < len(nodes); s++ {
		w := nodes[s].str
		for k := 1; k < len(w); k++ {
			if isWordByte(w[k-1]) {
				continue
			}
			if t := lookup(w[k:]); t >= 0 {
				nodes[s].fail = t
				break
			}
		}
	}
	// Breadth-first, so that a state's failure target is complete before
	// the state: fill in the DFA.
	nc := m.nclass
	m.delta = make([]int32, len(nodes)*nc)
	order := []int32{0}
	for q := 0; q < len(order); q++ {
		s := order[q]
		f := nodes[s].fail
		if s != 0 {
			nodes[s].out = append(nodes[s].out, nodes[f].out...)
		}
		for c := 0; c < nc; c++ {
			if t, ok := nodes[s].next[uint16(c)]; ok {
				m.delta[int(s)*nc+c] = t
				order = append(order, t)
			} else if s != 0 {
				m.delta[int(s)*nc+c] = m.delta[int(f)*nc+c]
			}
		}
	}
	m.out = make([]int32, len(nodes))
	defer func() {
		for i, t := range m.delta {
			v := t * int32(nc)
			if m.out[t] >= 0 {
				v |= -1 << 31
			}
			m.delta[i] = v
		}
	}()
	for s := range nodes {
		m.out[s] = -1
		outs := nodes[s].out
		sort.Slice(outs, func(i, j int) bool { return outs[i] < outs[j] })
		outs = dedupe(outs)
		if len(outs) > 0 {
			m.out[s] = int32(len(m.chains))
			m.chains = append(m.chains, outs)
		}
	}
	return m
}

func dedupe(s []int32) []int32 {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// start returns where a match of a normalized pattern of n bytes ending
// at end begins, counting each run of whitespace as one byte.
func (m *matcher) start(text string, end, n int) int {
	if m.space == 0 {
		return end - n
	}
	i := end
	for ; n > 0; n-- {
		i--
		if m.class[text[i]] == m.space {
			for i > 0 && m.class[text[i-1]] == m.space {
				i--
			}
		}
	}
	return i
}
