package promptroute

import (
	"math"
	"unicode"
	"unicode/utf8"
)

// scanner reads a task's text in one pass, with no allocation: words are
// lowered into a fixed buffer, hashed on the way, and looked up in the
// lexicon. Its zero value is ready; scan may be called once per text part.
type scanner struct {
	codeKw, codeTopic, codeSyms, fences   int
	mathStrong, mathWeak, mathOps, latex  int
	listItems, seq, stepByStep, stepsWord int
	questions, imperatives, reasoning     int
	longForm, detail, brief               bool
	output                                float64

	lineStart     bool // at the start of a line (after indentation)
	sentenceStart bool // the next word opens a sentence
	clauseStart   bool // the next word opens a clause
	inFence       bool
	// The previous two words' phrase ids and the previous one's class,
	// for phrases ("step by step", "edge cases", "two thousand").
	prevID, prev2ID uint8
	prevClass       uint16
	number          float64 // the last number seen
	numberAge       int     // words since that number
	prevKind        byte    // what came last, for operators: kNone, kNumber, ...
	started         bool    // boundary has set up the first line
}

// Operand kinds for maths operators.
const (
	kNone   = iota
	kNumber // digits
	kVar    // a single letter
	kParen  // ( or )
	kWord   // a longer word
)

// boundary starts a new line and sentence: at the start, and between
// text parts, which do not run into each other.
func (s *scanner) boundary() {
	s.lineStart, s.sentenceStart = true, true
	s.prevKind = kNone
}

func (s *scanner) scan(t string) {
	if !s.started {
		s.started = true
		s.boundary()
	}
	for i := 0; i < len(t); {
		c := t[i]
		switch {
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(t[i:])
			switch r {
			case '∫', '∑', '∂', '∇', '∮':
				s.latex++
			case '√', 'π', '∞', '≤', '≥', '±', '×', '÷', '≠', '≈', '∈', '∀', '∃':
				s.mathOps++
			case '•':
				if s.lineStart {
					s.listItems++
				}
			default:
				if unicode.IsLetter(r) {
					j := i + n
					for j < len(t) {
						r2, n2 := utf8.DecodeRuneInString(t[j:])
						if !unicode.IsLetter(r2) && !(r2 < utf8.RuneSelf && isAlnum(byte(r2))) {
							break
						}
						j += n2
					}
					s.word(t[i:j])
					i = j
					continue
				}
			}
			s.lineStart = false
			i += n
		case isLetter(c):
			j := i + 1
			for j < len(t) && ascii[t[j]]&aWord != 0 {
				j++
			}
			// A contraction's tail ("isn't", "it's") stays with its word.
			if j+1 < len(t) && t[j] == '\'' && isLetter(t[j+1]) {
				j += 2
				for j < len(t) && isLetter(t[j]) {
					j++
				}
			}
			s.word(t[i:j])
			i = j
		case isDigit(c):
			j, v := i, 0.0
			for j < len(t) && (isDigit(t[j]) || t[j] == ',' && j+3 < len(t) && isDigit(t[j+1]) && isDigit(t[j+2]) && isDigit(t[j+3]) && (j+4 == len(t) || !isDigit(t[j+4]))) {
				if t[j] != ',' {
					v = v*10 + float64(t[j]-'0')
				}
				j++
			}
			// A list item: "1." or "2)" at a line start, then a space.
			if s.lineStart && j+1 < len(t) && (t[j] == '.' || t[j] == ')') && t[j+1] == ' ' {
				s.listItems++
			}
			// "3x" reads as a number then a variable.
			s.number, s.numberAge = v, 0
			s.prevKind = kNumber
			s.lineStart, s.sentenceStart = false, false
			i = j
		case c == '\n':
			s.lineStart, s.sentenceStart = true, true
			s.prevKind = kNone
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		default:
			i = s.symbol(t, i)
		}
	}
}

