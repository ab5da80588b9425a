package refmodel

import (
	"unicode"
	"unicode/utf8"
)

// Both heads split text the same way at training and at inference time, so
// this file is the single definition of a "word":
//
//   - a word is a run of letters and digits, lower-cased;
//   - an apostrophe between two letters is dropped ("can't" is "cant"), so
//     straight and curly apostrophes and their absence all agree;
//   - for the language model only, each of . , ; : ! ? is a token of its own;
//   - for the classifier only, plurals are folded by stem;
//   - everything else separates tokens.

// isPunctToken reports whether r is one of the marks the language model
// keeps as a token.
func isPunctToken(r rune) bool {
	switch r {
	case '.', ',', ';', ':', '!', '?':
		return true
	}
	return false
}

// endsSentence reports whether tok closes a sentence in the prose corpus.
func endsSentence(tok string) bool {
	return tok == "." || tok == "!" || tok == "?"
}

// isApostrophe reports whether r is a straight or a typographic apostrophe.
func isApostrophe(r rune) bool { return r == '\'' || r == '\u2019' }

// decode returns the rune at s[i] and its width, with an ASCII fast path.
func decode(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// isWordRune reports whether r belongs inside a word.
func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// appendLower appends r to dst in lower case.
func appendLower(dst []byte, r rune) []byte {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return append(dst, byte(r))
	}
	return utf8.AppendRune(dst, unicode.ToLower(r))
}

// nextToken finds the token that starts at or after s[i], appends it to dst
// lower-cased and returns the extended dst and the index just past the
// token. ok is false when s holds no further token. With punct set the
// marks of isPunctToken are tokens; otherwise they are separators.
func nextToken(s string, i int, dst []byte, punct bool) (out []byte, next int, ok bool) {
	for i < len(s) {
		r, n := decode(s, i)
		if isWordRune(r) {
			break
		}
		i += n
		if punct && isPunctToken(r) {
			return append(dst, byte(r)), i, true
		}
	}
	if i >= len(s) {
		return dst, i, false
	}
	for i < len(s) {
		r, n := decode(s, i)
		if isWordRune(r) {
			dst = appendLower(dst, r)
			i += n
			continue
		}
		if isApostrophe(r) && i+n < len(s) {
			if r2, _ := decode(s, i+n); isWordRune(r2) {
				i += n
				continue
			}
		}
		break
	}
	return dst, i, true
}

// featureCursor walks the classifier features of a text: each word, and
// after every word but the first, the bigram "previous word". The caller
// owns the buffer the features are built in, so that it can sit on the
// caller's stack and classification allocates nothing.
type featureCursor struct {
	text string
	i    int
	prev int // start of the previous word in the buffer, -1 before the first
}

func newFeatureCursor(text string) featureCursor { return featureCursor{text: text, prev: -1} }

// next appends the next word to buf and returns the extended buffer, the
// word and the bigram that ends with it (nil for the first word). ok is
// false at the end of the text. word and bigram alias buf.
func (c *featureCursor) next(buf []byte) (out, word, bigram []byte, ok bool) {
	if c.prev > 0 && len(buf) > cap(buf)/2 {
		// Only the previous word is still needed: move it to the front.
		buf = buf[:copy(buf, buf[c.prev:])]
		c.prev = 0
	}
	start := len(buf)
	if c.prev >= 0 {
		buf = append(buf, ' ')
		start++
	}
	buf, c.i, ok = nextToken(c.text, c.i, buf, false)
	if !ok {
		return buf, nil, nil, false
	}
	buf = buf[:start+len(stem(buf[start:]))]
	word = buf[start:]
	if c.prev >= 0 {
		bigram = buf[c.prev:]
	}
	c.prev = start
	return buf, word, bigram, true
}

// stem folds a plural into its singular the crude way: a word of four or
// more letters ending in a single s loses it ("invoices" is "invoice",
// "access" stays). It is only for the classifier, whose training data is
// too small to see both forms of most words.
func stem(w []byte) []byte {
	if n := len(w); n >= 4 && w[n-1] == 's' && w[n-2] != 's' {
		return w[:n-1]
	}
	return w
}

// eachFeature calls fn with every classifier feature of text, in order.
func eachFeature(text string, fn func(feature []byte)) {
	buf := make([]byte, 0, 256)
	c := newFeatureCursor(text)
	for {
		var word, bigram []byte
		var ok bool
		buf, word, bigram, ok = c.next(buf)
		if !ok {
			return
		}
		fn(word)
		if bigram != nil {
			fn(bigram)
		}
	}
}

// lmTokens splits text into language-model tokens.
func lmTokens(text string) []string {
	var toks []string
	var buf []byte
	for i := 0; ; {
		var ok bool
		buf, i, ok = nextToken(text, i, buf[:0], true)
		if !ok {
			return toks
		}
		toks = append(toks, string(buf))
	}
}

// countLMTokens returns len(lmTokens(text)) without allocating.
func countLMTokens(text string) int {
	var arr [64]byte
	n := 0
	for i := 0; ; n++ {
		var ok bool
		_, i, ok = nextToken(text, i, arr[:0], true)
		if !ok {
			return n
		}
	}
}
