package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Path is a JSONPath expression in the subset SageMaker's batch transform
// documents for InputFilter and OutputFilter: the root $, children by
// name (.name or ['name']), the wildcard (.* or [*]), indexes ([0],
// [-1]), slices ([1:], [:3], [1:3]) and unions of names (['id','x']) or
// of indexes and slices ([0,5:]). A step that selects several values
// makes a collection: several names of an object make an object of those
// members, in the order named; indexes, slices and wildcards make an
// array. The steps after it apply to each selected value.
type Path struct {
	src   string
	steps []step
}

type step struct {
	wildcard bool
	names    []string
	sels     []selector
}

// multi reports whether the step selects a collection rather than one value.
func (s step) multi() bool {
	if s.wildcard || len(s.names) > 1 || len(s.sels) > 1 {
		return true
	}
	return len(s.sels) == 1 && s.sels[0].slice
}

type selector struct {
	slice      bool
	index      int
	start, end *int
}

// String is the expression as written.
func (p *Path) String() string { return p.src }

// Identity reports whether the path selects the whole value ($).
func (p *Path) Identity() bool { return len(p.steps) == 0 }

// ParsePath parses a JSONPath expression.
func ParsePath(src string) (*Path, error) {
	s := strings.TrimSpace(src)
	if !strings.HasPrefix(s, "$") {
		return nil, fmt.Errorf("JSONPath %q must start with $", src)
	}
	p := &Path{src: src}
	rest := s[1:]
	for rest != "" {
		switch rest[0] {
		case '.':
			rest = rest[1:]
			if strings.HasPrefix(rest, "*") {
				p.steps = append(p.steps, step{wildcard: true})
				rest = rest[1:]
				continue
			}
			n := 0
			for n < len(rest) && isNameByte(rest[n]) {
				n++
			}
			if n == 0 {
				return nil, fmt.Errorf("JSONPath %q: a name must follow '.'", src)
			}
			p.steps = append(p.steps, step{names: []string{rest[:n]}})
			rest = rest[n:]
		case '[':
			end := closing(rest)
			if end < 0 {
				return nil, fmt.Errorf("JSONPath %q: '[' without ']'", src)
			}
			st, err := parseBracket(rest[1:end])
			if err != nil {
				return nil, fmt.Errorf("JSONPath %q: %v", src, err)
			}
			p.steps = append(p.steps, st)
			rest = rest[end+1:]
		default:
			return nil, fmt.Errorf("JSONPath %q: unexpected %q; steps are .name, .*, ['name', ...], [*] or [index, start:end, ...]", src, rest[:1])
		}
	}
	return p, nil
}

func isNameByte(c byte) bool {
	return c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// closing finds the ']' that ends the bracket s begins with, skipping
// quoted names.
func closing(s string) int {
	end := -1
	outsideQuotes(s[1:], func(i int, c byte) bool {
		if c == ']' {
			end = i + 1
			return false
		}
		return true
	})
	return end
}

// outsideQuotes calls fn with each byte of s that is not within a quoted
// name, and its index, until fn returns false.
func outsideQuotes(s string, fn func(i int, c byte) bool) {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		default:
			if !fn(i, c) {
				return
			}
		}
	}
}

func parseBracket(in string) (step, error) {
	var st step
	parts := splitUnion(in)
	for _, part := range parts {
		part = strings.TrimSpace(part)
		switch {
		case part == "":
			return st, errors.New("an empty selector in [...]")
		case part == "*":
			if len(parts) > 1 {
				return st, errors.New("[*] cannot be part of a union")
			}
			st.wildcard = true
		case part[0] == '\'' || part[0] == '"':
			if len(part) < 2 || part[len(part)-1] != part[0] {
				return st, fmt.Errorf("unterminated name %s", part)
			}
			st.names = append(st.names, part[1:len(part)-1])
		default:
			sel, err := parseSelector(part)
			if err != nil {
				return st, err
			}
			st.sels = append(st.sels, sel)
		}
	}
	if len(st.names) > 0 && len(st.sels) > 0 {
		return st, errors.New("a union holds names or indexes, not both")
	}
	return st, nil
}

// splitUnion splits a bracket's content at the commas outside quotes.
func splitUnion(s string) []string {
	var out []string
	start := 0
	outsideQuotes(s, func(i int, c byte) bool {
		if c == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
		return true
	})
	return append(out, s[start:])
}

