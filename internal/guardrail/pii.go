package guardrail

import (
	"net/netip"
	"strings"
)

// PII entity types Junction detects, in Bedrock's vocabulary.
const (
	PIIEmail        = "EMAIL"
	PIIPhone        = "PHONE"
	PIICard         = "CREDIT_DEBIT_CARD_NUMBER"
	PIISSN          = "US_SOCIAL_SECURITY_NUMBER"
	PIIIBAN         = "INTERNATIONAL_BANK_ACCOUNT_NUMBER"
	PIIIPAddress    = "IP_ADDRESS"
	PIIURL          = "URL"
	PIIAWSAccessKey = "AWS_ACCESS_KEY"
	PIIAWSSecretKey = "AWS_SECRET_KEY"
	PIIMACAddress   = "MAC_ADDRESS"
	PIICASIN        = "CA_SOCIAL_INSURANCE_NUMBER"
)

// piiKind is a detector's index; piiSet is a set of them.
type piiKind uint8

const (
	kEmail piiKind = iota
	kPhone
	kCard
	kSSN
	kIBAN
	kIP
	kURL
	kAccessKey
	kSecretKey
	kMAC
	kSIN
	numPII
)

var piiNames = [numPII]string{PIIEmail, PIIPhone, PIICard, PIISSN, PIIIBAN, PIIIPAddress, PIIURL, PIIAWSAccessKey, PIIAWSSecretKey, PIIMACAddress, PIICASIN}

// PIITypes returns the PII entity types Junction detects.
func PIITypes() []string { return append([]string(nil), piiNames[:]...) }

func piiKindOf(name string) (piiKind, bool) {
	for i, n := range piiNames {
		if n == name {
			return piiKind(i), true
		}
	}
	return 0, false
}

type piiSet uint32

func (s piiSet) has(k piiKind) bool { return s&(1<<k) != 0 }

// Byte classes for the scanner's dispatch table.
const (
	trDigit = 1 << iota
	trAt
	trPlusParen
	trLetter // a letter some detector starts on
	trSep    // a separator some detector is found from
)

// piiScanner finds PII in one pass: a table lookup per byte skips
// everything that cannot start a detection, and the cheap shape checks at
// the remaining bytes run before the expensive validators (Luhn, mod 97,
// netip), which run only on candidates of the right shape.
type piiScanner struct {
	set  piiSet
	trig [256]uint8
}

func newPIIScanner(set piiSet) *piiScanner {
	s := &piiScanner{set: set}
	if set.has(kEmail) {
		s.trig['@'] = trAt
	}
	if set.has(kPhone) || set.has(kCard) || set.has(kSSN) || set.has(kIP) || set.has(kMAC) || set.has(kSIN) {
		for c := '0'; c <= '9'; c++ {
			s.trig[c] = trDigit
		}
	}
	if set.has(kPhone) {
		s.trig['+'] = trPlusParen
		s.trig['('] = trPlusParen
	}
	// IPv6 and MAC addresses are found from their first separator, URLs
	// from "://" or "www.", so that common letters trigger nothing.
	if set.has(kIP) || set.has(kMAC) || set.has(kURL) {
		s.trig[':'] = trSep
	}
	if set.has(kMAC) {
		s.trig['-'] = trSep
	}
	if set.has(kURL) {
		s.trig['.'] = trSep
	}
	if set.has(kAccessKey) {
		s.trig['A'] = trLetter
	}
	if set.has(kIBAN) {
		for c := 'A'; c <= 'Z'; c++ {
			s.trig[c] = trLetter
		}
	}
	return s
}

// trigger looks for the detections found from byte i, whose trigger
// class is t; detections may overlap (a phone number inside a URL), and
// the caller resolves overlaps. Guard.find calls it in its single pass
// with the word automaton. It does nothing at a digit or letter inside a word, so a
// caller may skip the rest of a word. It returns what number returns, or
// 0: the caller need not call it at a digit, '+' or '(' before there.
func (s *piiScanner) trigger(text string, i int, t uint8, emit func(k piiKind, start, end int)) int {
	switch t {
	case trAt:
		if st, e, ok := email(text, i); ok {
			emit(kEmail, st, e)
		}
		return 0
	case trSep:
		s.separator(text, i, emit)
		return 0
	}
	if i > 0 && isWordByte(text[i-1]) {
		return 0 // not at a token start
	}
	switch t {
	case trDigit:
		return s.number(text, i, emit)
	case trPlusParen:
		if i+1 < len(text) && (isDigit(text[i+1]) || text[i] == '+' && text[i+1] == '(') {
			return s.number(text, i, emit)
		}
	case trLetter:
		if text[i] == 'A' && s.set.has(kAccessKey) {
			if e, ok := accessKey(text, i); ok {
				emit(kAccessKey, i, e)
				return 0
			}
		}
		if s.set.has(kIBAN) {
			if e, ok := iban(text, i); ok {
				emit(kIBAN, i, e)
			}
		}
	}
	return 0
}

