package anthropic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/junctionhq/junction/internal/provider/upstream"
	"github.com/junctionhq/junction/internal/wire/anthropicwire"
	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/sse"
)

// stream is an llm.Stream over an Anthropic SSE body.
type stream struct {
	ctx  context.Context
	name string
	body io.ReadCloser
	r    *sse.Reader
	dec  anthropicwire.StreamDecoder

	// queued holds decoded events not yet returned.
	queued []llm.Event
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
	for len(s.queued) == 0 && s.err == nil {
		e, err := s.r.Next()
		if err != nil {
			s.err = s.readError(err)
			break
		}
		evs, failed, err := s.dec.Decode(e.Name, e.Data)
		switch {
		case err != nil:
			// One bad event: the stream can be read on after it.
			return llm.Event{}, upstream.Garbage(s.name, fmt.Errorf("%w: %w", llm.ErrMalformedEvent, err))
		case failed != nil:
			s.err = s.upstreamError(*failed)
		case s.dec.Done():
			s.err = io.EOF
		}
		s.queued = evs
	}
	if len(s.queued) > 0 {
		ev := s.queued[0]
		s.queued = s.queued[1:]
		return ev, nil
	}
	return llm.Event{}, s.err
}

// Pending reports whether the next event is already at hand.
func (s *stream) Pending() bool { return len(s.queued) > 0 || s.r.Ready() }

// Close closes the body. It may be called more than once, and from another
// goroutine to abort a blocked Recv.
func (s *stream) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = s.body.Close()
	})
	return s.closeErr
}

// upstreamError maps an error event sent after the response had begun.
func (s *stream) upstreamError(w anthropicwire.ErrorBody) *llm.Error {
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