func parseSelector(s string) (selector, error) {
	num := func(t string) (*int, error) {
		t = strings.TrimSpace(t)
		if t == "" {
			return nil, nil
		}
		n, err := strconv.Atoi(t)
		if err != nil {
			return nil, fmt.Errorf("%q is not an index", t)
		}
		return &n, nil
	}
	if a, b, ok := strings.Cut(s, ":"); ok {
		if strings.Contains(b, ":") {
			return selector{}, fmt.Errorf("slice %q: steps are not supported", s)
		}
		start, err := num(a)
		if err != nil {
			return selector{}, err
		}
		end, err := num(b)
		if err != nil {
			return selector{}, err
		}
		return selector{slice: true, start: start, end: end}, nil
	}
	n, err := num(s)
	if err != nil {
		return selector{}, err
	}
	return selector{index: *n}, nil
}

// Eval applies the path to a JSON value and returns what it selects, as
// compact JSON. A name the value lacks, or an index past its end, is an
// error, as SageMaker makes it.
func (p *Path) Eval(v json.RawMessage) (json.RawMessage, error) {
	return eval(bytes.TrimSpace(v), p.steps)
}

func eval(v json.RawMessage, steps []step) (json.RawMessage, error) {
	if len(steps) == 0 {
		return v, nil
	}
	st, rest := steps[0], steps[1:]
	switch {
	case st.wildcard:
		if elems, err := arrayElems(v); err == nil {
			return evalEach(elems, rest)
		}
		members, err := objectMembers(v)
		if err != nil {
			return nil, errors.New("* applies to an object or an array")
		}
		vals := make([]json.RawMessage, len(members))
		for i, m := range members {
			vals[i] = m.value
		}
		return evalEach(vals, rest)
	case len(st.names) > 0:
		members, err := objectMembers(v)
		if err != nil {
			return nil, fmt.Errorf("member %q asked of a value that is not an object", st.names[0])
		}
		picked := make([]member, len(st.names))
		for i, name := range st.names {
			found := false
			for _, m := range members {
				if m.name == name {
					picked[i], found = m, true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("the object has no member %q", name)
			}
		}
		if !st.multi() {
			return eval(picked[0].value, rest)
		}
		var b bytes.Buffer
		b.WriteByte('{')
		for i, m := range picked {
			out, err := eval(m.value, rest)
			if err != nil {
				return nil, err
			}
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(m.name)
			b.Write(k)
			b.WriteByte(':')
			b.Write(out)
		}
		b.WriteByte('}')
		return b.Bytes(), nil
	default:
		elems, err := arrayElems(v)
		if err != nil {
			return nil, errors.New("an index asked of a value that is not an array")
		}
		var picked []json.RawMessage
		for _, sel := range st.sels {
			if !sel.slice {
				i := sel.index
				if i < 0 {
					i += len(elems)
				}
				if i < 0 || i >= len(elems) {
					return nil, fmt.Errorf("index %d is outside the array's %d elements", sel.index, len(elems))
				}
				picked = append(picked, elems[i])
				continue
			}
			from, to := bound(sel.start, 0, len(elems)), bound(sel.end, len(elems), len(elems))
			if from < to {
				picked = append(picked, elems[from:to]...)
			}
		}
		if !st.multi() {
			return eval(picked[0], rest)
		}
		return evalEach(picked, rest)
	}
}

// bound resolves a slice bound (negative counts from the end) within n.
func bound(b *int, def, n int) int {
	if b == nil {
		return def
	}
	i := *b
	if i < 0 {
		i += n
	}
	return min(max(i, 0), n)
}

func evalEach(vals []json.RawMessage, rest []step) (json.RawMessage, error) {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, v := range vals {
		out, err := eval(v, rest)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(out)
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

type member struct {
	name  string
	value json.RawMessage
}

// objectMembers returns an object's members in their order.
func objectMembers(v json.RawMessage) ([]member, error) {
	if len(v) == 0 || v[0] != '{' {
		return nil, errors.New("not an object")
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var out []member
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := t.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, err
		}
		out = append(out, member{name, compact(val)})
	}
	return out, nil
}

// arrayElems returns an array's elements.
func arrayElems(v json.RawMessage) ([]json.RawMessage, error) {
	if len(v) == 0 || v[0] != '[' {
		return nil, errors.New("not an array")
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(v, &elems); err != nil {
		return nil, err
	}
	for i := range elems {
		elems[i] = compact(elems[i])
	}
	return elems, nil
}

func compact(v json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return v
	}
	return b.Bytes()
}
