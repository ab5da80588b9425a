package guardrail

// The scanner as it was before the single-pass rewrite, kept as the
// reference for TestScanMatchesReference. Identifiers carry a "ref"
// prefix; nothing outside the tests uses this file.

import (
	"net/netip"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"
	"unicode/utf8"
)

// refMatcher finds many words and phrases in one pass: an Aho-Corasick
// automaton compiled to a DFA over an alphabet of byte classes, with ASCII
// case folded, so that scanning costs one table lookup a byte whatever the
// number of words. A match counts only at word boundaries: the bytes
// either side must not be letters, digits, '_' or part of a multibyte
// character.
type refMatcher struct {
	class  [256]uint16
	nclass int
	// delta maps state*nclass + class to the next state, premultiplied
	// by nclass, with the sign bit set when patterns end there.
	delta     []int32
	out       []int32 // index into chains of the patterns ending at state, or -1
	chains    [][]int32
	patterns  []pattern
	refMaxLen int
	space     uint16 // the class of whitespace, 0 if no phrase has a space
}

func refFoldByte(b byte) byte {
	if b >= 'A' && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

var refWordBytes = func() (t [256]bool) {
	for b := 0; b < 256; b++ {
		t[b] = refIsWordByte(byte(b))
	}
	return t
}()

// refIsWordByte reports whether b belongs to a word for boundary checks.
func refIsWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b >= 0x80
}

// normalizePhrase lowercases a word or phrase and collapses its inner
// whitespace to single spaces.

