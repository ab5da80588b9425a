package guardrail

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// regexScanner runs a custom pattern. Go's regexp costs tens of
// nanoseconds a byte on a pattern without a literal prefix, so where the
// pattern has a required literal and a bounded match length, the text is
// first searched for the literal (at memchr speed) and the pattern runs
// only on windows around its occurrences, widened to word boundaries so
// that \b means what it means in the whole text.
type regexScanner struct {
	re  *regexp.Regexp
	lit string // a literal every match contains; "" if none is known
	// maxLen is the longest match in bytes, or -1 if unbounded.
	maxLen int
	fixed  *fixedRegex // nil unless the pattern is fixed
}

func newRegexScanner(pattern string) (*regexScanner, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	rs := &regexScanner{re: re, maxLen: -1}
	tree, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return rs, nil
	}
	tree = tree.Simplify()
	if anchored(tree) {
		return rs, nil
	}
	rs.maxLen = maxLen(tree)
	rs.lit = requiredLiteral(tree)
	rs.fixed = newFixedRegex(tree)
	return rs, nil
}

// fixedRegex is a pattern that is a plain sequence of ASCII bytes, ASCII
// byte classes and word-boundary assertions, such as \bORD-\d{6}\b:
// every match has the same length and there is nothing to backtrack
// over, so a match is found by searching for its literal part with
// strings.Index and checking the other bytes in place. It finds the
// matches the regexp finds in the whole text.
type fixedRegex struct {
	elems []fixedElem
	n     int    // match length in bytes
	lit   string // the longest run of single-byte elements
	off   int    // where lit starts in a match
}

type fixedElem struct {
	op  syntax.Op // OpCharClass (a byte of set), OpWordBoundary or OpNoWordBoundary
	set *[256]bool
}

// newFixedRegex returns nil for a pattern that is not fixed.
func newFixedRegex(re *syntax.Regexp) *fixedRegex {
	f := &fixedRegex{}
	if !f.add(re) || f.n == 0 {
		return nil
	}
	// The literal: the longest run of elements that match one byte each.
	best, bestOff := "", 0
	var run []byte
	runOff, pos := 0, 0
	for _, e := range f.elems {
		b, single := e.single()
		if single {
			if len(run) == 0 {
				runOff = pos
			}
			run = append(run, b)
			if len(run) > len(best) {
				best, bestOff = string(run), runOff
			}
		} else {
			run = run[:0]
		}
		if e.op == syntax.OpCharClass {
			pos++
		}
	}
	if best == "" {
		return nil
	}
	f.lit, f.off = best, bestOff
	return f
}

// single returns the byte a one-byte element matches, if it is one.
func (e *fixedElem) single() (byte, bool) {
	if e.op != syntax.OpCharClass {
		return 0, false
	}
	n, b := 0, byte(0)
	for c := 0; c < 256; c++ {
		if e.set[c] {
			n, b = n+1, byte(c)
		}
	}
	return b, n == 1
}

func (f *fixedRegex) add(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if !f.add(s) {
				return false
			}
		}
		return true
	case syntax.OpCapture:
		return f.add(re.Sub[0])
	case syntax.OpEmptyMatch:
		return true
	case syntax.OpRepeat:
		if re.Min != re.Max || re.Min > 1000 {
			return false
		}
		for i := 0; i < re.Min; i++ {
			if !f.add(re.Sub[0]) {
				return false
			}
		}
		return true
	case syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		f.elems = append(f.elems, fixedElem{op: re.Op})
		return true
	case syntax.OpLiteral:
		// Case folding may match non-ASCII runes (k and the Kelvin sign).
		if re.Flags&syntax.FoldCase != 0 {
			return false
		}
		for _, r := range re.Rune {
			if r >= utf8.RuneSelf {
				return false
			}
			set := new([256]bool)
			set[r] = true
			f.elems = append(f.elems, fixedElem{op: syntax.OpCharClass, set: set})
			f.n++
		}
		return true
	case syntax.OpCharClass:
		set := new([256]bool)
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if hi >= utf8.RuneSelf {
				return false
			}
			for r := lo; r <= hi; r++ {
				set[r] = true
			}
		}
		f.elems = append(f.elems, fixedElem{op: syntax.OpCharClass, set: set})
		f.n++
		return true
	}
	return false
}

