package guardrail

// The scan as it was before the single-pass rewrite, kept as the reference
// for TestScanMatchesReference: one pass per detector (the word automaton,
// the PII scanner, each regex), the old number reader and the old regex
// search, merged afterwards. The detectors' building blocks (the automaton,
// the PII recognisers and classifiers, the regex analysis) are the
// production ones; what the test checks is that the fused single pass finds
// exactly what the separate passes find. Identifiers carry a "ref" prefix;
// nothing outside the tests uses this file.

import (
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"
)

// refFind calls fn for every pattern occurrence at word boundaries, in order
// of end position.
func (m *matcher) refFind(text string, fn func(p *pattern, start, end int)) {
	nc := int32(m.nclass)
	s := int32(0)
	class := &m.class
	delta := m.delta
	space := uint16(0xffff)
	if m.space != 0 {
		space = m.space
	}
	word := &wordBytes
	for i := 0; i < len(text); i++ {
		if s == 0 && i > 0 && word[text[i-1]] {
			// At the root inside a word: no match can start before the
			// next word.
			for i < len(text) && word[text[i]] {
				i++
			}
			if i == len(text) {
				break
			}
		}
		c := class[text[i]]
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
			fn(p, start, end)
		}
	}
}

// Byte classes for the reference scanner's dispatch table.
const (
	refTrDigit = 1 << iota
	refTrAt
	refTrPlusParen
	refTrLetter
	refTrSep
)

// refScan calls emit for each detection. Detections may overlap (a phone
// number inside a URL); the caller resolves overlaps.
func (s *piiScanner) refScan(text string, emit func(k piiKind, start, end int)) {
	n := len(text)
	trig := &s.trig
	for i := 0; i < n; i++ {
		t := trig[text[i]]
		if t == 0 {
			continue
		}
		switch t {
		case refTrAt:
			if st, e, ok := email(text, i); ok {
				emit(kEmail, st, e)
			}
			continue
		case refTrSep:
			s.separator(text, i, emit)
			continue
		}
		if i > 0 && isWordByte(text[i-1]) {
			continue // not at a token start
		}
		switch t {
		case refTrDigit:
			s.refNumber(text, i, emit)
		case refTrPlusParen:
			if i+1 < n && (isDigit(text[i+1]) || text[i] == '+' && text[i+1] == '(') {
				s.refNumber(text, i, emit)
			}
		case refTrLetter:
			if text[i] == 'A' && s.set.has(kAccessKey) {
				if e, ok := accessKey(text, i); ok {
					emit(kAccessKey, i, e)
					continue
				}
			}
			if s.set.has(kIBAN) {
				if e, ok := iban(text, i); ok {
					emit(kIBAN, i, e)
				}
			}
		}
	}
	if s.set.has(kSecretKey) {
		secretKeys(text, emit)
	}
}

// refReadNumber reads the number span at i (a digit, '+' or '(').
func refReadNumber(text string, i int) (numSpan, bool) {
	var ns numSpan
	ns.start = i
	j := i
	if text[j] == '+' {
		ns.plus = true
		j++
	}
	if j < len(text) && text[j] == '(' {
		ns.paren = true
		j++
	}
	var kind byte
	for {
		gs := j
		for j < len(text) && isDigit(text[j]) {
			if ns.nd == len(ns.digits) {
				return ns, ns.ng > 0
			}
			ns.digits[ns.nd] = text[j]
			ns.nd++
			j++
		}
		if j == gs || ns.ng == len(ns.groups) {
			return ns, ns.ng > 0
		}
		ns.groups[ns.ng] = uint8(j - gs)
		ns.gend[ns.ng] = j
		ns.gsep[ns.ng] = kind
		ns.ng++
		ns.end = j
		// Separator: up to three of " -.()" then a digit.
		k := j
		kind = 0
	sep:
		for k < len(text) && k-j < 3 {
			switch c := text[k]; c {
			case ' ', '-', '.':
				if kind == 0 || kind == ' ' {
					kind = c
				}
			case '(', ')':
				kind = '('
			default:
				break sep
			}
			k++
		}
		if k == j || k >= len(text) || !isDigit(text[k]) {
			break
		}
		j = k
	}
	return ns, true
}

// prefix returns the span of the first k groups, with its separator
// summary recomputed.
func (ns *numSpan) refPrefix(k int) numSpan {
	p := *ns
	p.ng, p.end = k, ns.gend[k-1]
	p.nd = 0
	for g := 0; g < k; g++ {
		p.nd += int(ns.groups[g])
	}
	p.sep, p.mixed = 0, false
	if k > 1 {
		p.sep = ns.gsep[1]
		for g := 2; g < k; g++ {
			if ns.gsep[g] != p.sep {
				p.mixed = true
			}
		}
	}
	p.paren = ns.paren
	for g := 1; g < k; g++ {
		if ns.gsep[g] == '(' {
			p.paren = true
		}
	}
	return p
}