// symbol handles the punctuation at t[i] and returns where to go on.
func (s *scanner) symbol(t string, i int) int {
	c := t[i]
	next := byte(0)
	if i+1 < len(t) {
		next = t[i+1]
	}
	lineStart := s.lineStart
	s.lineStart = false
	switch c {
	case '`':
		if next == '`' && i+2 < len(t) && t[i+2] == '`' {
			s.fences++
			s.inFence = !s.inFence
			return i + 3
		}
	case '\\':
		j := i + 1
		for j < len(t) && isLetter(t[j]) {
			j++
		}
		if j-i-1 <= 12 && latexCommands[t[i+1:j]] {
			s.latex++
		}
		return j
	case '{':
		if endOfLine(t, i+1) {
			s.codeSyms++
		}
	case '}':
		if lineStart || endOfLine(t, i+1) {
			s.codeSyms++
		}
	case ';':
		if endOfLine(t, i+1) {
			s.codeSyms++
		}
		s.clauseStart = true
	case '(':
		if next == ')' {
			s.codeSyms++
		}
		s.prevKind = kParen
		return i + 1
	case ')':
		s.prevKind = kParen
		s.sentenceStart = false
		return i + 1
	case '/':
		if next == '/' && (i == 0 || t[i-1] != ':') {
			s.codeSyms++
			return i + 2
		}
		if next == '>' {
			s.codeSyms++
			return i + 2
		}
	case '<':
		if next == '/' {
			s.codeSyms++
			return i + 2
		}
	case '#':
		if len(t)-i > 8 && t[i+1:i+8] == "include" {
			s.codeSyms++
		}
	case '.', '!', '?':
		if c == '!' && next == '=' {
			s.codeSyms++
			return i + 2
		}
		if c == '?' {
			s.questions++
		}
		s.sentenceStart = true
		s.prevKind = kNone
		return i + 1
	case ':':
		if next == '=' || next == ':' {
			s.codeSyms++
			return i + 2
		}
		s.sentenceStart = true
		s.prevKind = kNone
		return i + 1
	case '-', '*':
		if lineStart && next == ' ' {
			s.listItems++
			return i + 2
		}
	case ',':
		s.clauseStart = true
	}
	switch {
	case c == '=' && (next == '=' || next == '>'), c == '!' && next == '=', c == '&' && next == '&',
		c == '|' && next == '|', c == '-' && next == '>':
		s.codeSyms++
		return i + 2
	}
	switch c {
	case '+', '-', '*', '/', '^', '=', '<', '>', '%':
		if !s.inFence && s.operator(c, t, i) {
			s.mathOps++
		}
		s.prevKind = kNone
	}
	return i + 1
}

// operator reports whether the operator c at t[i] stands between
// operands (numbers, single-letter variables, brackets) with a number on
// one side, or, for + * / ^ =, between any two operands.
func (s *scanner) operator(c byte, t string, i int) bool {
	if c == '%' {
		return false // "15%" is a percentage, not an operator
	}
	prev := s.prevKind
	j := i + 1
	for j < len(t) && (t[j] == ' ' || t[j] == '\t') {
		j++
	}
	next := kNone
	if j < len(t) {
		switch d := t[j]; {
		case isDigit(d):
			next = kNumber
		case d == '(' || d == '\\':
			next = kParen
		case isLetter(d):
			next = kWord
			if j+1 >= len(t) || !isLetter(t[j+1]) {
				next = kVar
			}
		}
	}
	operand := func(k int) bool { return k == kNumber || k == kVar || k == kParen }
	if !operand(int(prev)) || !operand(next) {
		return false // "top-line", "2000-word", "a<b>" are not maths
	}
	return prev == kNumber || next == kNumber || c != '-' && c != '<' && c != '>'
}

func endOfLine(t string, i int) bool {
	for i < len(t) && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r') {
		i++
	}
	return i == len(t) || t[i] == '\n'
}

