package bedrockwire

import (
	"encoding/json"
	"time"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// EncodeConverseResponse renders a canonical response as Converse's
// answer; latency is reported as metrics.latencyMs.
func EncodeConverseResponse(resp *llm.Response, latency time.Duration) ([]byte, error) {
	msg := &OutputMessage{Role: "assistant", Content: make([]OutputBlock, 0, len(resp.Content))}
	for _, p := range resp.Content {
		switch p.Type {
		case llm.PartText:
			if p.Text != "" {
				msg.Content = append(msg.Content, OutputBlock{Text: &p.Text})
			}
		case llm.PartToolCall:
			tc := p.ToolCall
			msg.Content = append(msg.Content, OutputBlock{ToolUse: &ToolUseBlock{ToolUseID: tc.ID, Name: tc.Name, Input: ToolInput(tc.Arguments)}})
		}
	}
	if len(msg.Content) == 0 {
		empty := ""
		msg.Content = append(msg.Content, OutputBlock{Text: &empty})
	}
	return json.Marshal(&ConverseResponse{
		Output:     ConverseOutput{Message: msg},
		StopReason: StopReason(resp.StopReason),
		Usage:      Usage(resp.Usage),
		Metrics:    Metrics{LatencyMs: latency.Milliseconds()},
	})
}

// ToolInput returns a tool call's arguments as the JSON value Converse
// puts in toolUse.input: the object the model wrote, {} for none, and,
// should a model write something that is not JSON, that text as a JSON
// string rather than an answer the client cannot parse.
func ToolInput(args string) json.RawMessage {
	if args == "" {
		return json.RawMessage(`{}`)
	}
	if json.Valid([]byte(args)) {
		return json.RawMessage(args)
	}
	b, _ := json.Marshal(args)
	return b
}

// Usage translates canonical token counts. The canonical InputTokens
// includes cached tokens; Bedrock's inputTokens excludes cache reads and
// writes, and its totalTokens includes them.
func Usage(u llm.Usage) TokenUsage {
	return TokenUsage{
		InputTokens:           max(0, u.InputTokens-u.CachedInputTokens-u.CacheWriteTokens),
		OutputTokens:          u.OutputTokens,
		TotalTokens:           u.InputTokens + u.OutputTokens,
		CacheReadInputTokens:  u.CachedInputTokens,
		CacheWriteInputTokens: u.CacheWriteTokens,
	}
}

// StopReason maps a canonical stop reason. The canonical vocabulary does
// not tell a stop sequence from the end of the turn, so both are end_turn.
func StopReason(r llm.StopReason) string {
	switch r {
	case llm.StopLength:
		return StopMaxTokens
	case llm.StopToolCalls:
		return StopToolUse
	case llm.StopContentFilter:
		return StopContentFiltered
	}
	return StopEndTurn
}