// number classifies the number span at i, most specific first: IPv4,
// card, SSN, Canadian SIN, phone. When the whole span is none of them,
// its shorter prefixes are tried ("call 415-555-0132 2 times").
func (s *piiScanner) refNumber(text string, i int, emit func(k piiKind, start, end int)) {
	whole, ok := refReadNumber(text, i)
	if !ok || whole.nd < 4 {
		return
	}
	if whole.end < len(text) && (isWordByte(text[whole.end]) || text[whole.end] == '@') {
		return
	}
	for k := whole.ng; k >= 1; k-- {
		ns := whole.refPrefix(k)
		if ns.nd < 7 && !(ns.ng == 4 && ns.sep == '.') {
			return
		}
		if kind, ok := s.classify(text, &ns); ok {
			emit(kind, ns.start, ns.end)
			return
		}
	}
}

// refIbanLengths are the IBAN lengths of the countries that use one (SWIFT
// IBAN registry); an IBAN of another country or length is not taken.
var refIbanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
	"CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
	"FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
	"HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21,
	"LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
	"NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
	"SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}

func refNewRegexScanner(pattern string) (*regexScanner, error) {
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

// find calls fn for each match, in order.
func (rs *regexScanner) refFind(text string, fn func(start, end int)) {
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

// refGuard is the reference scanner for a compiled guard's policy.
type refGuard struct {
	g       *Guard
	words   *matcher
	pii     *piiScanner
	regexes []*regexScanner
}

func newRefGuard(g *Guard) (*refGuard, error) {
	p := g.Policy
	r := &refGuard{g: g}
	var words []string
	var pats []pattern
	addWord := func(w string, kind patternKind, idx int) {
		w = normalizePhrase(w)
		if w == "" {
			return
		}
		words = append(words, w)
		pats = append(pats, pattern{kind: kind, index: idx, n: len(w)})
	}
	for i, w := range p.WordPolicy.Words {
		addWord(w.Text, kindCustomWord, i)
	}
	for i := range p.WordPolicy.ManagedWordLists {
		for _, w := range Profanity() {
			addWord(w, kindManaged, i)
		}
	}
	for i, t := range p.TopicPolicy.Topics {
		for _, e := range append(append([]string(nil), t.Examples...), t.Phrases...) {
			addWord(strings.TrimRight(e, ".?!"), kindTopic, i)
		}
	}
	r.words = newMatcher(words, pats)
	var set piiSet
	for _, e := range p.SensitiveInformation.PIIEntities {
		k, _ := piiKindOf(e.Type)
		set |= 1 << k
	}
	if set != 0 {
		r.pii = newPIIScanner(set)
	}
	for _, re := range p.SensitiveInformation.Regexes {
		rs, err := refNewRegexScanner(re.Pattern)
		if err != nil {
			return nil, err
		}
		r.regexes = append(r.regexes, rs)
	}
	return r, nil
}

// scan is Guard.scan as it was.
func (r *refGuard) scan(text string, src Source, out []Finding) []Finding {
	g := r.g
	if r.words != nil {
		r.words.refFind(text, func(p *pattern, s, e int) {
			f := Finding{Start: s, End: e, Match: text[s:e]}
			switch p.kind {
			case kindCustomWord:
				f.Policy, f.Action = "word", g.Policy.WordPolicy.Words[p.index].For(src, Block)
			case kindManaged:
				f.Policy, f.Type = "managedWord", ManagedProfanity
				f.Action = g.Policy.WordPolicy.ManagedWordLists[p.index].For(src, Block)
			case kindTopic:
				t := &g.Policy.TopicPolicy.Topics[p.index]
				f.Policy, f.Name, f.Action = "topic", t.Name, t.For(src, Block)
			}
			out = append(out, f)
		})
	}
	first := len(out)
	if r.pii != nil {
		r.pii.refScan(text, func(k piiKind, s, e int) {
			out = append(out, Finding{Policy: "pii", Type: piiNames[k], Start: s, End: e, Match: text[s:e], Action: g.piiAction[k].For(src, Block)})
		})
	}
	for i, rs := range r.regexes {
		re := &g.Policy.SensitiveInformation.Regexes[i]
		rs.refFind(text, func(s, e int) {
			out = append(out, Finding{Policy: "regex", Name: re.Name, Start: s, End: e, Match: text[s:e], Action: re.For(src, Block)})
		})
	}
	return refResolve(out, first)
}

func refResolve(out []Finding, first int) []Finding {
	si := out[first:]
	if len(si) < 2 {
		return out
	}
	sort.SliceStable(si, func(i, j int) bool {
		if si[i].Start != si[j].Start {
			return si[i].Start < si[j].Start
		}
		return si[i].End > si[j].End
	})
	kept, end := si[:0], -1
	for _, f := range si {
		if f.Start >= end {
			kept = append(kept, f)
			end = f.End
		}
	}
	return out[:first+len(kept)]
}
