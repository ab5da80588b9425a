package tokens

import (
	"unicode"
	"unicode/utf8"
)

// The pre-tokenizers below cut text into the pieces that byte-pair
// encoding then merges, exactly as tiktoken's split patterns do:
//
//	cl100k_base: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//	o200k_base:  [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
//	             [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
//	             \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// They are written out by hand because the backtracking regexp engine the
// tokenizer library uses allocates per match: its Count of a 4 KB prompt
// takes 0.65 ms (cl100k) to 0.9 ms (o200k) and allocates 300 KB. These
// scanners walk the string once without allocating. Each alternative's backtracking is resolved in
// closed form; split_test.go checks the pieces against the library's
// regexps on a corpus and by fuzzing.

// Character classes of a rune, as the split patterns use them.
const (
	cLetter  = 1 << iota // \p{L}
	cNumber              // \p{N}
	cSpace               // \s (unicode.IsSpace)
	cNewline             // \r or \n
	cUpper               // o200k's [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
	cLower               // o200k's [\p{Ll}\p{Lm}\p{Lo}\p{M}]
)

var asciiClass [utf8.RuneSelf]uint8

func init() {
	for r := rune(0); r < utf8.RuneSelf; r++ {
		asciiClass[r] = classOf(r)
	}
}

func classOf(r rune) uint8 {
	var c uint8
	switch {
	case unicode.IsLetter(r):
		c = cLetter
		switch {
		case unicode.Is(unicode.Ll, r):
			c |= cLower
		case unicode.Is(unicode.Lu, r), unicode.Is(unicode.Lt, r):
			c |= cUpper
		default: // Lm, Lo
			c |= cUpper | cLower
		}
	case unicode.IsNumber(r):
		c = cNumber
	case unicode.IsSpace(r):
		c = cSpace
		if r == '\r' || r == '\n' {
			c |= cNewline
		}
	case unicode.Is(unicode.M, r):
		c = cUpper | cLower
	}
	return c
}

// at decodes the rune at s[i] and returns its class and width. Invalid
// UTF-8 reads as U+FFFD, a symbol, as it does in the regexp engine.
func at(s string, i int) (uint8, int) {
	if b := s[i]; b < utf8.RuneSelf {
		return asciiClass[b], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return classOf(r), n
}

// isPrefix reports whether class c matches [^\r\n\p{L}\p{N}].
func isPrefix(c uint8) bool { return c&(cNewline|cLetter|cNumber) == 0 }

// isPunct reports whether class c matches [^\s\p{L}\p{N}].
func isPunct(c uint8) bool { return c&(cSpace|cLetter|cNumber) == 0 }

// contraction returns the length of (?i:'s|'t|'re|'ve|'m|'ll|'d) at s[i],
// or 0.
func contraction(s string, i int) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return 0
	}
	switch s[i+1] | 0x20 {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if i+2 < len(s) && s[i+2]|0x20 == 'e' {
			return 3
		}
	case 'l':
		if i+2 < len(s) && s[i+2]|0x20 == 'l' {
			return 3
		}
	}
	// Case-insensitive 's' also matches U+017F LATIN SMALL LETTER LONG S.
	if i+3 <= len(s) && s[i+1:i+3] == "\u017f" {
		return 3
	}
	return 0
}

// run returns the end of the run of runes from i whose class has any bit
// of mask.
func run(s string, i int, mask uint8) int {
	for i < len(s) && s[i] < utf8.RuneSelf {
		if asciiClass[s[i]]&mask == 0 {
			return i
		}
		i++
	}
	for i < len(s) {
		c, n := at(s, i)
		if c&mask == 0 {
			break
		}
		i += n
	}
	return i
}

// whitespace matches \s*[\r\n]+|\s+(?!\S)|\s+ at s[i], which holds a
// space, and returns the end of the match.
func whitespace(s string, i int) int {
	end, lastNL, lastStart := i, -1, i
	for end < len(s) {
		c, n := at(s, end)
		if c&cSpace == 0 {
			break
		}
		if c&cNewline != 0 {
			lastNL = end + n
		}
		lastStart = end
		end += n
	}
	switch {
	case lastNL >= 0: // \s*[\r\n]+ : up to the last newline of the run
		return lastNL
	case end == len(s) || lastStart == i: // \s+(?!\S) at the end, or \s+
		return end
	default: // \s+(?!\S) leaves the last space for the next piece
		return lastStart
	}
}

