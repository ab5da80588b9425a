package bedrock

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// response translates a Converse answer. ID and Model are left to the
// caller. Blocks with no canonical form (reasoning, citations) are dropped.
func response(out *bedrockruntime.ConverseOutput) (*llm.Response, error) {
	msg, ok := out.Output.(*types.ConverseOutputMemberMessage)
	if !ok {
		return nil, fmt.Errorf("output is %T, not a message", out.Output)
	}
	resp := &llm.Response{
		Content:    make([]llm.Part, 0, len(msg.Value.Content)),
		StopReason: stopReason(out.StopReason),
		Usage:      usage(out.Usage),
	}
	for _, b := range msg.Value.Content {
		switch b := b.(type) {
		case *types.ContentBlockMemberText:
			resp.Content = append(resp.Content, llm.Part{Type: llm.PartText, Text: b.Value})
		case *types.ContentBlockMemberToolUse:
			args, err := arguments(b.Value.Input)
			if err != nil {
				return nil, fmt.Errorf("input of tool call %q: %w", aws.ToString(b.Value.ToolUseId), err)
			}
			resp.Content = append(resp.Content, llm.Part{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{
				ID:        aws.ToString(b.Value.ToolUseId),
				Name:      aws.ToString(b.Value.Name),
				Arguments: args,
			}})
		}
	}
	return resp, nil
}

// arguments returns a tool call's input document as JSON text.
func arguments(input document.Interface) (string, error) {
	if input == nil {
		return "{}", nil
	}
	b, err := input.MarshalSmithyDocument()
	if err != nil {
		return "", err
	}
	if s := string(b); s != "null" && s != "" {
		return s, nil
	}
	return "{}", nil
}

// usage translates Bedrock's token counts. Bedrock counts cached input
// apart from inputTokens; the canonical InputTokens includes it.
func usage(u *types.TokenUsage) llm.Usage {
	if u == nil {
		return llm.Usage{}
	}
	read := int(aws.ToInt32(u.CacheReadInputTokens))
	write := int(aws.ToInt32(u.CacheWriteInputTokens))
	return llm.Usage{
		InputTokens:       int(aws.ToInt32(u.InputTokens)) + read + write,
		OutputTokens:      int(aws.ToInt32(u.OutputTokens)),
		CachedInputTokens: read,
		CacheWriteTokens:  write,
	}
}

// stopReason maps Bedrock's stop reasons. The malformed_* reasons and any
// added later end the message without a more specific meaning, so they map
// to StopEnd.
func stopReason(r types.StopReason) llm.StopReason {
	switch r {
	case types.StopReasonMaxTokens, types.StopReasonModelContextWindowExceeded:
		return llm.StopLength
	case types.StopReasonToolUse:
		return llm.StopToolCalls
	case types.StopReasonGuardrailIntervened, types.StopReasonContentFiltered:
		return llm.StopContentFilter
	}
	return llm.StopEnd
}
