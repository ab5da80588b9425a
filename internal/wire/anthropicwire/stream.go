package anthropicwire

import (
	"encoding/json"
	"strconv"

	"github.com/junctionhq/junction/internal/wire/jsonenc"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// StreamDecoder turns the events of an upstream Messages stream into
// canonical events. It remembers the usage so far and which content blocks
// are tool calls. The zero value is ready to use, for one stream.
type StreamDecoder struct {
	ev    Event
	usage Usage
	// tools holds the content block index of each tool_use block in the
	// order they opened; a tool call's canonical Index is its position.
	tools   []int
	done    bool
	pending []llm.Event
}

// Decode translates one SSE event, named name (its "event:" field; when
// empty, the data's "type" is used). It returns the canonical events it
// carries, in a slice reused by the next call; for an error event, the
// error object instead; and err when the data is not JSON. Events Junction
// does not model (ping, thinking deltas, types added later) yield nothing.
func (d *StreamDecoder) Decode(name string, data []byte) ([]llm.Event, *ErrorBody, error) {
	if name == "" {
		// Anthropic names every event; tolerate a server that does not.
		var t struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(data, &t); err != nil {
			return nil, nil, err
		}
		name = t.Type
	}
	out := d.pending[:0]
	switch name {
	case "ping", "content_block_stop":
		return out, nil, nil
	case "message_stop":
		d.done = true
		return out, nil, nil
	case "message_start", "content_block_start", "content_block_delta", "message_delta", "error":
	default:
		return out, nil, nil // an event type added after this decoder
	}

	d.ev = Event{}
	if err := json.Unmarshal(data, &d.ev); err != nil {
		return nil, nil, err
	}
	ev := &d.ev
	switch name {
	case "message_start":
		d.usage = ev.Message.Usage
		out = append(out, llm.Event{Type: llm.EventStart, ID: ev.Message.ID, Model: ev.Message.Model})

	case "content_block_start":
		switch b := &ev.ContentBlock; b.Type {
		case "text":
			if b.Text != "" {
				out = append(out, llm.Event{Type: llm.EventText, Text: b.Text})
			}
		case "tool_use":
			d.tools = append(d.tools, ev.Index)
			out = append(out, llm.Event{Type: llm.EventToolCall, Index: len(d.tools) - 1,
				ToolCall: &llm.ToolCall{ID: b.ID, Name: b.Name}})
		}

	case "content_block_delta":
		switch dl := &ev.Delta; dl.Type {
		case "text_delta":
			if dl.Text != "" {
				out = append(out, llm.Event{Type: llm.EventText, Text: dl.Text})
			}
		case "input_json_delta":
			// Deltas of blocks that are not tool_use (server tools) are
			// not the client's tool calls and are dropped.
			if i := d.toolOrdinal(ev.Index); i >= 0 && dl.PartialJSON != "" {
				out = append(out, llm.Event{Type: llm.EventToolArgs, Index: i,
					ToolCall: &llm.ToolCall{Arguments: dl.PartialJSON}})
			}
		}

	case "message_delta":
		// Counts here are cumulative; input counts appear only on some
		// responses and then supersede message_start's.
		u := ev.Usage
		d.usage.OutputTokens = u.OutputTokens
		if u.InputTokens > 0 {
			d.usage.InputTokens = u.InputTokens
		}
		if u.CacheReadInputTokens > 0 {
			d.usage.CacheReadInputTokens = u.CacheReadInputTokens
		}
		if u.CacheCreationInputTokens > 0 {
			d.usage.CacheCreationInputTokens = u.CacheCreationInputTokens
		}
		if ev.Delta.StopReason != "" {
			out = append(out, llm.Event{Type: llm.EventStop, StopReason: stopReason(ev.Delta.StopReason)})
		}
		usage := d.usage.canonical()
		out = append(out, llm.Event{Type: llm.EventUsage, Usage: &usage})

	case "error":
		d.pending = out
		return out, &ev.Error, nil
	}
	d.pending = out
	return out, nil, nil
}

// Done reports whether message_stop has been seen: the stream is complete.
func (d *StreamDecoder) Done() bool { return d.done }

// toolOrdinal returns the canonical index of the tool_use block at content
// block index block, or -1. Blocks stream one after another, so the last
// tool is nearly always the one.
func (d *StreamDecoder) toolOrdinal(block int) int {
	for i := len(d.tools) - 1; i >= 0; i-- {
		if d.tools[i] == block {
			return i
		}
	}
	return -1
}

// Stream event names, which are also the events' "type".
const (
	EventMessageStart      = "message_start"
	EventContentBlockStart = "content_block_start"
	EventContentBlockDelta = "content_block_delta"
	EventContentBlockStop  = "content_block_stop"
	EventMessageDelta      = "message_delta"
	EventMessageStop       = "message_stop"
	EventPing              = "ping"
	EventError             = "error"
)

// Frame is one SSE event to send: its name and its JSON data.
type Frame struct {
	Name string
	Data []byte
}

// StreamEncoder renders canonical events as the events of a Messages
// stream. It opens and closes content blocks as Anthropic does: a text
// block on the first text, closed before a tool_use block opens, each
// tool_use block closed before the next opens. The stop reason and usage
// travel together in message_delta, sent once both are known, or at
// Finish. The zero value with Model set is ready, for one stream.
type StreamEncoder struct {
	// ID is the message id used when the start event carries none.
	ID string
	// Model is stamped on message_start: the name the client asked for.
	Model string

	started bool
	// blocks counts the content blocks opened; open is the index of the
	// one still open, or -1 when there is none.
	blocks int
	open   int
	text   bool // the open block is a text block
	// toolBlock is the content block index of each canonical tool call.
	toolBlock []int

	stop      llm.StopReason
	stopped   bool
	usage     llm.Usage
	hasUsage  bool
	deltaSent bool

	buf    []byte
	marks  []int
	names  []string
	frames []Frame
}

// Encode returns the frames for ev, in slices reused by the next call.
func (e *StreamEncoder) Encode(ev llm.Event) []Frame {
	e.reset()
	if !e.started && ev.Type != llm.EventStart {
		e.start("")
	}
	switch ev.Type {
	case llm.EventStart:
		if !e.started {
			e.start(ev.ID)
		}
	case llm.EventText:
		if ev.Text == "" {
			break
		}
		if e.open < 0 || !e.text {
			e.closeBlock()
			e.openBlock(`{"type":"text","text":""}`, true)
		}
		e.begin(EventContentBlockDelta)
		e.buf = append(e.buf, `{"type":"content_block_delta","index":`...)
		e.buf = strconv.AppendInt(e.buf, int64(e.open), 10)
		e.buf = append(e.buf, `,"delta":{"type":"text_delta","text":`...)
		e.buf = jsonenc.AppendString(e.buf, ev.Text)
		e.buf = append(e.buf, `}}`...)
	case llm.EventToolCall:
		e.closeBlock()
		for len(e.toolBlock) <= ev.Index {
			e.toolBlock = append(e.toolBlock, -1)
		}
		e.toolBlock[ev.Index] = e.blocks
		e.begin(EventContentBlockStart)
		e.buf = append(e.buf, `{"type":"content_block_start","index":`...)
		e.buf = strconv.AppendInt(e.buf, int64(e.blocks), 10)
		e.buf = append(e.buf, `,"content_block":{"type":"tool_use","id":`...)
		e.buf = jsonenc.AppendString(e.buf, ev.ToolCall.ID)
		e.buf = append(e.buf, `,"name":`...)
		e.buf = jsonenc.AppendString(e.buf, ev.ToolCall.Name)
		e.buf = append(e.buf, `,"input":{}}}`...)
		e.open, e.text = e.blocks, false
		e.blocks++
	case llm.EventToolArgs:
		if ev.Index >= len(e.toolBlock) || e.toolBlock[ev.Index] < 0 || ev.ToolCall.Arguments == "" {
			break // arguments of a call that never opened
		}
		// Upstreams send one call's arguments before the next call opens;
		// should one interleave, its delta still names its own block,
		// which clients that accumulate by index (the SDKs) handle.
		e.begin(EventContentBlockDelta)
		e.buf = append(e.buf, `{"type":"content_block_delta","index":`...)
		e.buf = strconv.AppendInt(e.buf, int64(e.toolBlock[ev.Index]), 10)
		e.buf = append(e.buf, `,"delta":{"type":"input_json_delta","partial_json":`...)
		e.buf = jsonenc.AppendString(e.buf, ev.ToolCall.Arguments)
		e.buf = append(e.buf, `}}`...)
	case llm.EventStop:
		e.closeBlock()
		e.stop, e.stopped = ev.StopReason, true
		if e.hasUsage {
			e.messageDelta()
		}
	case llm.EventUsage:
		if ev.Usage != nil {
			e.usage, e.hasUsage = *ev.Usage, true
		}
		if e.stopped {
			e.messageDelta()
		}
	}
	return e.done()
}

// Finish returns the frames that end a complete stream: the open block's
// content_block_stop, message_delta if not yet sent, and message_stop.
// Call it only for a stream that ended well; a failed one ends with an
// error event instead, so that no client takes it for complete.
func (e *StreamEncoder) Finish() []Frame {
	e.reset()
	if !e.started {
		e.start("")
	}
	e.closeBlock()
	e.messageDelta()
	e.begin(EventMessageStop)
	e.buf = append(e.buf, `{"type":"message_stop"}`...)
	return e.done()
}

func (e *StreamEncoder) reset() {
	e.buf, e.marks, e.names = e.buf[:0], e.marks[:0], e.names[:0]
}

// begin starts a frame named name; its data is what is appended to buf
// until the next begin or done.
func (e *StreamEncoder) begin(name string) {
	e.marks = append(e.marks, len(e.buf))
	e.names = append(e.names, name)
}

// done cuts buf into the frames begun since reset.
func (e *StreamEncoder) done() []Frame {
	e.frames = e.frames[:0]
	for i, start := range e.marks {
		end := len(e.buf)
		if i+1 < len(e.marks) {
			end = e.marks[i+1]
		}
		e.frames = append(e.frames, Frame{Name: e.names[i], Data: e.buf[start:end:end]})
	}
	return e.frames
}

func (e *StreamEncoder) start(id string) {
	e.started, e.open = true, -1
	if id == "" {
		id = e.ID
	}
	e.begin(EventMessageStart)
	e.buf = append(e.buf, `{"type":"message_start","message":{"id":`...)
	e.buf = jsonenc.AppendString(e.buf, id)
	e.buf = append(e.buf, `,"type":"message","role":"assistant","model":`...)
	e.buf = jsonenc.AppendString(e.buf, e.Model)
	e.buf = append(e.buf, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}`...)
}

// openBlock opens content block number e.blocks with the given
// content_block JSON.
func (e *StreamEncoder) openBlock(block string, text bool) {
	e.begin(EventContentBlockStart)
	e.buf = append(e.buf, `{"type":"content_block_start","index":`...)
	e.buf = strconv.AppendInt(e.buf, int64(e.blocks), 10)
	e.buf = append(e.buf, `,"content_block":`...)
	e.buf = append(e.buf, block...)
	e.buf = append(e.buf, '}')
	e.open, e.text = e.blocks, text
	e.blocks++
}

func (e *StreamEncoder) closeBlock() {
	if e.open < 0 {
		return
	}
	e.begin(EventContentBlockStop)
	e.buf = append(e.buf, `{"type":"content_block_stop","index":`...)
	e.buf = strconv.AppendInt(e.buf, int64(e.open), 10)
	e.buf = append(e.buf, '}')
	e.open = -1
}

// messageDelta sends the stop reason and the usage, once. Its usage holds
// every count, input ones included: message_start went out before the
// upstream reported them.
func (e *StreamEncoder) messageDelta() {
	if e.deltaSent {
		return
	}
	e.deltaSent = true
	e.begin(EventMessageDelta)
	e.buf = append(e.buf, `{"type":"message_delta","delta":{"stop_reason":"`...)
	e.buf = append(e.buf, wireStopReason(e.stop)...)
	e.buf = append(e.buf, `","stop_sequence":null},"usage":`...)
	e.buf = appendUsage(e.buf, usageToWire(e.usage))
	e.buf = append(e.buf, '}')
}
