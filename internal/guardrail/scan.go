package guardrail

// noWords is a matcher with no patterns, for policies without words, so
// that the single pass below needs no second version.
var noWords = &matcher{nclass: 1, delta: []int32{0}}

// noTriggers is the PII trigger table of a policy without PII.
var noTriggers [256]uint8

// Byte kinds in Guard.skip.
const (
	skipByte = 1 // not a word byte; from the root, stays there and triggers nothing
	skipWord = 2 // a word byte that, at a word start, does the same
)

// buildSkip fills g.skip: the bytes that, with the word automaton at its
// root, leave it there and trigger no PII detector. After one that is a
// word byte the automaton stays at the root to the end of the word (a
// trigger on a letter or digit inside a word does nothing).
func (g *Guard) buildSkip() {
	m := g.words
	if m == nil {
		m = noWords
	}
	trig := &noTriggers
	if g.pii != nil {
		trig = &g.pii.trig
	}
	for b := 0; b < 256; b++ {
		if trig[b] != 0 || m.delta[m.class[b]] != 0 {
			continue
		}
		if isWordByte(byte(b)) {
			g.skip[b] = skipWord
		} else {
			g.skip[b] = skipByte
		}
	}
}

// find runs the word automaton and the PII detectors in one pass over
// text: at each byte the automaton steps and, where the byte can start a
// detection, the PII trigger runs. Inside a word, with the automaton at
// its root, neither can find anything until the word ends (a PII trigger
// on a letter or digit counts only at a token start, and one on
// punctuation ends the word), so the pass skips to the end of the word.
// Words are reported in order of their end, PII in no particular order.
func (g *Guard) find(text string, onWord func(p *pattern, start, end int), onPII func(k piiKind, start, end int)) {
	m := g.words
	if m == nil {
		m = noWords
	}
	trig := &noTriggers
	if g.pii != nil {
		trig = &g.pii.trig
	}
	nc := int32(m.nclass)
	s := int32(0)
	class := &m.class
	delta := m.delta
	space := uint16(0xffff)
	if m.space != 0 {
		space = m.space
	}
	word := &wordBytes
	skip := &g.skip
	numNext := 0 // no number span starting before here can be classified
	for i := 0; i < len(text); i++ {
		if s == 0 {
			// At the root: skip the rest of a word, then the bytes that
			// leave the automaton at its root and trigger nothing, and
			// the words that start with such a byte.
			if i > 0 && word[text[i-1]] {
				for i < len(text) && word[text[i]] {
					i++
				}
			}
			for i < len(text) {
				k := skip[text[i]]
				if k == 0 {
					break
				}
				i++
				if k == skipWord {
					for i < len(text) && word[text[i]] {
						i++
					}
				}
			}
			if i == len(text) {
				break
			}
		}
		b := text[i]
		if t := trig[b]; t != 0 && (i >= numNext || t&(trDigit|trPlusParen) == 0) {
			if n := g.pii.trigger(text, i, t, onPII); n > numNext {
				numNext = n
			}
		}
		c := class[b]
		if c == space && i > 0 && class[text[i-1]] == space {
			continue // a run of whitespace counts as one space
		}
		v := delta[s+int32(c)]
		if v >= 0 {
			s = v
			continue
		}
		s = v & 0x7fffffff
		end := i + 1
		if end < len(text) && isWordByte(text[end]) {
			continue
		}
		for _, id := range m.chains[m.out[s/nc]] {
			p := &m.patterns[id]
			start := m.start(text, end, p.n)
			if start > 0 && isWordByte(text[start-1]) {
				continue
			}
			onWord(p, start, end)
		}
	}
	if g.pii != nil {
		g.pii.finish(text, onPII)
	}
}