// refNewMatcher compiles the patterns (already normalized). It returns nil
// when there are none.
func refNewMatcher(words []string, pats []pattern) *refMatcher {
	if len(words) == 0 {
		return nil
	}
	m := &refMatcher{patterns: pats}
	// Byte classes: every distinct folded byte in a pattern gets one;
	// class 0 is "any other byte".
	m.nclass = 1
	for _, w := range words {
		for i := 0; i < len(w); i++ {
			b := refFoldByte(w[i])
			if m.class[b] == 0 {
				m.class[b] = uint16(m.nclass)
				m.nclass++
			}
		}
		m.refMaxLen = max(m.refMaxLen, len(w))
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
			c := m.class[refFoldByte(w[i])]
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
			t, ok := nodes[s].next[m.class[refFoldByte(w[i])]]
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
			if refIsWordByte(w[k-1]) {
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
		outs = refDedupe(outs)
		if len(outs) > 0 {
			m.out[s] = int32(len(m.chains))
			m.chains = append(m.chains, outs)
		}
	}
	return m
}

func refDedupe(s []int32) []int32 {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// find calls fn for every pattern occurrence at word boundaries, in order
// of end position.
func (m *refMatcher) find(text string, fn func(p *pattern, start, end int)) {
	nc := int32(m.nclass)
	s := int32(0)
	class := &m.class
	delta := m.delta
	space := uint16(0xffff)
	if m.space != 0 {
		space = m.space
	}
	word := &refWordBytes
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
		if end < len(text) && refIsWordByte(text[end]) {
			continue
		}
		for _, id := range m.chains[m.out[s/nc]] {
			p := &m.patterns[id]
			start := m.start(text, end, p.n)
			if start > 0 && refIsWordByte(text[start-1]) {
				continue
			}
			fn(p, start, end)
		}
	}
}

// start returns where a match of a normalized pattern of n bytes ending
// at end begins, counting each run of whitespace as one byte.
func (m *refMatcher) start(text string, end, n int) int {
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

// Byte classes for the reference scanner's dispatch table.
const (
	refTrDigit = 1 << iota
	refTrAt
	refTrPlusParen
	refTrLetter
	refTrSep
)

// refPiiScanner finds PII in one pass: a table lookup per byte skips
// everything that cannot start a detection, and the cheap shape checks at
// the remaining bytes run before the expensive validators (Luhn, mod 97,
// netip), which run only on candidates of the right shape.
type refPiiScanner struct {
	set  piiSet
	trig [256]uint8
}

func refNewPIIScanner(set piiSet) *refPiiScanner {
	s := &refPiiScanner{set: set}
	if set.has(kEmail) {
		s.trig['@'] = refTrAt
	}
	if set.has(kPhone) || set.has(kCard) || set.has(kSSN) || set.has(kIP) || set.has(kMAC) || set.has(kSIN) {
		for c := '0'; c <= '9'; c++ {
			s.trig[c] = refTrDigit
		}
	}
	if set.has(kPhone) {
		s.trig['+'] = refTrPlusParen
		s.trig['('] = refTrPlusParen
	}
	// IPv6 and MAC addresses are found from their first separator, URLs
	// from "://" or "www.", so that common letters trigger nothing.
	if set.has(kIP) || set.has(kMAC) || set.has(kURL) {
		s.trig[':'] = refTrSep
	}
	if set.has(kMAC) {
		s.trig['-'] = refTrSep
	}
	if set.has(kURL) {
		s.trig['.'] = refTrSep
	}
	if set.has(kAccessKey) {
		s.trig['A'] = refTrLetter
	}
	if set.has(kIBAN) {
		for c := 'A'; c <= 'Z'; c++ {
			s.trig[c] = refTrLetter
		}
	}
	return s
}

// scan calls emit for each detection. Detections may overlap (a phone
// number inside a URL); the caller resolves overlaps.
func (s *refPiiScanner) scan(text string, emit func(k piiKind, start, end int)) {
	n := len(text)
	trig := &s.trig
	for i := 0; i < n; i++ {
		t := trig[text[i]]
		if t == 0 {
			continue
		}
		switch t {
		case refTrAt:
			if st, e, ok := refEmail(text, i); ok {
				emit(kEmail, st, e)
			}
			continue
		case refTrSep:
			s.separator(text, i, emit)
			continue
		}
		if i > 0 && refIsWordByte(text[i-1]) {
			continue // not at a token start
		}
		switch t {
		case refTrDigit:
			s.number(text, i, emit)
		case refTrPlusParen:
			if i+1 < n && (refIsDigit(text[i+1]) || text[i] == '+' && text[i+1] == '(') {
				s.number(text, i, emit)
			}
		case refTrLetter:
			if text[i] == 'A' && s.set.has(kAccessKey) {
				if e, ok := refAccessKey(text, i); ok {
					emit(kAccessKey, i, e)
					continue
				}
			}
			if s.set.has(kIBAN) {
				if e, ok := refIban(text, i); ok {
					emit(kIBAN, i, e)
				}
			}
		}
	}
	if s.set.has(kSecretKey) {
		refSecretKeys(text, emit)
	}
}

// separator looks at a ':', '-' or '.' for the detections found from
// one: an IPv6 or MAC address whose first separator it is, or a URL whose
// "://" or "www." it ends.
func (s *refPiiScanner) separator(text string, i int, emit func(k piiKind, start, end int)) {
	c := text[i]
	if c == '.' {
		if i >= 3 && refHasPrefixFold(text[i-3:], "www") && (i == 3 || !refIsWordByte(text[i-4])) {
			if e, ok := refUrl(text, i-3); ok {
				emit(kURL, i-3, e)
			}
		}
		return
	}
	if c == ':' && s.set.has(kURL) && i+2 < len(text) && text[i+1] == '/' && text[i+2] == '/' {
		for _, scheme := range [...]string{"https", "http"} {
			st := i - len(scheme)
			if st >= 0 && refHasPrefixFold(text[st:], scheme) && (st == 0 || !refIsWordByte(text[st-1])) {
				if e, ok := refUrl(text, st); ok {
					emit(kURL, st, e)
				}
				return
			}
		}
		return
	}
	// The hex token before the separator; it must be the address's first.
	st := i
	for st > 0 && i-st < 4 && refIsHex(text[st-1]) {
		st--
	}
	if st > 0 && (refIsWordByte(text[st-1]) || text[st-1] == ':' || text[st-1] == '-' || text[st-1] == '.') {
		return
	}
	if s.set.has(kMAC) && i-st == 2 {
		if e, ok := refMac(text, st); ok {
			emit(kMAC, st, e)
			return
		}
	}
	if c == ':' && s.set.has(kIP) && (i > st || i+1 < len(text) && text[i+1] == ':') {
		if e, ok := refIpv6(text, st); ok {
			emit(kIP, st, e)
		}
	}
}

func refIsDigit(b byte) bool { return b >= '0' && b <= '9' }
func refIsHex(b byte) bool   { return refIsDigit(b) || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' }
func refIsUpper(b byte) bool { return b >= 'A' && b <= 'Z' }
func refIsAlnum(b byte) bool { return refIsDigit(b) || b >= 'a' && b <= 'z' || refIsUpper(b) }

// refEmail checks for an address around the '@' at at: a local part of
// [A-Za-z0-9._%+-] (at most 64 bytes, not starting with '.') and a domain
// of at least two labels whose last is two or more letters.
func refEmail(text string, at int) (int, int, bool) {
	s := at
	for s > 0 && at-s < 64 {
		c := text[s-1]
		if !(refIsAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-') {
			break
		}
		s--
	}
	if s == at || text[s] == '.' || text[at-1] == '.' || s > 0 && refIsWordByte(text[s-1]) {
		return 0, 0, false
	}
	i := at + 1
	labels, lastStart, end := 0, 0, 0
	for {
		ls := i
		for i < len(text) && (refIsAlnum(text[i]) || text[i] == '-') && i-ls < 63 {
			i++
		}
		if i == ls || text[ls] == '-' || text[i-1] == '-' {
			break
		}
		labels++
		lastStart, end = ls, i
		if i+1 < len(text) && text[i] == '.' && refIsAlnum(text[i+1]) {
			i++
			continue
		}
		break
	}
	if labels < 2 || end-lastStart < 2 || end < len(text) && refIsWordByte(text[end]) {
		return 0, 0, false
	}
	for j := lastStart; j < end; j++ {
		if refIsDigit(text[j]) || text[j] == '-' {
			return 0, 0, false
		}
	}
	return s, end, true
}

// refUrl checks for http://, https:// or www. followed by a host, and takes
// the URL to the next space or quote, less trailing punctuation.
func refUrl(text string, i int) (int, bool) {
	rest := text[i:]
	var host int
	switch {
	case refHasPrefixFold(rest, "https://"):
		host = 8
	case refHasPrefixFold(rest, "http://"):
		host = 7
	case refHasPrefixFold(rest, "www."):
		host = 4
	default:
		return 0, false
	}
	e := host
	parens := 0
	for e < len(rest) && e < 2048 {
		c := rest[e]
		if c <= ' ' || c == '"' || c == '<' || c == '>' || c == '\'' || c == '`' || c == 0x7f {
			break
		}
		if c == '(' {
			parens++
		} else if c == ')' {
			parens--
		}
		e++
	}
	for e > host {
		c := rest[e-1]
		if c == ')' && parens < 0 {
			parens++
			e--
			continue
		}
		if strings.IndexByte(".,;:!?]}", c) >= 0 {
			e--
			continue
		}
		break
	}
	if e == host || !refIsAlnum(rest[host]) {
		return 0, false
	}
	if host == 4 && strings.IndexByte(rest[host:e], '.') < 0 {
		return 0, false
	}
	return i + e, true
}

func refHasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if refFoldByte(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}

// refAccessKey checks for an AWS access key id: AKIA (long-term) or ASIA
// (temporary) and 16 more upper-case letters or digits.
func refAccessKey(text string, i int) (int, bool) {
	if len(text)-i < 20 || !(text[i+1] == 'K' || text[i+1] == 'S') || text[i+2] != 'I' || text[i+3] != 'A' {
		return 0, false
	}
	for j := i + 4; j < i+20; j++ {
		if !refIsUpper(text[j]) && !refIsDigit(text[j]) {
			return 0, false
		}
	}
	if i+20 < len(text) && refIsWordByte(text[i+20]) {
		return 0, false
	}
	return i + 20, true
}

// refSecretKeys finds AWS secret access keys: a 40-byte token of base64
// characters with upper- and lower-case letters and a digit, within 100
// bytes after the word "secret" in any case. Without the hint word a
// random 40-byte token is too often something else (a hash, an id).
func refSecretKeys(text string, emit func(k piiKind, start, end int)) {
	for _, hint := range [...]string{"ecret", "ECRET"} {
		from := 0
		for {
			j := strings.Index(text[from:], hint)
			if j < 0 {
				break
			}
			j += from
			from = j + len(hint)
			if j == 0 || refFoldByte(text[j-1]) != 's' {
				continue
			}
			limit := min(len(text), from+100)
			k := from
			for k < limit {
				for k < limit && !refIsKeyByte(text[k]) {
					k++
				}
				s := k
				var up, low, dig bool
				for k < len(text) && refIsKeyByte(text[k]) {
					c := text[k]
					up, low, dig = up || refIsUpper(c), low || c >= 'a' && c <= 'z', dig || refIsDigit(c)
					k++
				}
				if k-s == 40 && up && low && dig && (k == len(text) || text[k] != '=') {
					emit(kSecretKey, s, k)
					break
				}
			}
		}
	}
}

func refIsKeyByte(b byte) bool { return refIsAlnum(b) || b == '/' || b == '+' }

func refMac(text string, i int) (int, bool) {
	if len(text)-i < 17 {
		return 0, false
	}
	sep := text[i+2]
	for k := 0; k < 6; k++ {
		p := i + 3*k
		if !refIsHex(text[p]) || !refIsHex(text[p+1]) || k < 5 && text[p+2] != sep {
			return 0, false
		}
	}
	if i+17 < len(text) && (refIsWordByte(text[i+17]) || text[i+17] == sep) {
		return 0, false
	}
	return i + 17, true
}

// refIpv6 takes the longest run of hex digits, ':' and '.' at i and accepts
// it when net/netip parses it as an IPv6 address.
func refIpv6(text string, i int) (int, bool) {
	e, colons := i, 0
	for e < len(text) && e-i < 45 && (refIsHex(text[e]) || text[e] == ':' || text[e] == '.') {
		if text[e] == ':' {
			colons++
		}
		e++
	}
	if colons < 2 || e < len(text) && refIsWordByte(text[e]) {
		return 0, false
	}
	for e > i && text[e-1] == '.' {
		e--
	}
	a, err := netip.ParseAddr(text[i:e])
	if err != nil || !a.Is6() {
		return 0, false
	}
	return e, true
}

// refNumSpan is a run of digit groups with separators, as numbers are
// written: "+1 (415) 555-0132", "4111 1111 1111 1111", "078-05-1120".
type refNumSpan struct {
	start, end int
	digits     [24]byte
	nd         int
	groups     [12]uint8
	gend       [12]int  // end offset of each group
	gsep       [12]byte // separator kind before each group (0 for the first)
	ng         int
	// sep is the separator kind between the first two groups: ' ', '-',
	// '.', or '(' when parentheses were involved; mixed holds whether
	// later ones differ.
	sep   byte
	mixed bool
	plus  bool
	paren bool
}

// refReadNumber reads the number span at i (a digit, '+' or '(').
func refReadNumber(text string, i int) (refNumSpan, bool) {
	var ns refNumSpan
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
		for j < len(text) && refIsDigit(text[j]) {
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
		if k == j || k >= len(text) || !refIsDigit(text[k]) {
			break
		}
		j = k
	}
	return ns, true
}

// prefix returns the span of the first k groups, with its separator
// summary recomputed.
func (ns *refNumSpan) prefix(k int) refNumSpan {
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

func (ns *refNumSpan) groupsAre(lens ...uint8) bool {
	if ns.ng != len(lens) {
		return false
	}
	for i, l := range lens {
		if ns.groups[i] != l {
			return false
		}
	}
	return true
}

// number classifies the number span at i, most specific first: IPv4,
// card, SSN, Canadian SIN, phone. When the whole span is none of them,
// its shorter prefixes are tried ("call 415-555-0132 2 times").
func (s *refPiiScanner) number(text string, i int, emit func(k piiKind, start, end int)) {
	whole, ok := refReadNumber(text, i)
	if !ok || whole.nd < 4 {
		return
	}
	if whole.end < len(text) && (refIsWordByte(text[whole.end]) || text[whole.end] == '@') {
		return
	}
	for k := whole.ng; k >= 1; k-- {
		ns := whole.prefix(k)
		if ns.nd < 7 && !(ns.ng == 4 && ns.sep == '.') {
			return
		}
		if kind, ok := s.classify(text, &ns); ok {
			emit(kind, ns.start, ns.end)
			return
		}
	}
}

func (s *refPiiScanner) classify(text string, ns *refNumSpan) (piiKind, bool) {
	if ns.ng == 4 && ns.sep == '.' && !ns.mixed && !ns.plus && !ns.paren {
		if a, err := netip.ParseAddr(text[ns.start:ns.end]); s.set.has(kIP) && err == nil && a.Is4() {
			return kIP, true
		}
		return 0, false
	}
	switch {
	case ns.nd < 7:
	case s.set.has(kCard) && refIsCard(ns):
		return kCard, true
	case s.set.has(kSSN) && refIsSSN(ns):
		return kSSN, true
	case s.set.has(kSIN) && refIsSIN(ns):
		return kSIN, true
	case s.set.has(kPhone) && refIsPhone(ns):
		return kPhone, true
	}
	return 0, false
}

// refIsCard: 13 to 19 digits, written whole or in groups of four (Amex
// 4-6-5, Diners 4-6-4) separated by single spaces or dashes, starting
// with a digit a card network uses (2-6), and passing the Luhn check.
func refIsCard(ns *refNumSpan) bool {
	if ns.plus || ns.paren || ns.mixed || ns.nd < 13 || ns.nd > 19 || ns.sep == '.' {
		return false
	}
	if d := ns.digits[0]; d < '2' || d > '6' {
		return false
	}
	if ns.ng > 1 && !ns.groupsAre(4, 6, 5) && !ns.groupsAre(4, 6, 4) {
		for g := 0; g < ns.ng; g++ {
			if ns.groups[g] != 4 && !(g == ns.ng-1 && ns.groups[g] < 4) {
				return false
			}
		}
	}
	return refLuhn(ns.digits[:ns.nd])
}

func refLuhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// refIsSSN: AAA-GG-SSSS (dashes or spaces) with the Social Security
// Administration's rules: area not 000, 666 or 900-999; group not 00;
// serial not 0000.
func refIsSSN(ns *refNumSpan) bool {
	if ns.plus || ns.paren || ns.mixed || (ns.sep != '-' && ns.sep != ' ') || !ns.groupsAre(3, 2, 4) {
		return false
	}
	d := ns.digits[:9]
	area := string(d[0:3])
	if area == "000" || area == "666" || d[0] == '9' || string(d[3:5]) == "00" || string(d[5:9]) == "0000" {
		return false
	}
	return true
}

// refIsSIN: a Canadian Social Insurance Number, 3-3-3 with spaces or dashes,
// not starting with 0 or 8, passing the Luhn check.
func refIsSIN(ns *refNumSpan) bool {
	if ns.plus || ns.paren || ns.mixed || (ns.sep != '-' && ns.sep != ' ') || !ns.groupsAre(3, 3, 3) {
		return false
	}
	if ns.digits[0] == '0' || ns.digits[0] == '8' {
		return false
	}
	return refLuhn(ns.digits[:9])
}

// refIsPhone accepts the international and common national formats:
//
//	+CC ...            8 to 15 digits after '+' (E.164)
//	00CC ...           international prefix, 10 to 17 digits, grouped
//	(NPA) NXX-XXXX     North American, also NPA-NXX-XXXX, NPA.NXX.XXXX,
//	1-NPA-NXX-XXXX     NPA NXX XXXX (area and exchange start with 2-9)
//	0AA[A] NNNN NNNN   national with a trunk 0, 10 or 11 digits, grouped
//
// A bare run of digits without '+' is not taken for a phone number; it is
// too often an order number or an amount.
func refIsPhone(ns *refNumSpan) bool {
	d := ns.digits[:ns.nd]
	switch {
	case ns.plus:
		return ns.nd >= 8 && ns.nd <= 15 && d[0] != '0'
	case d[0] == '0' && d[1] == '0' && ns.ng >= 2:
		return ns.nd >= 10 && ns.nd <= 17 && d[2] != '0'
	}
	nanp := func(o int) bool { return d[o] >= '2' && d[o+3] >= '2' }
	switch {
	case ns.groupsAre(3, 3, 4):
		return nanp(0) && (ns.paren || !ns.mixed)
	case ns.groupsAre(1, 3, 3, 4):
		return d[0] == '1' && nanp(1) && !ns.mixed
	case d[0] == '0' && ns.ng >= 2 && ns.ng <= 4 && !ns.paren:
		return (ns.nd == 10 || ns.nd == 11) && ns.groups[0] >= 2 && ns.groups[0] <= 5 && d[1] != '0'
	}
	return false
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

// refIban checks for an IBAN at i, written whole or in groups of four
// separated by single spaces: a known country, that country's length,
// and the ISO 13616 mod-97 checksum.
func refIban(text string, i int) (int, bool) {
	if len(text)-i < 15 || !refIsUpper(text[i+1]) || !refIsDigit(text[i+2]) || !refIsDigit(text[i+3]) {
		return 0, false
	}
	want, ok := refIbanLengths[text[i:i+2]]
	if !ok {
		return 0, false
	}
	var buf [34]byte
	n, j, group := 0, i, 0
	for n < want && j < len(text) {
		c := text[j]
		switch {
		case refIsDigit(c) || refIsUpper(c):
			buf[n] = c
			n++
			group++
			j++
		case c == ' ' && group == 4 && j+1 < len(text) && refIsAlnum(text[j+1]):
			group = 0
			j++
		default:
			return 0, false
		}
	}
	if n != want || j < len(text) && refIsWordByte(text[j]) {
		return 0, false
	}
	// Move the first four characters to the end; letters count as 10-35.
	rem := 0
	for k := 0; k < n; k++ {
		c := buf[(k+4)%n]
		if refIsDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A') + 10) % 97
		}
	}
	return j, rem == 1
}

// refRegexScanner runs a custom pattern. Go's regexp costs tens of
// nanoseconds a byte on a pattern without a literal prefix, so where the
// pattern has a required literal and a bounded match length, the text is
// first searched for the literal (at memchr speed) and the pattern runs
// only on windows around its occurrences, widened to word boundaries so
// that \b means what it means in the whole text.
type refRegexScanner struct {
	re  *regexp.Regexp
	lit string // a literal every match contains; "" if none is known
	// refMaxLen is the longest match in bytes, or -1 if unbounded.
	refMaxLen int
}

func refNewRegexScanner(pattern string) (*refRegexScanner, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	rs := &refRegexScanner{re: re, refMaxLen: -1}
	tree, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return rs, nil
	}
	tree = tree.Simplify()
	if refAnchored(tree) {
		return rs, nil
	}
	rs.refMaxLen = refMaxLen(tree)
	rs.lit = refRequiredLiteral(tree)
	return rs, nil
}

// refAnchored reports whether the pattern uses a text or line anchor, which
// a window would change the meaning of.
func refAnchored(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText:
		return true
	}
	for _, s := range re.Sub {
		if refAnchored(s) {
			return true
		}
	}
	return false
}

func refMaxLen(re *syntax.Regexp) int {
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
		return refMaxLen(re.Sub[0])
	case syntax.OpRepeat:
		if re.Max < 0 {
			return -1
		}
		n := refMaxLen(re.Sub[0])
		if n < 0 {
			return -1
		}
		return n * re.Max
	case syntax.OpStar, syntax.OpPlus:
		return -1
	case syntax.OpConcat, syntax.OpAlternate:
		total := 0
		for _, s := range re.Sub {
			n := refMaxLen(s)
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

// refRequiredLiteral returns the longest case-sensitive literal of two or
// more bytes that every match contains, or "".
func refRequiredLiteral(re *syntax.Regexp) string {
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
		return refRequiredLiteral(re.Sub[0])
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
func (rs *refRegexScanner) find(text string, fn func(start, end int)) {
	if rs.lit == "" || rs.refMaxLen < 0 {
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
		for ws > 0 && refIsASCIIWord(text[ws-1]) {
			ws--
		}
		for we < len(text) && refIsASCIIWord(text[we]) {
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
		s, e := max(0, j-rs.refMaxLen), min(len(text), j+len(rs.lit)+rs.refMaxLen)
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

func refIsASCIIWord(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_'
}

// refGuard is the reference scanner for a compiled guard's policy.
type refGuard struct {
	g       *Guard
	words   *refMatcher
	pii     *refPiiScanner
	regexes []*refRegexScanner
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
	r.words = refNewMatcher(words, pats)
	var set piiSet
	for _, e := range p.SensitiveInformation.PIIEntities {
		k, _ := piiKindOf(e.Type)
		set |= 1 << k
	}
	if set != 0 {
		r.pii = refNewPIIScanner(set)
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
		r.words.find(text, func(p *pattern, s, e int) {
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
		r.pii.scan(text, func(k piiKind, s, e int) {
			out = append(out, Finding{Policy: "pii", Type: piiNames[k], Start: s, End: e, Match: text[s:e], Action: g.piiAction[k].For(src, Block)})
		})
	}
	for i, rs := range r.regexes {
		re := &g.Policy.SensitiveInformation.Regexes[i]
		rs.find(text, func(s, e int) {
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
