package openaiwire

import (
	"bytes"
	"unicode/utf8"
)

// textDeltaKey starts the choices of a chunk that carries only text.
var textDeltaKey = []byte(`"choices":[{"index":0,"delta":{"content":"`)

// textDelta reads the text of the most common chunk — one choice whose
// delta holds only content, with no finish_reason, no usage and no error —
// straight from the bytes, without a JSON decode. It must agree with the
// full decoder on every input it accepts (fastpath_test.go fuzzes that):
// so it accepts only a chunk whose other members are plain scalars it can
// check, and reports false for anything else — escapes, nested values,
// members it does not know the type of — which then takes the full
// decoder.
func textDelta(data []byte) (string, bool) {
	from, to, ok := textDeltaAt(data)
	if !ok {
		return "", false
	}
	return string(data[from:to]), true
}

// textDeltaAt is textDelta, giving where the text lies in data.
func textDeltaAt(data []byte) (from, to int, ok bool) {
	i := bytes.Index(data, textDeltaKey)
	if i < 0 {
		return 0, 0, false
	}
	// Before the choices: "{" and scalar members, none of which the full
	// decoder would read as choices, usage or error.
	head := skipSpace(data[:i])
	if len(head) == 0 || head[0] != '{' {
		return 0, 0, false
	}
	if head = bytes.TrimRight(head[1:], " \t\r\n"); len(head) > 0 {
		// Members, then the comma before "choices".
		if head[len(head)-1] != ',' {
			return 0, 0, false
		}
		if head, ok = scalarMembers(head[:len(head)-1], false, chunkMember); !ok || len(skipSpace(head)) != 0 {
			return 0, 0, false
		}
	}
	from = i + len(textDeltaKey)
	rest := data[from:]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 {
		return 0, 0, false // no end, or empty text (which carries no event)
	}
	text := rest[:end]
	if !plainString(text) {
		return 0, 0, false
	}
	// The delta closes right after the content; the rest of the choice
	// holds scalar members, finish_reason only as null.
	rest = rest[end+1:]
	if len(rest) == 0 || rest[0] != '}' {
		return 0, 0, false
	}
	if rest, ok = scalarMembers(rest[1:], true, choiceMember); !ok {
		return 0, 0, false
	}
	rest = skipSpace(rest)
	if len(rest) < 2 || rest[0] != '}' || rest[1] != ']' {
		return 0, 0, false
	}
	// After the choices: more scalar members, then the end.
	if rest, ok = scalarMembers(rest[2:], true, chunkMember); !ok {
		return 0, 0, false
	}
	rest = skipSpace(rest)
	if len(rest) == 0 || rest[0] != '}' || len(skipSpace(rest[1:])) != 0 {
		return 0, 0, false
	}
	return from, from + end, true
}

// scalarMembers reads `"key":scalar` members separated by commas — each
// preceded by one when comma is set, else all but the first — until
// something else comes, and returns what follows them. It fails when a
// member is malformed or allow refuses it.
func scalarMembers(b []byte, comma bool, allow func(key, value []byte) bool) ([]byte, bool) {
	for first := true; ; first = false {
		s := skipSpace(b)
		if comma || !first {
			if len(s) == 0 || s[0] != ',' {
				return b, true
			}
			s = skipSpace(s[1:])
		}
		if len(s) == 0 || s[0] != '"' {
			return b, false // a comma, or "{", not followed by a member
		}
		k := bytes.IndexByte(s[1:], '"')
		if k < 0 {
			return b, false
		}
		key := s[1 : 1+k]
		if !asciiKey(key) {
			return b, false
		}
		s = skipSpace(s[2+k:])
		if len(s) == 0 || s[0] != ':' {
			return b, false
		}
		s = skipSpace(s[1:])
		n := scalarLen(s)
		if n == 0 || !allow(key, s[:n]) {
			return b, false
		}
		b = s[n:]
	}
}

// chunkMember accepts a top-level member of a text-only chunk: never one
// the full decoder reads as choices, usage or error (keys match case-
// insensitively there) but null usage or error, and the typed ones only
// with a value of their type.
func chunkMember(key, value []byte) bool {
	switch len(key) {
	case 2, 5, 6:
		switch {
		case keyIs(key, "id"), keyIs(key, "model"), keyIs(key, "object"):
			return value[0] == '"' || value[0] == 'n'
		case keyIs(key, "usage"), keyIs(key, "error"):
			return value[0] == 'n' // null leaves them unset
		}
	case 7:
		switch {
		case keyIs(key, "choices"):
			return false // a second choices replaces the first
		case keyIs(key, "created"):
			return value[0] == 'n' || isInt64(value)
		}
	}
	return true
}

