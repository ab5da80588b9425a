package openaiwire

import (
	"encoding/json"
	"unicode/utf8"
)

// scan is a cursor over a JSON document for the hand-written decoders
// (scanwire.go) that fill the wire structs without reflection. It checks
// the syntax of everything it reads or skips exactly as encoding/json
// does, so that a document it accepts is one json.Unmarshal accepts too.
// It gives up (ok false) on anything it does not handle the same way —
// escaped or non-ASCII member keys, keys that differ from a field's name
// only in case, repeated fields, deep nesting — and the caller then falls
// back to encoding/json, which has the last word.
type scan struct {
	b []byte
	i int
}

// maxDepth bounds the nesting a skipped value may have; deeper documents
// take encoding/json.
const maxDepth = 64

func (s *scan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, 0 at the end.
func (s *scan) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// eat consumes c if it comes next.
func (s *scan) eat(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (s *scan) end() bool { return s.peek() == 0 && s.i == len(s.b) }

// str reads a string literal and returns it with its quotes. plain is set
// when its inside is its value as it stands: no escapes, valid UTF-8.
func (s *scan) str() (lit []byte, plain, ok bool) {
	if s.peek() != '"' {
		return nil, false, false
	}
	start := s.i
	plain = true
	ascii := true
	for j := start + 1; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			s.i = j + 1
			lit = s.b[start:s.i]
			if !ascii && plain {
				plain = utf8.Valid(lit)
			}
			return lit, plain, true
		case c == '\\':
			plain = false
			if j+1 >= len(s.b) {
				return nil, false, false
			}
			switch s.b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if j+5 >= len(s.b) || !isHex(s.b[j+2]) || !isHex(s.b[j+3]) || !isHex(s.b[j+4]) || !isHex(s.b[j+5]) {
					return nil, false, false
				}
				j += 5
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false, false
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// unquote is the value of a string literal str returned, as encoding/json
// decodes it (invalid UTF-8 and lone surrogates become U+FFFD).
func unquote(lit []byte, plain bool) string {
	if plain {
		return string(lit[1 : len(lit)-1])
	}
	var v string
	if json.Unmarshal(lit, &v) != nil {
		panic("openaiwire: a checked string literal did not decode") // str checked its syntax
	}
	return v
}

// skip reads any value, checking its syntax, and returns its bytes.
func (s *scan) skip() ([]byte, bool) {
	s.ws()
	start := s.i
	ok := s.value(0)
	return s.b[start:s.i], ok
}

// skipped reads any value, checking its syntax.
func (s *scan) skipped() bool { return s.value(0) }

func (s *scan) value(depth int) bool {
	if depth > maxDepth {
		return false
	}
	switch s.peek() {
	case '"':
		_, _, ok := s.str()
		return ok
	case '{':
		return s.object(nil, func(int) bool { return s.value(depth + 1) })
	case '[':
		return s.array(func() bool { return s.value(depth + 1) })
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	n := numberLen(s.b[s.i:])
	s.i += n
	return n > 0
}

// object reads an object, calling member for each of its members with the
// cursor on the value, which member must read: with the index of the
// member's field among names, or -1 for a member of no field (skip reads
// it). A key that matches a field only ignoring case, or a field given
// twice, fails (see fields).
func (s *scan) object(names []string, member func(field int) bool) bool {
	if !s.eat('{') {
		return false
	}
	f := fields{names: names}
	for first := true; ; first = false {
		key, end, ok := s.key(first)
		if !ok {
			return false
		}
		if end {
			return true
		}
		i, ok := f.match(key)
		if !ok || !member(i) {
			return false
		}
	}
}

// array reads an array, calling elem with the cursor on each element,
// which elem must read.
func (s *scan) array(elem func() bool) bool {
	if !s.eat('[') {
		return false
	}
	for first := true; ; first = false {
		end, ok := s.elem(first)
		if !ok {
			return false
		}
		if end {
			return true
		}
		if !elem() {
			return false
		}
	}
}

func (s *scan) literal(lit string) bool {
	if n := literalLen(s.b[s.i:], lit); n > 0 {
		s.i += n
		return true
	}
	return false
}

// null consumes a null if one comes next.
func (s *scan) null() bool { return s.peek() == 'n' && s.literal("null") }

// key reads the next member key of an object whose "{" has been read: at
// first right after it, else after a value, where a comma must come
// first. end is set at the closing "}". Keys that are not printable ASCII
// without escapes fail: encoding/json folds some of them onto field
// names.
func (s *scan) key(first bool) (key []byte, end, ok bool) {
	c := s.peek()
	if c == '}' {
		s.i++
		return nil, true, true
	}
	if !first {
		if c != ',' {
			return nil, false, false
		}
		s.i++
	}
	lit, plain, ok := s.str()
	if !ok || !plain || !asciiKey(lit[1:len(lit)-1]) || !s.eat(':') {
		return nil, false, false
	}
	return lit[1 : len(lit)-1], false, true
}

// elem moves to the next element of an array whose "[" has been read; end
// is set at the closing "]".
func (s *scan) elem(first bool) (end, ok bool) {
	c := s.peek()
	if c == ']' {
		s.i++
		return true, true
	}
	if !first {
		if c != ',' {
			return false, false
		}
		s.i++
	}
	return false, true
}

// fields matches member keys to a struct's JSON field names as
// encoding/json does, and notices a field given twice.
type fields struct {
	names []string
	seen  uint32
}

// match returns the index of key's field, -1 for a key of no field, and
// ok false for a key that matches a field only ignoring case (encoding/json
// would take it; the scanner leaves that to it) or a field seen before.
func (f *fields) match(key []byte) (int, bool) {
	for i, n := range f.names {
		if len(n) != len(key) {
			continue
		}
		if string(key) == n {
			if f.seen&(1<<i) != 0 {
				return i, false
			}
			f.seen |= 1 << i
			return i, true
		}
		if keyIs(key, n) {
			return i, false
		}
	}
	return -1, true
}

// text reads a string or null into v (null leaves it as it is).
func (s *scan) text(v *string) bool {
	if s.null() {
		return true
	}
	lit, plain, ok := s.str()
	if ok {
		*v = unquote(lit, plain)
	}
	return ok
}

// textPtr reads a string into a new *string, or null as nil.
func (s *scan) textPtr(v **string) bool {
	if s.null() {
		*v = nil
		return true
	}
	lit, plain, ok := s.str()
	if ok {
		t := unquote(lit, plain)
		*v = &t
	}
	return ok
}

// integer reads a number that fits an int without question, or null.
func (s *scan) integer(v *int) bool {
	if s.null() {
		return true
	}
	n := numberLen(s.b[s.i:])
	if n == 0 || !isInt64(s.b[s.i:s.i+n]) {
		return false
	}
	x := 0
	neg := s.b[s.i] == '-'
	for _, c := range s.b[s.i : s.i+n] {
		if c != '-' {
			x = x*10 + int(c-'0')
		}
	}
	if neg {
		x = -x
	}
	*v = x
	s.i += n
	return true
}
