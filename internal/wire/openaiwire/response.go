package openaiwire

import (
	"encoding/json"
	"strconv"

	"github.com/junctionhq/junction/internal/wire/jsonenc"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// DecodeChatResponse parses a chat.completion body from an upstream.
func DecodeChatResponse(body []byte) (*llm.Response, error) {
	var w ChatResponse
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, err
	}
	return responseFromWire(&w), nil
}

// ScanChatResponse is DecodeChatResponse without encoding/json's
// reflection for the bodies its scanner takes (the common shapes, with any
// members it does not read); others take DecodeChatResponse. Both give the
// same response, or the same failure.
func ScanChatResponse(body []byte) (*llm.Response, error) {
	var w ChatResponse
	if scanChatResponse(body, &w) {
		return responseFromWire(&w), nil
	}
	return DecodeChatResponse(body)
}

func responseFromWire(w *ChatResponse) *llm.Response {
	resp := &llm.Response{ID: w.ID, Model: w.Model}
	if len(w.Choices) > 0 {
		c := w.Choices[0]
		if c.Message.Content != nil && *c.Message.Content != "" {
			resp.Content = append(resp.Content, llm.Part{Type: llm.PartText, Text: *c.Message.Content})
		}
		for _, tc := range c.Message.ToolCalls {
			resp.Content = append(resp.Content, llm.Part{Type: llm.PartToolCall,
				ToolCall: &llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments}})
		}
		resp.StopReason = llm.StopReason(c.FinishReason)
	}
	if w.Usage != nil {
		resp.Usage = usageFromWire(w.Usage)
	}
	return resp
}

func usageFromWire(u *Usage) llm.Usage {
	out := llm.Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens}
	if u.PromptTokensDetails != nil {
		out.CachedInputTokens = u.PromptTokensDetails.CachedTokens
	}
	return out
}