// finish runs the detectors that search the whole text themselves, after
// the byte-by-byte pass.
func (s *piiScanner) finish(text string, emit func(k piiKind, start, end int)) {
	if s.set.has(kSecretKey) {
		secretKeys(text, emit)
	}
}

// separator looks at a ':', '-' or '.' for the detections found from
// one: an IPv6 or MAC address whose first separator it is, or a URL whose
// "://" or "www." it ends.
func (s *piiScanner) separator(text string, i int, emit func(k piiKind, start, end int)) {
	c := text[i]
	if c == '.' {
		if i >= 3 && hasPrefixFold(text[i-3:], "www") && (i == 3 || !isWordByte(text[i-4])) {
			if e, ok := url(text, i-3); ok {
				emit(kURL, i-3, e)
			}
		}
		return
	}
	if c == ':' && s.set.has(kURL) && i+2 < len(text) && text[i+1] == '/' && text[i+2] == '/' {
		for _, scheme := range [...]string{"https", "http"} {
			st := i - len(scheme)
			if st >= 0 && hasPrefixFold(text[st:], scheme) && (st == 0 || !isWordByte(text[st-1])) {
				if e, ok := url(text, st); ok {
					emit(kURL, st, e)
				}
				return
			}
		}
		return
	}
	// The hex token before the separator; it must be the address's first.
	st := i
	for st > 0 && i-st < 4 && isHex(text[st-1]) {
		st--
	}
	if st > 0 && (isWordByte(text[st-1]) || text[st-1] == ':' || text[st-1] == '-' || text[st-1] == '.') {
		return
	}
	if s.set.has(kMAC) && i-st == 2 {
		if e, ok := mac(text, st); ok {
			emit(kMAC, st, e)
			return
		}
	}
	if c == ':' && s.set.has(kIP) && (i > st || i+1 < len(text) && text[i+1] == ':') {
		if e, ok := ipv6(text, st); ok {
			emit(kIP, st, e)
		}
	}
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
func isHex(b byte) bool   { return isDigit(b) || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' }
func isUpper(b byte) bool { return b >= 'A' && b <= 'Z' }
func isAlnum(b byte) bool { return isDigit(b) || b >= 'a' && b <= 'z' || isUpper(b) }

// email checks for an address around the '@' at at: a local part of
// [A-Za-z0-9._%+-] (at most 64 bytes, not starting with '.') and a domain
// of at least two labels whose last is two or more letters.
func email(text string, at int) (int, int, bool) {
	s := at
	for s > 0 && at-s < 64 {
		c := text[s-1]
		if !(isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-') {
			break
		}
		s--
	}
	if s == at || text[s] == '.' || text[at-1] == '.' || s > 0 && isWordByte(text[s-1]) {
		return 0, 0, false
	}
	i := at + 1
	labels, lastStart, end := 0, 0, 0
	for {
		ls := i
		for i < len(text) && (isAlnum(text[i]) || text[i] == '-') && i-ls < 63 {
			i++
		}
		if i == ls || text[ls] == '-' || text[i-1] == '-' {
			break
		}
		labels++
		lastStart, end = ls, i
		if i+1 < len(text) && text[i] == '.' && isAlnum(text[i+1]) {
			i++
			continue
		}
		break
	}
	if labels < 2 || end-lastStart < 2 || end < len(text) && isWordByte(text[end]) {
		return 0, 0, false
	}
	for j := lastStart; j < end; j++ {
		if isDigit(text[j]) || text[j] == '-' {
			return 0, 0, false
		}
	}
	return s, end, true
}

// url checks for http://, https:// or www. followed by a host, and takes
// the URL to the next space or quote, less trailing punctuation.
func url(text string, i int) (int, bool) {
	rest := text[i:]
	var host int
	switch {
	case hasPrefixFold(rest, "https://"):
		host = 8
	case hasPrefixFold(rest, "http://"):
		host = 7
	case hasPrefixFold(rest, "www."):
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
	if e == host || !isAlnum(rest[host]) {
		return 0, false
	}
	if host == 4 && strings.IndexByte(rest[host:e], '.') < 0 {
		return 0, false
	}
	return i + e, true
}

func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if foldByte(s[i]) != prefix[i] {
			return false
		}
	}
	return true
}

// accessKey checks for an AWS access key id: AKIA (long-term) or ASIA
// (temporary) and 16 more upper-case letters or digits.
func accessKey(text string, i int) (int, bool) {
	if len(text)-i < 20 || !(text[i+1] == 'K' || text[i+1] == 'S') || text[i+2] != 'I' || text[i+3] != 'A' {
		return 0, false
	}
	for j := i + 4; j < i+20; j++ {
		if !isUpper(text[j]) && !isDigit(text[j]) {
			return 0, false
		}
	}
	if i+20 < len(text) && isWordByte(text[i+20]) {
		return 0, false
	}
	return i + 20, true
}

// secretKeys finds AWS secret access keys: a 40-byte token of base64
// characters with upper- and lower-case letters and a digit, within 100
// bytes after the word "secret" in any case. Without the hint word a
// random 40-byte token is too often something else (a hash, an id).
func secretKeys(text string, emit func(k piiKind, start, end int)) {
	for _, hint := range [...]string{"ecret", "ECRET"} {
		from := 0
		for {
			j := strings.Index(text[from:], hint)
			if j < 0 {
				break
			}
			j += from
			from = j + len(hint)
			if j == 0 || foldByte(text[j-1]) != 's' {
				continue
			}
			limit := min(len(text), from+100)
			k := from
			for k < limit {
				for k < limit && !isKeyByte(text[k]) {
					k++
				}
				s := k
				var up, low, dig bool
				for k < len(text) && isKeyByte(text[k]) {
					c := text[k]
					up, low, dig = up || isUpper(c), low || c >= 'a' && c <= 'z', dig || isDigit(c)
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

func isKeyByte(b byte) bool { return isAlnum(b) || b == '/' || b == '+' }

func mac(text string, i int) (int, bool) {
	if len(text)-i < 17 {
		return 0, false
	}
	sep := text[i+2]
	for k := 0; k < 6; k++ {
		p := i + 3*k
		if !isHex(text[p]) || !isHex(text[p+1]) || k < 5 && text[p+2] != sep {
			return 0, false
		}
	}
	if i+17 < len(text) && (isWordByte(text[i+17]) || text[i+17] == sep) {
		return 0, false
	}
	return i + 17, true
}

// ipv6 takes the longest run of hex digits, ':' and '.' at i and accepts
// it when net/netip parses it as an IPv6 address.
func ipv6(text string, i int) (int, bool) {
	e, colons := i, 0
	for e < len(text) && e-i < 45 && (isHex(text[e]) || text[e] == ':' || text[e] == '.') {
		if text[e] == ':' {
			colons++
		}
		e++
	}
	if colons < 2 || e < len(text) && isWordByte(text[e]) {
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

// numSpan is a run of digit groups with separators, as numbers are
// written: "+1 (415) 555-0132", "4111 1111 1111 1111", "078-05-1120".
type numSpan struct {
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
	// lead is whether the span starts with '(' (after any '+').
	lead bool
	// capped is whether reading stopped at the size of digits or groups.
	capped bool
}

// readNumber reads the number span at i (a digit, '+' or '(') into ns,
// which must be zero.
func readNumber(text string, i int, ns *numSpan) bool {
	ns.start = i
	j := i
	if text[j] == '+' {
		ns.plus = true
		j++
	}
	if j < len(text) && text[j] == '(' {
		ns.paren, ns.lead = true, true
		j++
	}
	var kind byte
	for {
		gs := j
		for j < len(text) && isDigit(text[j]) {
			if ns.nd == len(ns.digits) {
				ns.capped = true
				return ns.ng > 0
			}
			ns.digits[ns.nd] = text[j]
			ns.nd++
			j++
		}
		if j == gs {
			return ns.ng > 0
		}
		if ns.ng == len(ns.groups) {
			ns.capped = true
			return true
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
	return true
}

// truncate cuts the span to its first k groups (k no more than it has),
// with its separator summary recomputed.
func (ns *numSpan) truncate(k int) {
	ns.ng, ns.end = k, ns.gend[k-1]
	ns.nd = 0
	for g := 0; g < k; g++ {
		ns.nd += int(ns.groups[g])
	}
	ns.sep, ns.mixed = 0, false
	if k > 1 {
		ns.sep = ns.gsep[1]
		for g := 2; g < k; g++ {
			if ns.gsep[g] != ns.sep {
				ns.mixed = true
			}
		}
	}
	ns.paren = ns.lead
	for g := 1; g < k; g++ {
		if ns.gsep[g] == '(' {
			ns.paren = true
		}
	}
}

// tooFewDigits reports whether the number span at i cannot be
// classified, counting generously (every digit up to the first byte that
// cannot be in a span): fewer than four digits, or fewer than seven and
// no '.' for an IPv4 address. When it can't, it also returns where the
// generous count stopped: a span starting at a later digit or '(' before
// there counts a part of the same bytes, so it cannot be classified either.
func tooFewDigits(text string, i int) (bool, int) {
	n, dot := 0, false
	for j := i; j < len(text); j++ {
		switch c := text[j]; {
		case c >= '0' && c <= '9':
			if n++; n == 7 || n >= 4 && dot {
				return false, 0
			}
		case c == '.':
			if dot = true; n >= 4 {
				return false, 0
			}
		case c == ' ' || c == '-' || c == '(' || c == ')' || c == '+' && j == i:
		default:
			return n < 4 || !dot, j
		}
	}
	return n < 4 || !dot, len(text)
}

func (ns *numSpan) groupsAre(lens ...uint8) bool {
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

// number classifies the number span at i, and the spans that start
// inside it where the main pass would call number again: at each later
// group, and at a '(' just before one. The span is read once; a later
// span is the same groups from there on. It returns the position before
// which the main pass need not call number (at a digit, '+' or '('), or 0.
func (s *piiScanner) number(text string, i int, emit func(k piiKind, start, end int)) int {
	if few, stop := tooFewDigits(text, i); few {
		return stop
	}
	var ns numSpan
	if !readNumber(text, i, &ns) {
		return 0
	}
	if ns.capped {
		// A later span may read further than this one: leave it to the
		// main pass.
		if ns.nd >= 4 {
			s.classifySpan(text, &ns, emit)
		}
		return 0
	}
	if ns.end < len(text) && (isWordByte(text[ns.end]) || text[ns.end] == '@') {
		return ns.end // so does every span inside it
	}
	full := ns
	if ns.nd >= 4 {
		s.classifySpan(text, &ns, emit)
	}
	before := 0 // digits before group k
	for k := 0; k < full.ng; k++ {
		gs := full.gend[k] - int(full.groups[k])
		if gs-1 > i && text[gs-1] == '(' && !isWordByte(text[gs-2]) {
			s.numberFrom(text, &full, k, before, gs-1, emit)
		}
		if gs > i {
			s.numberFrom(text, &full, k, before, gs, emit)
		}
		before += int(full.groups[k])
	}
	return full.end
}

// numberFrom classifies the span that starts at p ('(' or the first digit
// of group k of full, which has before digits before that group) as number
// would from p. (tooFewDigits is only a quick rejection: a span it
// rejects has too few digits for classifySpan to take it.)
func (s *piiScanner) numberFrom(text string, full *numSpan, k, before, p int, emit func(k piiKind, start, end int)) {
	nd := full.nd - before
	if nd < 4 || nd < 7 && (full.ng-k != 4 || full.gsep[k+1] != '.') {
		return // classifySpan's first check
	}
	var ns numSpan
	ns.start, ns.end = p, full.end
	ns.lead = text[p] == '('
	ns.nd = nd
	copy(ns.digits[:], full.digits[before:full.nd])
	ns.ng = full.ng - k
	copy(ns.groups[:], full.groups[k:full.ng])
	copy(ns.gend[:], full.gend[k:full.ng])
	copy(ns.gsep[:], full.gsep[k:full.ng])
	ns.gsep[0] = 0
	s.classifySpan(text, &ns, emit)
}

// classifySpan classifies the span read into ns, most specific first:
// IPv4, card, SSN, Canadian SIN, phone. When the whole span is none of
// them, its shorter prefixes are tried ("call 415-555-0132 2 times").
func (s *piiScanner) classifySpan(text string, ns *numSpan, emit func(k piiKind, start, end int)) {
	if ns.end < len(text) && (isWordByte(text[ns.end]) || text[ns.end] == '@') {
		return
	}
	for k := ns.ng; k >= 1; k-- {
		ns.truncate(k)
		if ns.nd < 7 && !(ns.ng == 4 && ns.sep == '.') {
			return
		}
		if kind, ok := s.classify(text, ns); ok {
			emit(kind, ns.start, ns.end)
			return
		}
	}
}

func (s *piiScanner) classify(text string, ns *numSpan) (piiKind, bool) {
	if ns.ng == 4 && ns.sep == '.' && !ns.mixed && !ns.plus && !ns.paren {
		if a, err := netip.ParseAddr(text[ns.start:ns.end]); s.set.has(kIP) && err == nil && a.Is4() {
			return kIP, true
		}
		return 0, false
	}
	switch {
	case ns.nd < 7:
	case s.set.has(kCard) && isCard(ns):
		return kCard, true
	case s.set.has(kSSN) && isSSN(ns):
		return kSSN, true
	case s.set.has(kSIN) && isSIN(ns):
		return kSIN, true
	case s.set.has(kPhone) && isPhone(ns):
		return kPhone, true
	}
	return 0, false
}

// isCard: 13 to 19 digits, written whole or in groups of four (Amex
// 4-6-5, Diners 4-6-4) separated by single spaces or dashes, starting
// with a digit a card network uses (2-6), and passing the Luhn check.
func isCard(ns *numSpan) bool {
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
	return luhn(ns.digits[:ns.nd])
}

func luhn(d []byte) bool {
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

// isSSN: AAA-GG-SSSS (dashes or spaces) with the Social Security
// Administration's rules: area not 000, 666 or 900-999; group not 00;
// serial not 0000.
func isSSN(ns *numSpan) bool {
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

// isSIN: a Canadian Social Insurance Number, 3-3-3 with spaces or dashes,
// not starting with 0 or 8, passing the Luhn check.
func isSIN(ns *numSpan) bool {
	if ns.plus || ns.paren || ns.mixed || (ns.sep != '-' && ns.sep != ' ') || !ns.groupsAre(3, 3, 3) {
		return false
	}
	if ns.digits[0] == '0' || ns.digits[0] == '8' {
		return false
	}
	return luhn(ns.digits[:9])
}

// isPhone accepts the international and common national formats:
//
//	+CC ...            8 to 15 digits after '+' (E.164)
//	00CC ...           international prefix, 10 to 17 digits, grouped
//	(NPA) NXX-XXXX     North American, also NPA-NXX-XXXX, NPA.NXX.XXXX,
//	1-NPA-NXX-XXXX     NPA NXX XXXX (area and exchange start with 2-9)
//	0AA[A] NNNN NNNN   national with a trunk 0, 10 or 11 digits, grouped
//
// A bare run of digits without '+' is not taken for a phone number; it is
// too often an order number or an amount.
func isPhone(ns *numSpan) bool {
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

// ibanLengths are the IBAN lengths of the countries that use one (SWIFT
// IBAN registry); an IBAN of another country or length is not taken.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
	"CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
	"FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
	"HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21,
	"LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
	"NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
	"SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}

// iban checks for an IBAN at i, written whole or in groups of four
// separated by single spaces: a known country, that country's length,
// and the ISO 13616 mod-97 checksum.
func iban(text string, i int) (int, bool) {
	if len(text)-i < 15 || !isUpper(text[i+1]) || !isDigit(text[i+2]) || !isDigit(text[i+3]) {
		return 0, false
	}
	want, ok := ibanLengths[text[i:i+2]]
	if !ok {
		return 0, false
	}
	var buf [34]byte
	n, j, group := 0, i, 0
	for n < want && j < len(text) {
		c := text[j]
		switch {
		case isDigit(c) || isUpper(c):
			buf[n] = c
			n++
			group++
			j++
		case c == ' ' && group == 4 && j+1 < len(text) && isAlnum(text[j+1]):
			group = 0
			j++
		default:
			return 0, false
		}
	}
	if n != want || j < len(text) && isWordByte(text[j]) {
		return 0, false
	}
	// Move the first four characters to the end; letters count as 10-35.
	rem := 0
	for k := 0; k < n; k++ {
		c := buf[(k+4)%n]
		if isDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A') + 10) % 97
		}
	}
	return j, rem == 1
}
