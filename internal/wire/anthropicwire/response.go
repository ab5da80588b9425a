package anthropicwire

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/junctionhq/junction/internal/wire/jsonenc"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// DecodeResponse parses a complete Messages API response from an upstream.
// Cache reads and writes are counted into the canonical InputTokens.
func DecodeResponse(body []byte) (*llm.Response, error) {
	var w Response
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, err
	}
	r := &llm.Response{
		ID:         w.ID,
		Model:      w.Model,
		Content:    make([]llm.Part, 0, len(w.Content)),
		StopReason: stopReason(w.StopReason),
		Usage:      w.Usage.canonical(),
	}
	for _, b := range w.Content {
		switch b.Type {
		case "text":
			r.Content = append(r.Content, llm.Part{Type: llm.PartText, Text: b.Text})
		case "tool_use":
			r.Content = append(r.Content, llm.Part{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{
				ID: b.ID, Name: b.Name, Arguments: arguments(b.Input),
			}})
		}
	}
	return r, nil
}

// arguments returns a tool_use input as canonical argument JSON.
func arguments(input json.RawMessage) string {
	if isNull(input) {
		return "{}"
	}
	return string(input)
}

// canonical returns u with cache reads and writes counted into
// InputTokens, as llm.Usage wants.
func (u Usage) canonical() llm.Usage {
	return llm.Usage{
		InputTokens:       u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens,
		OutputTokens:      u.OutputTokens,
		CachedInputTokens: u.CacheReadInputTokens,
		CacheWriteTokens:  u.CacheCreationInputTokens,
	}
}

// usageToWire is the inverse of canonical: Anthropic's input_tokens leaves
// out the cache reads and writes, which have their own counts.
func usageToWire(u llm.Usage) Usage {
	return Usage{
		InputTokens:              max(0, u.InputTokens-u.CachedInputTokens-u.CacheWriteTokens),
		CacheCreationInputTokens: u.CacheWriteTokens,
		CacheReadInputTokens:     u.CachedInputTokens,
		OutputTokens:             u.OutputTokens,
	}
}

// stopReason maps Anthropic's stop_reason. Reasons with no canonical
// counterpart (stop_sequence, pause_turn, or ones added later) read as a
// normal end.
func stopReason(s string) llm.StopReason {
	switch s {
	case "max_tokens", "model_context_window_exceeded":
		return llm.StopLength
	case "tool_use":
		return llm.StopToolCalls
	case "refusal":
		return llm.StopContentFilter
	}
	return llm.StopEnd
}

// wireStopReason maps a canonical stop reason to Anthropic's. Canonical
// reasons are OpenAI's finish_reason, so its legacy function_call counts
// as tool use.
func wireStopReason(r llm.StopReason) string {
	switch r {
	case llm.StopLength:
		return "max_tokens"
	case llm.StopToolCalls, "function_call":
		return "tool_use"
	case llm.StopContentFilter:
		return "refusal"
	}
	return "end_turn"
}

// EncodeResponse renders a canonical response as a Messages API response
// body. id is the message id and model the name the client asked for. A
// tool call whose arguments are not a JSON object cannot be a tool_use
// block; it fails with a 502 rather than reach the client as broken JSON.
func EncodeResponse(resp *llm.Response, id, model string) ([]byte, error) {
	n := 256
	for _, p := range resp.Content {
		n += len(p.Text) + 64
		if p.ToolCall != nil {
			n += len(p.ToolCall.Arguments) + len(p.ToolCall.ID) + len(p.ToolCall.Name)
		}
	}
	b := make([]byte, 0, n)
	b = append(b, `{"id":`...)
	b = jsonenc.AppendString(b, id)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = jsonenc.AppendString(b, model)
	b = append(b, `,"content":[`...)
	first := true
	for _, p := range resp.Content {
		var err error
		switch p.Type {
		case llm.PartText:
			b = appendComma(b, &first)
			b = append(b, `{"type":"text","text":`...)
			b = jsonenc.AppendString(b, p.Text)
			b = append(b, '}')
		case llm.PartToolCall:
			b = appendComma(b, &first)
			if b, err = appendToolUse(b, p.ToolCall); err != nil {
				return nil, err
			}
		}
	}
	b = append(b, `],"stop_reason":"`...)
	b = append(b, wireStopReason(resp.StopReason)...)
	b = append(b, `","stop_sequence":null,"usage":`...)
	b = appendUsage(b, usageToWire(resp.Usage))
	return append(b, '}'), nil
}

func appendComma(b []byte, first *bool) []byte {
	if *first {
		*first = false
		return b
	}
	return append(b, ',')
}

// appendToolUse appends a complete tool_use block.
func appendToolUse(b []byte, tc *llm.ToolCall) ([]byte, error) {
	input := bytes.TrimSpace([]byte(tc.Arguments))
	if len(input) == 0 {
		input = emptyObject
	} else if input[0] != '{' || !json.Valid(input) {
		return nil, &llm.Error{Status: http.StatusBadGateway, Type: llm.ErrUpstream,
			Message: "the model's call of tool " + strconv.Quote(tc.Name) + " has arguments that are not a JSON object"}
	}
	b = append(b, `{"type":"tool_use","id":`...)
	b = jsonenc.AppendString(b, tc.ID)
	b = append(b, `,"name":`...)
	b = jsonenc.AppendString(b, tc.Name)
	b = append(b, `,"input":`...)
	b = append(b, input...)
	return append(b, '}'), nil
}

// appendUsage appends u as a usage object.
func appendUsage(b []byte, u Usage) []byte {
	b = append(b, `{"input_tokens":`...)
	b = strconv.AppendInt(b, int64(u.InputTokens), 10)
	b = append(b, `,"cache_creation_input_tokens":`...)
	b = strconv.AppendInt(b, int64(u.CacheCreationInputTokens), 10)
	b = append(b, `,"cache_read_input_tokens":`...)
	b = strconv.AppendInt(b, int64(u.CacheReadInputTokens), 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, int64(u.OutputTokens), 10)
	return append(b, '}')
}