// EncodeChatResponse renders a canonical response as a chat.completion
// body. model is the name of the model that answered. It writes the bytes
// json.Marshal writes for the ChatResponse it stands for (the test holds
// it to that), without reflection.
func EncodeChatResponse(resp *llm.Response, id, model string, created int64) ([]byte, error) {
	b := make([]byte, 0, 256+len(id)+len(model)+textLen(resp.Content))
	b = append(b, `{"id":`...)
	b = jsonenc.AppendString(b, id)
	b = append(b, `,"object":"chat.completion","created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"model":`...)
	b = jsonenc.AppendString(b, model)
	b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	var text string
	texts, calls := 0, 0
	for _, p := range resp.Content {
		switch p.Type {
		case llm.PartText:
			if texts++; texts == 1 {
				text = p.Text
			} else {
				text += p.Text // rare; escaped whole, as a split UTF-8 sequence must be
			}
		case llm.PartToolCall:
			calls++
		}
	}
	if texts > 0 || calls == 0 {
		b = jsonenc.AppendString(b, text)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"refusal":null`...)
	if calls > 0 {
		b = append(b, `,"tool_calls":[`...)
		n := 0
		for _, p := range resp.Content {
			if p.Type != llm.PartToolCall {
				continue
			}
			if n > 0 {
				b = append(b, ',')
			}
			n++
			tc := p.ToolCall
			b = append(b, '{')
			if tc.ID != "" {
				b = append(b, `"id":`...)
				b = jsonenc.AppendString(b, tc.ID)
				b = append(b, ',')
			}
			b = append(b, `"type":"function","function":{`...)
			if tc.Name != "" {
				b = append(b, `"name":`...)
				b = jsonenc.AppendString(b, tc.Name)
				b = append(b, ',')
			}
			b = append(b, `"arguments":`...)
			b = jsonenc.AppendString(b, tc.Arguments)
			b = append(b, "}}"...)
		}
		b = append(b, ']')
	}
	finish := string(resp.StopReason)
	if finish == "" {
		finish = string(llm.StopEnd)
	}
	b = append(b, `},"finish_reason":`...)
	b = jsonenc.AppendString(b, finish)
	b = append(b, `,"logprobs":null}],"usage":`...)
	b = appendUsage(b, resp.Usage)
	return append(b, '}'), nil
}

func textLen(parts []llm.Part) int {
	n := 0
	for _, p := range parts {
		n += len(p.Text)
	}
	return n
}

// appendUsage appends u as a usage object, as json.Marshal writes the
// Usage it stands for.
func appendUsage(b []byte, u llm.Usage) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(u.InputTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(u.OutputTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.InputTokens+u.OutputTokens), 10)
	if u.CachedInputTokens > 0 {
		b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
		b = strconv.AppendInt(b, int64(u.CachedInputTokens), 10)
		b = append(b, '}')
	}
	return append(b, '}')
}

// ChunkDecoder turns the chunks of an upstream stream into canonical
// events. It remembers which tool calls it has opened.
type ChunkDecoder struct {
	// Full decodes every chunk with encoding/json, without the hand-written
	// fast paths (textDelta, scanChunk): the reference they are tested
	// against, and the full path of a provider with pass_through off.
	Full bool

	started bool
	stopped bool
	opened  map[int]bool
	pending []llm.Event
	shape   textShape
}

// Decode parses one chunk and returns the events it carries. The returned
// slice is reused by the next call.
func (d *ChunkDecoder) Decode(data []byte) ([]llm.Event, *ErrorBody, error) {
	if d.started && !d.Full {
		if text, ok := d.shape.textDelta(data); ok {
			ev := append(d.pending[:0], llm.Event{Type: llm.EventText, Text: text})
			d.pending = ev
			return ev, nil, nil
		}
	}
	var c Chunk
	if d.Full || !scanChunk(data, &c) {
		c = Chunk{}
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, nil, err
		}
	}
	if c.Error != nil {
		return nil, c.Error, nil
	}
	ev := d.pending[:0]
	if !d.started {
		d.started = true
		ev = append(ev, llm.Event{Type: llm.EventStart, ID: c.ID, Model: c.Model})
	}
	for _, ch := range c.Choices {
		if ch.Index != 0 {
			continue // Junction serves n=1; other choices are not forwarded
		}
		if ch.Delta.Content != nil && *ch.Delta.Content != "" {
			ev = append(ev, llm.Event{Type: llm.EventText, Text: *ch.Delta.Content})
		}
		for _, tc := range ch.Delta.ToolCalls {
			idx := 0
			if tc.Index != nil {
				idx = *tc.Index
			}
			if !d.opened[idx] {
				if d.opened == nil {
					d.opened = make(map[int]bool, 2)
				}
				d.opened[idx] = true
				ev = append(ev, llm.Event{Type: llm.EventToolCall, Index: idx, ToolCall: &llm.ToolCall{ID: tc.ID, Name: tc.Function.Name}})
			}
			if tc.Function.Arguments != "" {
				ev = append(ev, llm.Event{Type: llm.EventToolArgs, Index: idx, ToolCall: &llm.ToolCall{Arguments: tc.Function.Arguments}})
			}
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			d.stopped = true
			ev = append(ev, llm.Event{Type: llm.EventStop, StopReason: llm.StopReason(*ch.FinishReason)})
		}
	}
	if c.Usage != nil {
		u := usageFromWire(c.Usage)
		ev = append(ev, llm.Event{Type: llm.EventUsage, Usage: &u})
	}
	d.pending = ev
	return ev, nil, nil
}

// Stopped reports whether a finish_reason has been seen.
func (d *ChunkDecoder) Stopped() bool { return d.stopped }

// ChunkEncoder renders canonical events as chat.completion.chunk bodies.
type ChunkEncoder struct {
	// ID, Model and Created are stamped on every chunk.
	ID      string
	Model   string
	Created int64

	buf  []byte
	head []byte
}

// SetModel changes the model stamped on the chunks that follow: a stream
// continued on another deployment names the model answering now.
func (e *ChunkEncoder) SetModel(model string) {
	if model != e.Model {
		e.Model, e.head = model, nil
	}
}

// Encode returns the chunk body for ev, or nil when ev produces no chunk.
// The slice is reused by the next call. Usage events produce the final
// usage-only chunk (choices empty), as OpenAI sends it.
func (e *ChunkEncoder) Encode(ev llm.Event) []byte {
	if e.head == nil {
		// One array holds the head and, after it, the chunks built on it.
		h := make([]byte, 0, 512)
		h = append(h, `{"id":`...)
		h = jsonenc.AppendString(h, e.ID)
		h = append(h, `,"object":"chat.completion.chunk","created":`...)
		h = strconv.AppendInt(h, e.Created, 10)
		h = append(h, `,"model":`...)
		h = jsonenc.AppendString(h, e.Model)
		h = append(h, `,"choices":`...)
		e.head = h[:len(h):len(h)]
		e.buf = h[len(h):]
	}
	b := append(e.buf[:0], e.head...)
	switch ev.Type {
	case llm.EventStart:
		b = append(b, `[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`...)
	case llm.EventText:
		b = append(b, `[{"index":0,"delta":{"content":`...)
		b = jsonenc.AppendString(b, ev.Text)
		b = append(b, `},"finish_reason":null}]}`...)
	case llm.EventToolCall:
		b = append(b, `[{"index":0,"delta":{"tool_calls":[{"index":`...)
		b = strconv.AppendInt(b, int64(ev.Index), 10)
		b = append(b, `,"id":`...)
		b = jsonenc.AppendString(b, ev.ToolCall.ID)
		b = append(b, `,"type":"function","function":{"name":`...)
		b = jsonenc.AppendString(b, ev.ToolCall.Name)
		b = append(b, `,"arguments":""}}]},"finish_reason":null}]}`...)
	case llm.EventToolArgs:
		b = append(b, `[{"index":0,"delta":{"tool_calls":[{"index":`...)
		b = strconv.AppendInt(b, int64(ev.Index), 10)
		b = append(b, `,"function":{"arguments":`...)
		b = jsonenc.AppendString(b, ev.ToolCall.Arguments)
		b = append(b, `}}]},"finish_reason":null}]}`...)
	case llm.EventStop:
		reason := ev.StopReason
		if reason == "" {
			reason = llm.StopEnd
		}
		b = append(b, `[{"index":0,"delta":{},"finish_reason":`...)
		b = jsonenc.AppendString(b, string(reason))
		b = append(b, `}]}`...)
	case llm.EventUsage:
		b = append(b, `[],"usage":`...)
		b = appendUsage(b, *ev.Usage)
		b = append(b, '}')
	default:
		return nil
	}
	e.buf = b
	return b
}

// EncodeError renders an OpenAI error body.
func EncodeError(message, typ, param, code string) []byte {
	body := ErrorResponse{Error: ErrorBody{Message: message, Type: typ}}
	if param != "" {
		body.Error.Param = &param
	}
	if code != "" {
		body.Error.Code = &code
	}
	b, _ := json.Marshal(body)
	return b
}
