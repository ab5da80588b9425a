package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/junctionhq/junction/internal/llm"
	"github.com/junctionhq/junction/internal/provider/upstream"
	"github.com/junctionhq/junction/internal/sse"
)

// wireEvent is the data of any stream event; the SSE event name says which
// fields are set. One value is reused for every event of a stream.
type wireEvent struct {
	// message_start
	Message wireResponse `json:"message"`
	// content_block_start, content_block_delta
	Index        int               `json:"index"`
	ContentBlock wireResponseBlock `json:"content_block"`
	// content_block_delta (type, text, partial_json) and message_delta
	// (stop_reason)
	Delta wireDelta `json:"delta"`
	// message_delta: cumulative counts
	Usage wireUsage `json:"usage"`
	// error
	Error wireError `json:"error"`
}

type wireDelta struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	PartialJSON string `json:"partial_json"`
	StopReason  string `json:"stop_reason"`
}

// stream is an llm.Stream over an Anthropic SSE body.
type stream struct {
	ctx  context.Context
	name string
	body io.ReadCloser
	r    *sse.Reader

	ev    wireEvent
	usage wireUsage
	// tools holds the content block index of each tool_use block in the
	// order they opened; a tool call's canonical Index is its position.
	tools []int
	// queued is an event to return before reading on (Usage after Stop).
	queued llm.Event
	// err ends the stream: io.EOF after message_stop, or the failure.
	err error

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var _ llm.Stream = (*stream)(nil)

func newStream(ctx context.Context, name string, body io.ReadCloser) *stream {
	return &stream{ctx: ctx, name: name, body: body, r: sse.NewReader(body)}
}

// Recv returns the next event, io.EOF after message_stop, or an
// *llm.Error if the stream fails or ends early.
func (s *stream) Recv() (llm.Event, error) {
	if s.queued.Type != 0 {
		ev := s.queued
		s.queued = llm.Event{}
		return ev, nil
	}
	for s.err == nil {
		e, err := s.r.Next()
		if err != nil {
			s.err = s.readError(err)
			break
		}
		ev, ok, err := s.translate(e)
		if err != nil {
			s.err = err
			break
		}
		if ok {
			return ev, nil
		}
	}
	return llm.Event{}, s.err
}

// Close closes the body. It may be called more than once, and from another
// goroutine to abort a blocked Recv.
func (s *stream) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = s.body.Close()
	})
	return s.closeErr
}

// translate turns one SSE event into at most one canonical event,
// reporting false when it yields none.
func (s *stream) translate(e sse.Event) (llm.Event, bool, error) {
	name := e.Name
	if name == "" {
		// Anthropic names every event; tolerate a server that does not.
		var t struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(e.Data, &t); err != nil {
			return llm.Event{}, false, upstream.Garbage(s.name, err)
		}
		name = t.Type
	}
	switch name {
	case "ping", "content_block_stop":
		return llm.Event{}, false, nil
	case "message_stop":
		s.err = io.EOF
		return llm.Event{}, false, nil
	case "message_start", "content_block_start", "content_block_delta", "message_delta", "error":
	default:
		return llm.Event{}, false, nil // an event type added after this adapter
	}

	s.ev = wireEvent{}
	if err := json.Unmarshal(e.Data, &s.ev); err != nil {
		return llm.Event{}, false, upstream.Garbage(s.name, err)
	}
	ev := &s.ev
	switch name {
	case "message_start":
		s.usage = ev.Message.Usage
		return llm.Event{Type: llm.EventStart, ID: ev.Message.ID, Model: ev.Message.Model}, true, nil

	case "content_block_start":
		switch b := &ev.ContentBlock; b.Type {
		case "text":
			if b.Text != "" {
				return llm.Event{Type: llm.EventText, Text: b.Text}, true, nil
			}
		case "tool_use":
			s.tools = append(s.tools, ev.Index)
			return llm.Event{Type: llm.EventToolCall, Index: len(s.tools) - 1,
				ToolCall: &llm.ToolCall{ID: b.ID, Name: b.Name}}, true, nil
		}

	case "content_block_delta":
		switch d := &ev.Delta; d.Type {
		case "text_delta":
			if d.Text != "" {
				return llm.Event{Type: llm.EventText, Text: d.Text}, true, nil
			}
		case "input_json_delta":
			// Deltas of blocks that are not tool_use (server tools) are
			// not the client's tool calls and are dropped.
			if i := s.toolOrdinal(ev.Index); i >= 0 && d.PartialJSON != "" {
				return llm.Event{Type: llm.EventToolArgs, Index: i,
					ToolCall: &llm.ToolCall{Arguments: d.PartialJSON}}, true, nil
			}
		}

	case "message_delta":
		// Counts here are cumulative; input counts appear only on some
		// responses and then supersede message_start's.
		u := ev.Usage
		s.usage.OutputTokens = u.OutputTokens
		if u.InputTokens > 0 {
			s.usage.InputTokens = u.InputTokens
		}
		if u.CacheReadInputTokens > 0 {
			s.usage.CacheReadInputTokens = u.CacheReadInputTokens
		}
		if u.CacheCreationInputTokens > 0 {
			s.usage.CacheCreationInputTokens = u.CacheCreationInputTokens
		}
		usage := s.usage.canonical()
		done := llm.Event{Type: llm.EventUsage, Usage: &usage}
		if ev.Delta.StopReason == "" {
			return done, true, nil
		}
		s.queued = done
		return llm.Event{Type: llm.EventStop, StopReason: stopReason(ev.Delta.StopReason)}, true, nil

	case "error":
		return llm.Event{}, false, s.upstreamError(ev.Error)
	}
	return llm.Event{}, false, nil
}

// toolOrdinal returns the canonical index of the tool_use block at content
// block index block, or -1. Blocks stream one after another, so the last
// tool is nearly always the one.
func (s *stream) toolOrdinal(block int) int {
	for i := len(s.tools) - 1; i >= 0; i-- {
		if s.tools[i] == block {
			return i
		}
	}
	return -1
}

// upstreamError maps an error event sent after the response had begun.
func (s *stream) upstreamError(w wireError) *llm.Error {
	msg := w.Message
	if msg == "" {
		msg = w.Type
	}
	e := &llm.Error{Status: http.StatusBadGateway, Type: llm.ErrUpstream, Provider: s.name, Code: w.Type,
		Message: "upstream failed mid-stream: " + msg}
	if w.Type == "overloaded_error" {
		e.Status, e.Type = http.StatusServiceUnavailable, llm.ErrOverloaded
	}
	return e
}

// readError maps a failure to read the next event. The body ending, even
// cleanly, is a failure here: a complete stream ends with message_stop.
func (s *stream) readError(err error) error {
	switch {
	case s.closed.Load():
		return &llm.Error{Status: http.StatusInternalServerError, Type: llm.ErrInternal, Provider: s.name,
			Message: "stream read after Close", Err: err}
	case s.ctx.Err() != nil:
		return upstream.TransportError(s.ctx, s.name, s.ctx.Err())
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// Err is never io.EOF, so errors.Is(err, io.EOF) cannot mistake
		// this for a complete stream.
		return &llm.Error{Status: http.StatusBadGateway, Type: llm.ErrUpstream, Provider: s.name,
			Message: "upstream stream ended before message_stop", Err: io.ErrUnexpectedEOF}
	}
	return upstream.TransportError(s.ctx, s.name, err)
}
