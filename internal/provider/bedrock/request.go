package bedrock

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithydocument "github.com/aws/smithy-go/document"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// converse holds the fields Converse and ConverseStream share, translated
// from a canonical request.
type converse struct {
	system    []types.SystemContentBlock
	messages  []types.Message
	inference *types.InferenceConfiguration
	tools     *types.ToolConfiguration
}

// translate turns req into Converse input. Only problems the client can fix
// are reported, as *llm.Error with status 400.
func translate(req *llm.Request) (converse, error) {
	var c converse
	var err error
	if c.system, c.messages, err = messages(req.Messages); err != nil {
		return c, err
	}
	if c.inference, err = inference(req); err != nil {
		return c, err
	}
	if c.tools, err = toolConfig(req.Tools, req.ToolChoice, c.messages); err != nil {
		return c, err
	}
	return c, nil
}

// messages lifts system messages into Converse's system blocks and
// translates the rest. Tool messages become user turns of toolResult
// blocks, and consecutive messages of the same Converse role are merged,
// since Converse requires user and assistant turns to alternate.
func messages(in []llm.Message) ([]types.SystemContentBlock, []types.Message, error) {
	var system []types.SystemContentBlock
	out := make([]types.Message, 0, len(in))
	for i, m := range in {
		var role types.ConversationRole
		switch m.Role {
		case llm.RoleSystem:
			// Bedrock rejects blank text blocks.
			if t := m.Text(); t != "" {
				system = append(system, &types.SystemContentBlockMemberText{Value: t})
			}
			continue
		case llm.RoleUser, llm.RoleTool:
			role = types.ConversationRoleUser
		case llm.RoleAssistant:
			role = types.ConversationRoleAssistant
		default:
			return nil, nil, llm.BadRequest(fmt.Sprintf("messages[%d].role", i), "messages[%d].role: unsupported role %q", i, m.Role)
		}
		var cur *types.Message
		if n := len(out); n > 0 && out[n-1].Role == role {
			cur = &out[n-1]
		}
		for j, p := range m.Content {
			b, err := block(p)
			if err != nil {
				path := fmt.Sprintf("messages[%d].content[%d]", i, j)
				return nil, nil, llm.BadRequest(path, "%s: %s", path, err)
			}
			if b == nil {
				continue
			}
			if cur == nil {
				out = append(out, types.Message{Role: role, Content: make([]types.ContentBlock, 0, len(m.Content))})
				cur = &out[len(out)-1]
			}
			cur.Content = add(cur.Content, b)
		}
	}
	return system, out, nil
}

// add appends b to a turn's blocks. A toolResult goes in after the turn's
// leading toolResults, ahead of any text: Anthropic models behind Bedrock
// want a user turn's tool results first, and a tool message followed by a
// user message merges into one turn.
func add(blocks []types.ContentBlock, b types.ContentBlock) []types.ContentBlock {
	if _, ok := b.(*types.ContentBlockMemberToolResult); !ok {
		return append(blocks, b)
	}
	i := 0
	for i < len(blocks) {
		if _, ok := blocks[i].(*types.ContentBlockMemberToolResult); !ok {
			break
		}
		i++
	}
	blocks = append(blocks, nil)
	copy(blocks[i+1:], blocks[i:])
	blocks[i] = b
	return blocks
}

// block translates one content part. It returns nil for a part with no
// Converse form worth sending: an empty text, which Bedrock rejects.
func block(p llm.Part) (types.ContentBlock, error) {
	switch p.Type {
	case llm.PartText:
		if p.Text == "" {
			return nil, nil
		}
		return &types.ContentBlockMemberText{Value: p.Text}, nil
	case llm.PartImage:
		img := p.Image
		switch {
		case img == nil || len(img.Data) == 0 && img.URL == "":
			return nil, errors.New("image has neither data nor url")
		case len(img.Data) == 0:
			return nil, errors.New("image URLs are not supported: Bedrock accepts only inline images; send the image as base64 data")
		}
		format, ok := imageFormats[strings.ToLower(img.MediaType)]
		if !ok {
			return nil, fmt.Errorf("image type %q is not supported by Bedrock (png, jpeg, gif or webp)", img.MediaType)
		}
		return &types.ContentBlockMemberImage{Value: types.ImageBlock{
			Format: format,
			Source: &types.ImageSourceMemberBytes{Value: img.Data},
		}}, nil
	case llm.PartToolCall:
		tc := p.ToolCall
		if tc == nil {
			return nil, errors.New("tool_call part without a tool call")
		}
		input, err := jsonDocument(tc.Arguments, map[string]any{})
		if err != nil {
			return nil, fmt.Errorf("arguments of tool call %q are not valid JSON: %v", tc.ID, err)
		}
		return &types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{
			ToolUseId: aws.String(tc.ID),
			Name:      aws.String(tc.Name),
			Input:     document.NewLazyDocument(input),
		}}, nil
	case llm.PartToolResult:
		tr := p.ToolResult
		if tr == nil {
			return nil, errors.New("tool_result part without a tool result")
		}
		// Content is required but may be empty; a blank text block is not.
		content := []types.ToolResultContentBlock{}
		if tr.Content != "" {
			content = append(content, &types.ToolResultContentBlockMemberText{Value: tr.Content})
		}
		b := types.ToolResultBlock{ToolUseId: aws.String(tr.CallID), Content: content}
		if tr.IsError {
			b.Status = types.ToolResultStatusError
		}
		return &types.ContentBlockMemberToolResult{Value: b}, nil
	}
	return nil, fmt.Errorf("unsupported part type %q", p.Type)
}

