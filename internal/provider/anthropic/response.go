package anthropic

import (
	"encoding/json"

	"github.com/junctionhq/junction/internal/llm"
)

// wireResponse is a complete Messages API response, and the message of a
// stream's message_start event.
type wireResponse struct {
	ID         string              `json:"id"`
	Model      string              `json:"model"`
	Content    []wireResponseBlock `json:"content"`
	StopReason string              `json:"stop_reason"`
	Usage      wireUsage           `json:"usage"`
}

// wireResponseBlock is a response content block. Blocks other than text
// and tool_use (thinking, server tool results) have no canonical form and
// are skipped.
type wireResponseBlock struct {
	Type  string          `json:"type"`
	Text  string          `json:"text"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// wireUsage counts tokens. Anthropic reports cache reads and writes apart
// from input_tokens.
type wireUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// wireError is the error object of an error body or stream event.
type wireError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// canonical translates a complete response.
func (w *wireResponse) canonical() *llm.Response {
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
	return r
}

// arguments returns a tool_use input as canonical argument JSON.
func arguments(input json.RawMessage) string {
	if len(input) == 0 || string(input) == "null" {
		return "{}"
	}
	return string(input)
}

// canonical returns u with cache reads and writes counted into
// InputTokens, as llm.Usage wants.
func (u wireUsage) canonical() llm.Usage {
	return llm.Usage{
		InputTokens:       u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens,
		OutputTokens:      u.OutputTokens,
		CachedInputTokens: u.CacheReadInputTokens,
		CacheWriteTokens:  u.CacheCreationInputTokens,
	}
}

// stopReason maps Anthropic's stop_reason. Reasons with no canonical
// counterpart (pause_turn, or ones added later) read as a normal end.
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
