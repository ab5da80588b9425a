package bedrock

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/junctionhq/junction/internal/provider/upstream"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// stream is an llm.Stream over a ConverseStream event stream, which the SDK
// decodes from the binary framing into typed events on a channel.
//
// Bedrock sends metadata (usage) after messageStop, so the stream reads on
// after messageStop until the SDK's channel closes, and returns io.EOF only
// if messageStop was seen: the SDK reports a body cut mid-frame as a clean
// end, so messageStop is the only proof the answer is whole.
type stream struct {
	ctx   context.Context
	name  string
	id    string
	model string
	es    *bedrockruntime.ConverseStreamEventStream

	// tools holds the content block index of each toolUse block in the
	// order they opened; a tool call's canonical Index is its position.
	tools []int32
	// stopped is set when messageStop has been received.
	stopped bool
	// err ends the stream: io.EOF after a complete stream, or the failure.
	err error

	closed    atomic.Bool
	closeOnce sync.Once
}

func newStream(ctx context.Context, name, model, id string, es *bedrockruntime.ConverseStreamEventStream) *stream {
	return &stream{ctx: ctx, name: name, id: id, model: model, es: es}
}

// Recv returns the next event, io.EOF after a complete stream, or an error:
// ctx.Err() if the caller's context ended, otherwise an *llm.Error.
func (s *stream) Recv() (llm.Event, error) {
	for s.err == nil {
		if s.closed.Load() {
			s.err = errReadAfterClose(s.name)
			break
		}
		var ev types.ConverseStreamOutput
		var ok bool
		select {
		case ev, ok = <-s.es.Events():
		case <-s.ctx.Done():
			s.err = s.ctx.Err()
			continue
		}
		if !ok {
			s.err = s.end()
			break
		}
		out, yield, err := s.translate(ev)
		if err != nil {
			s.err = err
			break
		}
		if yield {
			return out, nil
		}
	}
	return llm.Event{}, s.err
}

// Close closes the SDK's event stream and with it the response body. It
// may be called more than once, and from another goroutine to abort a
// blocked Recv.
func (s *stream) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		// The error Close returns is the stream's read error, which Recv
		// reports; closing itself cannot fail.
		_ = s.es.Close()
	})
	return nil
}

// end says why the SDK's channel closed.
func (s *stream) end() error {
	if s.closed.Load() {
		return errReadAfterClose(s.name)
	}
	if err := s.es.Err(); err != nil {
		return apiError(s.ctx, s.name, err)
	}
	if s.ctx.Err() != nil {
		return s.ctx.Err()
	}
	if !s.stopped {
		return &llm.Error{Status: http.StatusBadGateway, Type: llm.ErrUpstream, Provider: s.name,
			Message: "upstream stream ended before messageStop"}
	}
	return io.EOF
}

// errReadAfterClose is the failure of a Recv on a closed stream.
func errReadAfterClose(name string) *llm.Error {
	return &llm.Error{Status: http.StatusInternalServerError, Type: llm.ErrInternal, Provider: name,
		Message: "stream read after Close"}
}

// translate turns one Bedrock event into at most one canonical event,
// reporting false when it yields none.
func (s *stream) translate(ev types.ConverseStreamOutput) (llm.Event, bool, error) {
	switch ev := ev.(type) {
	case *types.ConverseStreamOutputMemberMessageStart:
		return llm.Event{Type: llm.EventStart, ID: s.id, Model: s.model}, true, nil

	case *types.ConverseStreamOutputMemberContentBlockStart:
		// Text blocks have no start event; only tool calls open here.
		if tu, ok := ev.Value.Start.(*types.ContentBlockStartMemberToolUse); ok {
			s.tools = append(s.tools, aws.ToInt32(ev.Value.ContentBlockIndex))
			return llm.Event{Type: llm.EventToolCall, Index: len(s.tools) - 1, ToolCall: &llm.ToolCall{
				ID:   aws.ToString(tu.Value.ToolUseId),
				Name: aws.ToString(tu.Value.Name),
			}}, true, nil
		}

	case *types.ConverseStreamOutputMemberContentBlockDelta:
		switch d := ev.Value.Delta.(type) {
		case *types.ContentBlockDeltaMemberText:
			if d.Value != "" {
				return llm.Event{Type: llm.EventText, Text: d.Value}, true, nil
			}
		case *types.ContentBlockDeltaMemberToolUse:
			block := aws.ToInt32(ev.Value.ContentBlockIndex)
			i := s.toolOrdinal(block)
			if i < 0 {
				return llm.Event{}, false, upstream.Garbage(s.name,
					fmt.Errorf("toolUse delta for content block %d, which no contentBlockStart opened", block))
			}
			if in := aws.ToString(d.Value.Input); in != "" {
				return llm.Event{Type: llm.EventToolArgs, Index: i, ToolCall: &llm.ToolCall{Arguments: in}}, true, nil
			}
		}

	case *types.ConverseStreamOutputMemberMessageStop:
		s.stopped = true
		return llm.Event{Type: llm.EventStop, StopReason: stopReason(ev.Value.StopReason)}, true, nil

	case *types.ConverseStreamOutputMemberMetadata:
		if ev.Value.Usage != nil {
			u := usage(ev.Value.Usage)
			return llm.Event{Type: llm.EventUsage, Usage: &u}, true, nil
		}
	}
	// contentBlockStop, reasoning and citation deltas, and event types
	// added after this adapter yield nothing.
	return llm.Event{}, false, nil
}

// toolOrdinal returns the canonical index of the toolUse block at content
// block index block, or -1. Blocks stream one after another, so the last
// tool is nearly always the one.
func (s *stream) toolOrdinal(block int32) int {
	for i := len(s.tools) - 1; i >= 0; i-- {
		if s.tools[i] == block {
			return i
		}
	}
	return -1
}