// word handles one word.
func (s *scanner) word(w string) {
	var e *entry
	if len(w) <= maxWord {
		var buf [maxWord]byte
		h := uint64(fnvOffset)
		for i := 0; i < len(w); i++ {
			c := lower[w[i]]
			buf[i] = c
			h = wordHash(h, c)
		}
		e = lookup(buf[:len(w)], h)
	}
	var class uint16
	var id uint8
	if e != nil {
		class, id = e.class, e.id
	}
	if class != 0 {
		s.classify(class, e.val)
	}
	// Phrases.
	switch id {
	case idStep:
		if s.prevID == idBy && s.prev2ID == idStep {
			s.stepByStep++
		}
	case idSteps:
		s.stepsWord++
	case idCases:
		if s.prevID == idEdge || s.prevID == idCorner {
			s.reasoning++
		}
	case idOffs:
		if s.prevID == idTrade {
			s.reasoning++
		}
	case idDepth:
		if s.prevID == idIn {
			s.detail = true
		}
	case idTest, idTests:
		if s.prevID == idUnit {
			s.codeTopic++
		}
	}
	s.numberAge++
	s.prev2ID, s.prevID, s.prevClass = s.prevID, id, class
	s.prevKind = kWord
	if len(w) == 1 {
		s.prevKind = kVar
	}
	s.lineStart, s.sentenceStart = false, false
	s.clauseStart = class&wClause != 0
}

// classify counts a word of the lexicon.
func (s *scanner) classify(class uint16, val float64) {
	if class&wCodeKw != 0 {
		s.codeKw++
	}
	if class&wCodeTopic != 0 {
		s.codeTopic++
	}
	if class&wMathStrong != 0 {
		s.mathStrong++
	}
	if class&wMathWeak != 0 {
		s.mathWeak++
	}
	if class&wSeq != 0 {
		s.seq++
	}
	if class&wImperative != 0 && (s.sentenceStart || s.clauseStart) {
		s.imperatives++
	}
	if class&wReason != 0 {
		s.reasoning++
	}
	if class&wLongForm != 0 {
		s.longForm = true
	}
	if class&wDetail != 0 {
		s.detail = true
	}
	if class&wBrief != 0 {
		s.brief = true
	}
	switch {
	case class&wNumber != 0:
		if s.prevClass&wNumber != 0 && s.numberAge == 1 { // "two thousand"
			val *= s.number
		}
		s.number, s.numberAge = val, 0
	case class&wUnit != 0 && s.numberAge <= 2 && s.number > 0:
		s.output = math.Max(s.output, s.number*val)
	}
}

// finish turns the counts into features.
func (s *scanner) finish(f *Features) {
	codeSignals := s.codeKw + s.codeTopic + s.codeSyms/3
	f.HasCode = s.fences > 0 || codeSignals >= 2
	// Unfenced code has operators too: without maths words, they only
	// count when the text is not code.
	f.HasMath = s.latex > 0 || s.mathStrong > 0 || s.mathWeak >= 2 || s.mathWeak > 0 && s.mathOps > 0 ||
		s.mathOps >= 4 && !f.HasCode
	f.Technical = codeSignals + s.mathStrong + s.mathWeak + s.latex + s.mathOps/2
	f.Steps = s.listItems + s.seq + 2*s.stepByStep + s.stepsWord + max(0, s.questions-1) + max(0, s.imperatives-1)
	f.Reasoning = s.reasoning
	out := s.output
	switch {
	case out > 0:
	case s.brief:
		out = 100
	case s.longForm && s.detail:
		out = 2000
	case s.longForm:
		out = 1000
	case s.detail:
		out = 800
	}
	f.RequestedOutputTokens = int(math.Min(out, 1e6))
}

// ASCII classes, by table: the scanner asks for every byte.
const (
	aLetter = 1 << iota
	aDigit
	aWord // letter, digit or '_'
)

var ascii = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
			t[c] = aLetter | aWord
		case '0' <= c && c <= '9':
			t[c] = aDigit | aWord
		case c == '_':
			t[c] = aWord
		}
	}
	return t
}()

func isLetter(c byte) bool { return ascii[c]&aLetter != 0 }
func isDigit(c byte) bool  { return ascii[c]&aDigit != 0 }
func isAlnum(c byte) bool  { return ascii[c]&(aLetter|aDigit) != 0 }