// splitCl100k calls piece for each piece of s under cl100k_base's pattern.
func splitCl100k(s string, piece func(string)) {
	for i := 0; i < len(s); {
		j := nextCl100k(s, i)
		piece(s[i:j])
		i = j
	}
}

func nextCl100k(s string, i int) int {
	if n := contraction(s, i); n > 0 {
		return i + n
	}
	c, n := at(s, i)
	switch {
	case c&cLetter != 0:
		return run(s, i+n, cLetter)
	case c&cNumber != 0:
		return digits(s, i+n)
	}
	var next uint8
	if i+n < len(s) {
		next, _ = at(s, i+n)
	}
	if isPrefix(c) && next&cLetter != 0 {
		return run(s, i+n, cLetter)
	}
	if s[i] == ' ' && isPunct(next) && i+n < len(s) {
		return punct(s, i+n, false)
	}
	if isPunct(c) {
		return punct(s, i, false)
	}
	return whitespace(s, i)
}

// digits matches the rest of \p{N}{1,3} after the first digit at i.
func digits(s string, i int) int {
	for k := 0; k < 2 && i < len(s); k++ {
		c, n := at(s, i)
		if c&cNumber == 0 {
			break
		}
		i += n
	}
	return i
}

// punct matches [^\s\p{L}\p{N}]+ from i, then [\r\n]* (and '/' too for
// o200k).
func punct(s string, i int, slash bool) int {
	for i < len(s) {
		c, n := at(s, i)
		if !isPunct(c) {
			break
		}
		i += n
	}
	for i < len(s) && (s[i] == '\r' || s[i] == '\n' || slash && s[i] == '/') {
		i++
	}
	return i
}

// splitO200k calls piece for each piece of s under o200k_base's pattern.
func splitO200k(s string, piece func(string)) {
	for i := 0; i < len(s); {
		j := nextO200k(s, i)
		piece(s[i:j])
		i = j
	}
}

func nextO200k(s string, i int) int {
	c, n := at(s, i)
	prefixed := isPrefix(c) && i+n < len(s)
	// The alternatives in the pattern's order, each first with the
	// optional prefix rune taken and then without it.
	if prefixed {
		if j := lowerWord(s, i+n); j > 0 {
			return j
		}
	}
	if j := lowerWord(s, i); j > 0 {
		return j
	}
	if prefixed {
		if j := upperWord(s, i+n); j > 0 {
			return j
		}
	}
	if j := upperWord(s, i); j > 0 {
		return j
	}
	switch {
	case c&cNumber != 0:
		return digits(s, i+n)
	case s[i] == ' ' && i+1 < len(s):
		if next, _ := at(s, i+1); isPunct(next) {
			return punct(s, i+1, true)
		}
	}
	if isPunct(c) {
		return punct(s, i, true)
	}
	return whitespace(s, i)
}

// lowerWord matches [Upper]*[Lower]+ contraction? at p and returns its
// end, or 0, where Upper = Lu Lt Lm Lo M and Lower = Ll Lm Lo M. Upper*
// is greedy: when no Lower rune follows the Upper run, backtracking ends
// the match just after the run's last rune that is also Lower.
func lowerWord(s string, p int) int {
	q, lastLower := p, -1
	for q < len(s) {
		c, n := at(s, q)
		if c&cUpper == 0 {
			break
		}
		q += n
		if c&cLower != 0 {
			lastLower = q
		}
	}
	end := lastLower
	if q < len(s) {
		if c, _ := at(s, q); c&cLower != 0 {
			end = run(s, q, cLower)
		}
	}
	if end < 0 {
		return 0
	}
	return end + contraction(s, end)
}

// upperWord matches [Upper]+[Lower]* contraction? at p and returns its
// end, or 0.
func upperWord(s string, p int) int {
	q := run(s, p, cUpper)
	if q == p {
		return 0
	}
	end := run(s, q, cLower)
	return end + contraction(s, end)
}
