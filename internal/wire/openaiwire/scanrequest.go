package openaiwire

import (
	"encoding/json"
	"strconv"

	"github.com/junctionhq/junction/internal/wire/llm"
)

var wireMessageFields = []string{"role", "content", "name", "tool_calls", "tool_call_id", "refusal"}

// scanChatRequest is decodeChatRequest without encoding/json's reflection
// for the bodies its scanner takes: it gives the same request, member for
// member (scanrequest_test.go fuzzes that), or reports false, and the body
// then takes decodeChatRequest — every invalid body among them, so that
// errors are worded in one place. Member values it does not model are
// kept as the body's bytes, as decodeChatRequest keeps them.
func scanChatRequest(body []byte) (*llm.Request, bool) {
	s := scan{b: body}
	req := &llm.Request{Dialect: Dialect}
	var maxCompletion *int
	var seen [16][]byte // the top-level keys, for duplicates (encoding/json keeps the last)
	n := 0
	if !s.eat('{') {
		return nil, false
	}
	for first := true; ; first = false {
		key, end, ok := s.key(first)
		if !ok {
			return nil, false
		}
		if end {
			break
		}
		if n == len(seen) {
			return nil, false
		}
		for _, k := range seen[:n] {
			if string(k) == string(key) {
				return nil, false
			}
		}
		seen[n] = key
		n++
		s.ws()
		start := s.i
		switch string(key) {
		case "model":
			ok = s.text(&req.Model)
		case "messages":
			var wire []Message
			if ok = s.nullable(func() bool { return s.wireMessages(&wire) }); ok {
				var err error
				req.Messages, err = messagesFromWire(wire)
				ok = err == nil
			}
		case "max_tokens":
			ok = s.intPtr(&req.MaxTokens)
		case "max_completion_tokens":
			ok = s.intPtr(&maxCompletion)
			req.Extra = setExtra(req.Extra, string(key), s.b[start:s.i])
		case "temperature":
			ok = s.floatPtr(&req.Temperature)
		case "top_p":
			ok = s.floatPtr(&req.TopP)
		case "stream":
			ok = s.boolean(&req.Stream)
		case "user":
			ok = s.text(&req.User)
		default:
			var v []byte
			if v, ok = s.skip(); !ok {
				return nil, false
			}
			ok = rawMember(req, string(key), v) == nil
		}
		if !ok {
			return nil, false
		}
	}
	if !s.end() || checkChatRequest(req, maxCompletion) != nil {
		return nil, false
	}
	return req, true
}

// intPtr reads an int into a new *int, or null as nil.
func (s *scan) intPtr(v **int) bool {
	if s.null() {
		*v = nil
		return true
	}
	n := 0
	if !s.integer(&n) {
		return false
	}
	*v = &n
	return true
}

// floatPtr reads a number into a new *float64, or null as nil.
func (s *scan) floatPtr(v **float64) bool {
	if s.null() {
		*v = nil
		return true
	}
	n := numberLen(s.b[s.i:])
	if n == 0 {
		return false
	}
	f, err := strconv.ParseFloat(string(s.b[s.i:s.i+n]), 64)
	if err != nil {
		return false
	}
	s.i += n
	*v = &f
	return true
}

// boolean reads true, false, or null (leaving v).
func (s *scan) boolean(v *bool) bool {
	switch s.peek() {
	case 't':
		*v = true
		return s.literal("true")
	case 'f':
		*v = false
		return s.literal("false")
	}
	return s.null()
}

// wireMessages reads messages as json.Unmarshal fills []Message.
func (s *scan) wireMessages(v *[]Message) bool {
	*v = make([]Message, 0, 4)
	return s.array(func() bool {
		*v = append(*v, Message{})
		m := &(*v)[len(*v)-1]
		return s.object(wireMessageFields, func(field int) bool {
			switch field {
			case 0:
				return s.text(&m.Role)
			case 1:
				// json.RawMessage: the value's bytes, null included.
				raw, ok := s.skip()
				m.Content = json.RawMessage(raw)
				return ok
			case 2:
				return s.text(&m.Name)
			case 3:
				return s.toolCalls(&m.ToolCalls)
			case 4:
				return s.text(&m.ToolCallID)
			case 5:
				return s.textPtr(&m.Refusal)
			}
			return s.skipped()
		})
	})
}
