package bedrockwire

import (
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/junctionhq/junction/internal/wire/jsonenc"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// StreamContentType is the Content-Type of a ConverseStream answer.
const StreamContentType = "application/vnd.amazon.eventstream"

// StreamWriter writes a canonical stream as ConverseStream events, each
// one AWS event-stream message with the headers :message-type event,
// :event-type and :content-type application/json, and a JSON payload.
//
// Bedrock numbers content blocks in order and sends them one after
// another: a text block has no start event, only deltas; a toolUse block
// opens with contentBlockStart. Each block is closed with contentBlockStop
// before the next opens and before messageStop. The usage, which the
// canonical stream may send before or after its stop, is held and sent in
// the metadata event that follows messageStop, as Bedrock orders them.
//
// It is not safe for concurrent use; flushing is the caller's.
type StreamWriter struct {
	w   io.Writer
	enc *eventstream.Encoder
	buf []byte

	started bool
	stopped bool
	// open is the index of the open block, or -1; openTool says whether
	// it is a toolUse block.
	open     int
	openTool bool
	next     int
	// tools holds the block index of each canonical tool call, by its
	// canonical Index.
	tools []int
	usage llm.Usage
}

// NewStreamWriter returns a StreamWriter writing to w.
func NewStreamWriter(w io.Writer) *StreamWriter {
	return &StreamWriter{w: w, enc: eventstream.NewEncoder(), open: -1}
}

// Write writes the events for one canonical event: none (usage, which
// waits for End), one, or a few (closing one block and opening another).
// It reports whether it wrote anything, so the caller knows to flush.
func (s *StreamWriter) Write(ev llm.Event) (bool, error) {
	if ev.Type == llm.EventUsage {
		if ev.Usage != nil {
			s.usage = *ev.Usage
		}
		return false, nil
	}
	if !s.started {
		s.started = true
		if err := s.event(hdrMessageStart, append(s.buf[:0], `{"role":"assistant"}`...)); err != nil {
			return true, err
		}
		if ev.Type == llm.EventStart {
			return true, nil
		}
	}
	switch ev.Type {
	case llm.EventText:
		if ev.Text == "" {
			return false, nil
		}
		if s.open < 0 || s.openTool {
			if err := s.closeBlock(); err != nil {
				return true, err
			}
			s.open, s.openTool = s.next, false
			s.next++
		}
		b := s.blockIndex(s.open)
		b = append(b, `,"delta":{"text":`...)
		b = jsonenc.AppendString(b, ev.Text)
		return true, s.event(hdrContentBlockDelta, append(b, "}}"...))
	case llm.EventToolCall:
		if err := s.closeBlock(); err != nil {
			return true, err
		}
		s.open, s.openTool = s.next, true
		s.next++
		for len(s.tools) <= ev.Index {
			s.tools = append(s.tools, -1)
		}
		s.tools[ev.Index] = s.open
		var id, name string
		if ev.ToolCall != nil {
			id, name = ev.ToolCall.ID, ev.ToolCall.Name
		}
		b := s.blockIndex(s.open)
		b = append(b, `,"start":{"toolUse":{"toolUseId":`...)
		b = jsonenc.AppendString(b, id)
		b = append(b, `,"name":`...)
		b = jsonenc.AppendString(b, name)
		return true, s.event(hdrContentBlockStart, append(b, "}}}"...))
	case llm.EventToolArgs:
		if ev.ToolCall == nil || ev.ToolCall.Arguments == "" || ev.Index >= len(s.tools) || s.tools[ev.Index] < 0 {
			return false, nil
		}
		// Arguments of an earlier call, should an upstream interleave
		// them, go to that call's block by its index.
		b := s.blockIndex(s.tools[ev.Index])
		b = append(b, `,"delta":{"toolUse":{"input":`...)
		b = jsonenc.AppendString(b, ev.ToolCall.Arguments)
		return true, s.event(hdrContentBlockDelta, append(b, "}}}"...))
	case llm.EventStop:
		if s.stopped {
			return false, nil
		}
		if err := s.closeBlock(); err != nil {
			return true, err
		}
		s.stopped = true
		b := append(s.buf[:0], `{"stopReason":`...)
		b = jsonenc.AppendString(b, StopReason(ev.StopReason))
		return true, s.event(hdrMessageStop, append(b, '}'))
	}
	return false, nil
}

// End writes the metadata event with the usage and the latency, after the
// canonical stream ended with io.EOF. A stream that ended without a stop
// event is given one first, so a client always sees messageStop.
func (s *StreamWriter) End(latency time.Duration) error {
	if !s.stopped {
		if _, err := s.Write(llm.Event{Type: llm.EventStop, StopReason: llm.StopEnd}); err != nil {
			return err
		}
	}
	b, err := json.Marshal(MetadataEvent{Usage: Usage(s.usage), Metrics: Metrics{LatencyMs: latency.Milliseconds()}})
	if err != nil {
		return err
	}
	return s.event(hdrMetadata, b)
}

// Exception writes a failure as an exception message, with no
// messageStop after it: the stream is cut, and the client must not take
// it for a whole answer.
func (s *StreamWriter) Exception(e *llm.Error) error {
	var msg eventstream.Message
	msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
	msg.Headers.Set(":exception-type", eventstream.StringValue(StreamException(e)))
	msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	msg.Payload = EncodeError(e)
	return s.enc.Encode(s.w, msg)
}

func (s *StreamWriter) closeBlock() error {
	if s.open < 0 {
		return nil
	}
	i := s.open
	s.open = -1
	return s.event(hdrContentBlockStop, append(s.blockIndex(i), '}'))
}

// blockIndex starts a payload, in the writer's buffer, with its content
// block index: {"contentBlockIndex":i
func (s *StreamWriter) blockIndex(i int) []byte {
	b := append(s.buf[:0], `{"contentBlockIndex":`...)
	return strconv.AppendInt(b, int64(i), 10)
}

// event writes one event message with the event's prebuilt headers. The
// payloads are built by hand in one reused buffer: a stream sends an
// event for every few tokens, and reflection-based encoding would be most
// of its cost.
func (s *StreamWriter) event(h eventstream.Headers, payload []byte) error {
	s.buf = payload[:0]
	return s.enc.Encode(s.w, eventstream.Message{Headers: h, Payload: payload})
}

// Each event's headers, built once: :message-type event, :event-type
// and :content-type application/json. The encoder only reads them.
var (
	hdrMessageStart      = eventHeaders(EventMessageStart)
	hdrContentBlockStart = eventHeaders(EventContentBlockStart)
	hdrContentBlockDelta = eventHeaders(EventContentBlockDelta)
	hdrContentBlockStop  = eventHeaders(EventContentBlockStop)
	hdrMessageStop       = eventHeaders(EventMessageStop)
	hdrMetadata          = eventHeaders(EventMetadata)
)

func eventHeaders(name string) eventstream.Headers {
	var h eventstream.Headers
	h.Set(":message-type", eventstream.StringValue("event"))
	h.Set(":event-type", eventstream.StringValue(name))
	h.Set(":content-type", eventstream.StringValue("application/json"))
	return h
}