// imageFormats maps the media types Converse accepts to its format names.
var imageFormats = map[string]types.ImageFormat{
	"image/png":  types.ImageFormatPng,
	"image/jpeg": types.ImageFormatJpeg,
	"image/jpg":  types.ImageFormatJpeg,
	"image/gif":  types.ImageFormatGif,
	"image/webp": types.ImageFormatWebp,
}

// inference returns the inferenceConfig for req, or nil when it sets none.
func inference(req *llm.Request) (*types.InferenceConfiguration, error) {
	if req.MaxTokens == nil && req.Temperature == nil && req.TopP == nil && len(req.Stop) == 0 {
		return nil, nil
	}
	ic := &types.InferenceConfiguration{StopSequences: req.Stop}
	if req.MaxTokens != nil {
		n := *req.MaxTokens
		if n < 1 || n > math.MaxInt32 {
			return nil, llm.BadRequest("max_tokens", "max_tokens: %d is out of range", n)
		}
		ic.MaxTokens = aws.Int32(int32(n))
	}
	if req.Temperature != nil {
		ic.Temperature = aws.Float32(float32(*req.Temperature))
	}
	if req.TopP != nil {
		ic.TopP = aws.Float32(float32(*req.TopP))
	}
	return ic, nil
}

// toolConfig returns the toolConfig for the request's tools, or nil.
//
// Converse has no "none" tool choice. With ToolChoiceNone the tools are
// left out, so the model cannot call one; but Bedrock rejects a
// conversation holding toolUse or toolResult blocks without a toolConfig,
// so there the tools are sent with no toolChoice, which leaves the choice
// to the model.
func toolConfig(tools []llm.Tool, choice *llm.ToolChoice, msgs []types.Message) (*types.ToolConfiguration, error) {
	if len(tools) == 0 {
		return nil, nil
	}
	tc := &types.ToolConfiguration{}
	if choice != nil {
		switch choice.Mode {
		case llm.ToolChoiceAuto:
			tc.ToolChoice = &types.ToolChoiceMemberAuto{}
		case llm.ToolChoiceRequired:
			tc.ToolChoice = &types.ToolChoiceMemberAny{}
		case llm.ToolChoiceTool:
			if choice.Name == "" {
				return nil, llm.BadRequest("tool_choice", "tool_choice: a tool name is required")
			}
			tc.ToolChoice = &types.ToolChoiceMemberTool{Value: types.SpecificToolChoice{Name: aws.String(choice.Name)}}
		case llm.ToolChoiceNone:
			if !usesTools(msgs) {
				return nil, nil
			}
		default:
			return nil, llm.BadRequest("tool_choice", "tool_choice: unsupported mode %q", choice.Mode)
		}
	}
	tc.Tools = make([]types.Tool, len(tools))
	for i, t := range tools {
		schema, err := jsonDocument(string(t.Parameters), map[string]any{"type": "object"})
		if err != nil {
			path := fmt.Sprintf("tools[%d].parameters", i)
			return nil, llm.BadRequest(path, "%s: not valid JSON: %v", path, err)
		}
		spec := types.ToolSpecification{
			Name:        aws.String(t.Name),
			InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(schema)},
		}
		if t.Description != "" {
			spec.Description = aws.String(t.Description)
		}
		if t.Strict {
			spec.Strict = aws.Bool(true)
		}
		tc.Tools[i] = &types.ToolMemberToolSpec{Value: spec}
	}
	return tc, nil
}

// usesTools reports whether msgs hold a toolUse or toolResult block.
func usesTools(msgs []types.Message) bool {
	for _, m := range msgs {
		for _, b := range m.Content {
			switch b.(type) {
			case *types.ContentBlockMemberToolUse, *types.ContentBlockMemberToolResult:
				return true
			}
		}
	}
	return false
}

// jsonDocument decodes the JSON text s into a value for a Smithy document,
// or returns empty when s is blank or null. Numbers are kept as written,
// so integers too large for a float64 arrive intact.
func jsonDocument(s string, empty any) (any, error) {
	if t := strings.TrimSpace(s); t == "" || t == "null" {
		return empty, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("text after the JSON value")
	}
	return smithyNumbers(v), nil
}

// smithyNumbers replaces the json.Numbers in v, in place, with Smithy
// document numbers, which the SDK's document encoder writes as numbers
// rather than strings.
func smithyNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		return smithydocument.Number(x)
	case map[string]any:
		for k, e := range x {
			x[k] = smithyNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = smithyNumbers(e)
		}
	}
	return v
}
