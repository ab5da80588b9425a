package gemini

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/junctionhq/junction/internal/provider/upstream"
	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/sse"
)

// stream reads streamGenerateContent's SSE: each event's data is a whole
// GenerateContentResponse holding the next piece of the candidate. Text
// parts are deltas; a function call arrives whole in one part. The usage
// of the last chunk that has one is sent after the stop.
type stream struct {
	p     *Provider
	ctx   context.Context
	body  io.ReadCloser
	r     *sse.Reader
	queue []llm.Event
	head  int

	started, stopped, done bool
	calls                  int
	usage                  *usageMetadata
	once                   sync.Once
}

func (s *stream) Recv() (llm.Event, error) {
	for s.head == len(s.queue) {
		if s.done {
			return llm.Event{}, io.EOF
		}
		s.queue, s.head = s.queue[:0], 0
		ev, err := s.r.Next()
		if err == io.EOF && s.stopped {
			s.done = true
			u := s.usage.canonical()
			s.queue = append(s.queue, llm.Event{Type: llm.EventUsage, Usage: &u})
			continue
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return llm.Event{}, s.ctx.Err()
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return llm.Event{}, &llm.Error{Status: http.StatusBadGateway, Type: llm.ErrUpstream, Provider: s.p.name,
					Message: "upstream stream ended before it finished", Err: err}
			}
			return llm.Event{}, upstream.TransportError(s.ctx, s.p.name, err)
		}
		if err := s.decode(ev.Data); err != nil {
			return llm.Event{}, err
		}
	}
	ev := s.queue[s.head]
	s.head++
	return ev, nil
}

// Pending reports whether the next event is already decoded.
func (s *stream) Pending() bool { return s.head < len(s.queue) || s.r.Ready() }

func (s *stream) decode(data []byte) error {
	var r response
	if err := json.Unmarshal(data, &r); err != nil {
		var eb errorResponse
		if json.Unmarshal(data, &eb) == nil && eb.Error.Message != "" {
			return upstream.StatusError(s.p.name, max(eb.Error.Code, 500), http.Header{}, eb.Error.Message, eb.Error.Status)
		}
		return fmt.Errorf("%w: %v", llm.ErrMalformedEvent, err)
	}
	if !s.started {
		s.started = true
		s.queue = append(s.queue, llm.Event{Type: llm.EventStart, ID: r.ResponseID, Model: r.ModelVersion})
	}
	if r.UsageMetadata != nil {
		s.usage = r.UsageMetadata
	}
	if s.stopped {
		return nil
	}
	if len(r.Candidates) == 0 {
		if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
			s.stopped = true
			s.queue = append(s.queue, llm.Event{Type: llm.EventStop, StopReason: llm.StopContentFilter})
		}
		return nil
	}
	c := r.Candidates[0]
	if c.Content != nil {
		for _, p := range c.Content.Parts {
			switch {
			case p.Thought:
			case p.FunctionCall != nil:
				tc := llm.ToolCall{ID: callID(p.FunctionCall, s.calls), Name: p.FunctionCall.Name}
				s.queue = append(s.queue, llm.Event{Type: llm.EventToolCall, Index: s.calls, ToolCall: &tc},
					llm.Event{Type: llm.EventToolArgs, Index: s.calls, ToolCall: &llm.ToolCall{Arguments: args(p.FunctionCall)}})
				s.calls++
			case p.Text != "":
				s.queue = append(s.queue, llm.Event{Type: llm.EventText, Text: p.Text})
			}
		}
	}
	if c.FinishReason != "" {
		s.stopped = true
		s.queue = append(s.queue, llm.Event{Type: llm.EventStop, StopReason: stopReason(c.FinishReason, s.calls > 0)})
	}
	return nil
}

func (s *stream) Close() error {
	s.once.Do(func() { s.body.Close() })
	return nil
}
