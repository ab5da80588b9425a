package openaiwire

import (
	"bytes"
	"strconv"

	"github.com/junctionhq/junction/internal/wire/jsonenc"
)

// PatchChatRequest is the pass-through of a chat-completions body from an
// OpenAI client to an OpenAI-compatible upstream: the client's bytes with
// only the members Junction sets patched in place, instead of the body
// EncodeChatRequest would write from the decoded request. It sets model;
// for a stream, "stream":true and stream_options asking for usage (which
// Junction always reads); for a plain call, no stream_options; and
// maxTokens, the cap a budget imposed, where the client set none. It
// reports false when the body needs more than that — a max_tokens that a
// reasoning model must get as max_completion_tokens, both names at once,
// a patched member given twice, escaped member keys — and the caller then
// encodes the request instead. raw must be a JSON object.
func PatchChatRequest(raw []byte, model string, stream bool, maxTokens *int) ([]byte, bool) {
	s := scan{b: raw}
	if !s.eat('{') {
		return nil, false
	}
	var mModel, mStream, mOpts, mMax, mMaxC member
	closing := -1
	prevEnd := -1
	for first := true; ; first = false {
		c := s.peek()
		if c == '}' {
			closing = s.i
			s.i++
			if !s.end() {
				return nil, false
			}
			break
		}
		if !first {
			if c != ',' {
				return nil, false
			}
			s.i++
			s.ws()
		}
		m := member{start: s.i, prevEnd: prevEnd, next: -1}
		lit, plain, ok := s.str()
		if !ok || !plain || !s.eat(':') {
			return nil, false
		}
		s.ws()
		m.valStart = s.i
		if _, ok := s.skip(); !ok {
			return nil, false
		}
		m.end = s.i
		if s.peek() == ',' {
			j := s.i + 1
			for j < len(raw) && (raw[j] == ' ' || raw[j] == '\t' || raw[j] == '\n' || raw[j] == '\r') {
				j++
			}
			m.next = j
		}
		prevEnd = m.end
		var slot *member
		switch string(lit[1 : len(lit)-1]) {
		case "model":
			slot = &mModel
		case "stream":
			slot = &mStream
		case "stream_options":
			slot = &mOpts
		case "max_tokens":
			slot = &mMax
		case "max_completion_tokens":
			slot = &mMaxC
		default:
			continue
		}
		if slot.found {
			return nil, false
		}
		m.found = true
		*slot = m
	}
	reasoning := reasoningModel(model)
	if !mModel.found || (mMax.found && (mMaxC.found || reasoning)) {
		return nil, false
	}

	var edits [4]edit
	e := edits[:0]
	e = append(e, edit{mModel.valStart, mModel.end, jsonenc.AppendString(nil, model)})
	var tail []byte // members added before the closing brace
	switch {
	case stream && mStream.found:
		e = append(e, edit{mStream.valStart, mStream.end, []byte("true")})
	case stream:
		tail = append(tail, `,"stream":true`...)
	case mStream.found:
		e = append(e, edit{mStream.valStart, mStream.end, []byte("false")})
	}
	const usageOpts = `{"include_usage":true}`
	switch {
	case stream && mOpts.found:
		e = append(e, edit{mOpts.valStart, mOpts.end, []byte(usageOpts)})
	case stream:
		tail = append(tail, `,"stream_options":`+usageOpts...)
	case mOpts.found:
		e = append(e, mOpts.cut())
	}
	if maxTokens != nil && !mMax.found && !mMaxC.found {
		if reasoning {
			tail = append(tail, `,"max_completion_tokens":`...)
		} else {
			tail = append(tail, `,"max_tokens":`...)
		}
		tail = strconv.AppendInt(tail, int64(*maxTokens), 10)
	}
	if len(tail) > 0 {
		e = append(e, edit{closing, closing, tail})
	}
	// Apply the edits in the order of the body (a few, so insertion sort).
	for i := 1; i < len(e); i++ {
		for j := i; j > 0 && e[j].start < e[j-1].start; j-- {
			e[j], e[j-1] = e[j-1], e[j]
		}
	}
	out := make([]byte, 0, len(raw)+len(model)+len(tail)+32)
	at := 0
	for _, ed := range e {
		out = append(out, raw[at:ed.start]...)
		out = append(out, ed.with...)
		at = ed.end
	}
	return append(out, raw[at:]...), true
}

// Passable reports whether a chat-completions body may pass through to an
// OpenAI-compatible upstream as it is (PatchChatRequest): not when it has
// a message with the developer role, which the full path sends as system
// for the servers (and chat templates) that know no developer role. The
// check is on the bytes, so a body that merely mentions "developer" as a
// whole JSON string takes the full path too, which is always correct.
func Passable(body []byte) bool { return !bytes.Contains(body, []byte(`"developer"`)) }

// member is where one top-level member of a body lies: its key starts at
// start, its value spans valStart to end; prevEnd is where the member
// before it ends (-1 for the first) and next is where the member after it
// starts (-1 for the last).
type member struct {
	found                         bool
	start, valStart, end, prevEnd int
	next                          int
}

// cut is the edit that removes the member with one of its commas.
func (m member) cut() edit {
	switch {
	case m.prevEnd >= 0:
		return edit{m.prevEnd, m.end, nil}
	case m.next >= 0:
		return edit{m.start, m.next, nil}
	}
	return edit{m.start, m.end, nil}
}

// edit replaces raw[start:end] with with.
type edit struct {
	start, end int
	with       []byte
}