// choiceMember accepts a member of the text choice after its delta:
// finish_reason only as null, and no second index or delta.
func choiceMember(key, value []byte) bool {
	switch len(key) {
	case 5:
		return !keyIs(key, "index") && !keyIs(key, "delta")
	case 13:
		return !keyIs(key, "finish_reason") || value[0] == 'n'
	}
	return true
}

// keyIs compares an ASCII member key to a lower-case field name as
// encoding/json matches them: ignoring case.
func keyIs(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i, c := range key {
		if c|0x20 != name[i] && c != name[i] {
			return false
		}
	}
	return true
}

// asciiKey reports whether a member key is printable ASCII without
// escapes: encoding/json folds some non-ASCII letters onto ASCII ones
// (K, ſ), which keyIs does not, so such keys take the full decoder.
func asciiKey(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x80 || c == '\\' {
			return false
		}
	}
	return true
}

// noEscape reports whether b, the inside of a JSON string, holds no escape
// and no control character.
func noEscape(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == '\\' {
			return false
		}
	}
	return true
}

// plainString reports whether b, the inside of a JSON string, needs no
// decoding: no escapes, no control characters, valid UTF-8.
func plainString(b []byte) bool { return noEscape(b) && utf8.Valid(b) }

// scalarLen returns the length of the JSON scalar b starts with — a plain
// string, a number, true, false or null — or 0 when it starts with none.
func scalarLen(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	switch b[0] {
	case '"':
		// Invalid UTF-8 decodes (replaced) without an error, so only an
		// escape or a control character matters here.
		k := bytes.IndexByte(b[1:], '"')
		if k < 0 || !noEscape(b[1:1+k]) {
			return 0
		}
		return k + 2
	case 't':
		return literalLen(b, "true")
	case 'f':
		return literalLen(b, "false")
	case 'n':
		return literalLen(b, "null")
	}
	return numberLen(b)
}

func literalLen(b []byte, lit string) int {
	if bytes.HasPrefix(b, []byte(lit)) {
		return len(lit)
	}
	return 0
}

// numberLen returns the length of the JSON number b starts with, or 0.
func numberLen(b []byte) int {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0
		}
	}
	return i
}

// isInt64 reports whether a JSON number fits an int64 field as
// encoding/json decodes it: an integer of at most 18 digits.
func isInt64(n []byte) bool {
	if n[0] == '-' {
		n = n[1:]
	}
	if len(n) == 0 || len(n) > 18 {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// textShape is the frame of the last chunk textDeltaAt took in a stream:
// the bytes before its text and after it. A server writes every text
// chunk of a stream in one frame, so the next one is most often the same
// bytes around other text, and the frame alone decides what textDeltaAt
// makes of a chunk: the first match of textDeltaKey lies within the
// frame's head (a match starting before it would lie wholly in the head
// too, and the memoised chunk would have matched there), and the text
// runs to the first quote, where the tail begins. So a chunk in the same
// frame, with plain text between, is taken by comparing bytes instead of
// scanning its members again.
type textShape struct {
	head, tail []byte
}

// text returns the text of data when data is in the frame.
func (f *textShape) text(data []byte) (string, bool) {
	h, t := len(f.head), len(f.tail)
	if h == 0 || len(data) <= h+t || !bytes.HasPrefix(data, f.head) || !bytes.HasSuffix(data, f.tail) {
		return "", false
	}
	text := data[h : len(data)-t]
	if bytes.IndexByte(text, '"') >= 0 || !plainString(text) {
		return "", false
	}
	return string(text), true
}

// remember takes data's frame, its text lying at data[from:to].
func (f *textShape) remember(data []byte, from, to int) {
	f.head = append(f.head[:0], data[:from]...)
	f.tail = append(f.tail[:0], data[to:]...)
}

// textDelta reads a text-only chunk by its frame, or else by textDeltaAt,
// remembering the frame.
func (f *textShape) textDelta(data []byte) (string, bool) {
	if text, ok := f.text(data); ok {
		return text, true
	}
	from, to, ok := textDeltaAt(data)
	if !ok {
		return "", false
	}
	f.remember(data, from, to)
	return string(data[from:to]), true
}
