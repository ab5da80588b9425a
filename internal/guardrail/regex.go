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
	return rs, nil
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
