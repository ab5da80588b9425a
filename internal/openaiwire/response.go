package openaiwire

import (
	"encoding/json"
	"strconv"

	"github.com/junctionhq/junction/internal/jsonenc"
	"github.com/junctionhq/junction/internal/llm"
)

// DecodeChatResponse parses a chat.completion body from an upstream.
func DecodeChatResponse(body []byte) (*llm.Response, error) {
	var w ChatResponse
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, err
	}
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
	return resp, nil
}

func usageFromWire(u *Usage) llm.Usage {
	out := llm.Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens}
	if u.PromptTokensDetails != nil {
		out.CachedInputTokens = u.PromptTokensDetails.CachedTokens
	}
	return out
}

func usageToWire(u llm.Usage) *Usage {
	w := &Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.InputTokens + u.OutputTokens}
	if u.CachedInputTokens > 0 {
		w.PromptTokensDetails = &TokenDetails{CachedTokens: u.CachedInputTokens}
	}
	return w
}

// EncodeChatResponse renders a canonical response as a chat.completion
// body. model is the name of the model that answered.
func EncodeChatResponse(resp *llm.Response, id, model string, created int64) ([]byte, error) {
	msg := ResponseMessage{Role: "assistant"}
	var text []byte
	hasText := false
	for _, p := range resp.Content {
		switch p.Type {
		case llm.PartText:
			text = append(text, p.Text...)
			hasText = true
		case llm.PartToolCall:
			msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: p.ToolCall.ID, Type: "function",
				Function: FunctionCall{Name: p.ToolCall.Name, Arguments: p.ToolCall.Arguments}})
		}
	}
	if hasText || len(msg.ToolCalls) == 0 {
		s := string(text)
		msg.Content = &s
	}
	finish := string(resp.StopReason)
	if finish == "" {
		finish = string(llm.StopEnd)
	}
	return json.Marshal(&ChatResponse{
		ID: id, Object: "chat.completion", Created: created, Model: model,
		Choices: []Choice{{Index: 0, Message: msg, FinishReason: finish, Logprobs: json.RawMessage("null")}},
		Usage:   usageToWire(resp.Usage),
	})
}

// ChunkDecoder turns the chunks of an upstream stream into canonical
// events. It remembers which tool calls it has opened.
type ChunkDecoder struct {
	started bool
	stopped bool
	opened  map[int]bool
	pending []llm.Event
}

// Decode parses one chunk and returns the events it carries. The returned
// slice is reused by the next call.
func (d *ChunkDecoder) Decode(data []byte) ([]llm.Event, *ErrorBody, error) {
	if d.started {
		if text, ok := textDelta(data); ok {
			ev := append(d.pending[:0], llm.Event{Type: llm.EventText, Text: text})
			d.pending = ev
			return ev, nil, nil
		}
	}
	var c Chunk
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, nil, err
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
		id, _ := json.Marshal(e.ID)
		model, _ := json.Marshal(e.Model)
		e.head = append(e.head, `{"id":`...)
		e.head = append(e.head, id...)
		e.head = append(e.head, `,"object":"chat.completion.chunk","created":`...)
		e.head = strconv.AppendInt(e.head, e.Created, 10)
		e.head = append(e.head, `,"model":`...)
		e.head = append(e.head, model...)
		e.head = append(e.head, `,"choices":`...)
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
		u, _ := json.Marshal(usageToWire(*ev.Usage))
		b = append(b, `[],"usage":`...)
		b = append(b, u...)
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