// find calls fn for each match, in order.
func (f *fixedRegex) find(text string, fn func(start, end int)) {
	pos := 0 // where the next match may start
	for pos+f.n <= len(text) {
		j := strings.Index(text[pos+f.off:], f.lit)
		if j < 0 {
			return
		}
		s := pos + j
		if s+f.n > len(text) {
			return
		}
		if f.matchAt(text, s) {
			fn(s, s+f.n)
			pos = s + f.n
		} else {
			pos = s + 1
		}
	}
}

func (f *fixedRegex) matchAt(text string, p int) bool {
	for i := range f.elems {
		e := &f.elems[i]
		if e.op == syntax.OpCharClass {
			if !e.set[text[p]] {
				return false
			}
			p++
			continue
		}
		// \b and \B look at ASCII word characters, as the regexp does.
		before := p > 0 && isASCIIWord(text[p-1])
		after := p < len(text) && isASCIIWord(text[p])
		if (before != after) != (e.op == syntax.OpWordBoundary) {
			return false
		}
	}
	return true
}

// anchored reports whether the pattern uses a text or line anchor, which
// a window would change the meaning of.
func anchored(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText:
		return true
	}
	for _, s := range re.Sub {
		if anchored(s) {
			return true
		}
	}
	return false
}

func maxLen(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return utf8.UTFMax * len(re.Rune)
		}
		n := 0
		for _, r := range re.Rune {
			n += utf8.RuneLen(r)
		}
		return n
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return 0
		}
		return max(utf8.RuneLen(re.Rune[len(re.Rune)-1]), 1)
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return utf8.UTFMax
	case syntax.OpCapture, syntax.OpQuest:
		return maxLen(re.Sub[0])
	case syntax.OpRepeat:
		if re.Max < 0 {
			return -1
		}
		n := maxLen(re.Sub[0])
		if n < 0 {
			return -1
		}
		return n * re.Max
	case syntax.OpStar, syntax.OpPlus:
		return -1
	case syntax.OpConcat, syntax.OpAlternate:
		total := 0
		for _, s := range re.Sub {
			n := maxLen(s)
			if n < 0 {
				return -1
			}
			if re.Op == syntax.OpConcat {
				total += n
			} else {
				total = max(total, n)
			}
		}
		return total
	}
	return 0 // empty-width operators
}

// requiredLiteral returns the longest case-sensitive literal of two or
// more bytes that every match contains, or "".
func requiredLiteral(re *syntax.Regexp) string {
	lit := func(r *syntax.Regexp) string {
		for r.Op == syntax.OpCapture {
			r = r.Sub[0]
		}
		if r.Op == syntax.OpLiteral && r.Flags&syntax.FoldCase == 0 {
			return string(r.Rune)
		}
		return ""
	}
	best := lit(re)
	if re.Op == syntax.OpCapture {
		return requiredLiteral(re.Sub[0])
	}
	if re.Op == syntax.OpConcat {
		for _, s := range re.Sub {
			if l := lit(s); len(l) > len(best) {
				best = l
			}
		}
	}
	if len(best) < 2 {
		return ""
	}
	return best
}

// find calls fn for each match, in order.
func (rs *regexScanner) find(text string, fn func(start, end int)) {
	if rs.fixed != nil {
		rs.fixed.find(text, fn)
		return
	}
	if rs.lit == "" || rs.maxLen < 0 {
		for _, m := range rs.re.FindAllStringIndex(text, -1) {
			if m[1] > m[0] {
				fn(m[0], m[1])
			}
		}
		return
	}
	// Windows around each occurrence of the literal, merged.
	from, ws, we, reported := 0, -1, -1, 0
	flush := func() {
		if ws < 0 {
			return
		}
		for ws > 0 && isASCIIWord(text[ws-1]) {
			ws--
		}
		for we < len(text) && isASCIIWord(text[we]) {
			we++
		}
		for _, m := range rs.re.FindAllStringIndex(text[ws:we], -1) {
			if m[1] > m[0] && ws+m[0] >= reported {
				fn(ws+m[0], ws+m[1])
				reported = ws + m[1]
			}
		}
	}
	for {
		j := strings.Index(text[from:], rs.lit)
		if j < 0 {
			break
		}
		j += from
		s, e := max(0, j-rs.maxLen), min(len(text), j+len(rs.lit)+rs.maxLen)
		if ws >= 0 && s <= we {
			we = max(we, e)
		} else {
			flush()
			ws, we = s, e
		}
		from = j + 1
	}
	flush()
}

func isASCIIWord(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_'
}
