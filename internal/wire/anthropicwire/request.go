package anthropicwire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/junctionhq/junction/internal/wire/jsonenc"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// requestFields are the body fields EncodeRequest writes; Extra entries
// with these names are dropped so the body never holds a key twice.
var requestFields = map[string]bool{
	"model": true, "max_tokens": true, "system": true, "messages": true,
	"temperature": true, "top_p": true, "stop_sequences": true, "stream": true,
	"tools": true, "tool_choice": true, "metadata": true,
}

// objectSchema is the input_schema of a tool declared without parameters.
var objectSchema = json.RawMessage(`{"type":"object"}`)

// emptyObject is the input of a tool call made without arguments.
var emptyObject = json.RawMessage(`{}`)

// EncodeRequest renders a canonical request as a Messages API body for an
// Anthropic upstream. maxTokens is sent when req sets no limit, since the
// API requires one; stream sets "stream". System messages, wherever they
// are, become the system prompt; consecutive turns of one role merge, as
// the API wants them to alternate. Extra fields are forwarded when the
// request came in through an Anthropic surface. Errors are 400 *llm.Error
// naming the canonical message and part ("messages[2].content[0]").
func EncodeRequest(req *llm.Request, maxTokens int, stream bool) ([]byte, error) {
	w := Request{
		Model:         req.Model,
		MaxTokens:     maxTokens,
		Temperature:   req.Temperature,
		TopP:          req.TopP,
		StopSequences: req.Stop,
		Stream:        stream,
	}
	if req.MaxTokens != nil {
		w.MaxTokens = *req.MaxTokens
	}
	if req.User != "" {
		w.Metadata = &Metadata{UserID: req.User}
	}
	system, msgs, err := encodeMessages(req.Messages)
	if err != nil {
		return nil, err
	}
	w.Messages = msgs
	if system != "" {
		w.System = jsonenc.AppendString(nil, system)
	}
	if len(req.Tools) > 0 {
		w.Tools = make([]Tool, len(req.Tools))
		for i, t := range req.Tools {
			w.Tools[i] = Tool{Name: t.Name, Description: t.Description, InputSchema: t.Parameters}
			if isNull(t.Parameters) {
				w.Tools[i].InputSchema = objectSchema
			}
		}
	}
	if tc := req.ToolChoice; tc != nil {
		switch tc.Mode {
		case llm.ToolChoiceAuto:
			w.ToolChoice = &ToolChoice{Type: "auto"}
		case llm.ToolChoiceRequired:
			w.ToolChoice = &ToolChoice{Type: "any"}
		case llm.ToolChoiceNone:
			w.ToolChoice = &ToolChoice{Type: "none"}
		case llm.ToolChoiceTool:
			w.ToolChoice = &ToolChoice{Type: "tool", Name: tc.Name}
		default:
			return nil, llm.BadRequest("tool_choice", "unsupported tool choice %q", tc.Mode)
		}
	}
	body, err := json.Marshal(&w)
	if err != nil {
		// Only a malformed tool schema can get here.
		return nil, llm.BadRequest("tools", "cannot encode request: %v", err)
	}
	if req.Dialect == Dialect && len(req.Extra) > 0 {
		return appendExtra(body, req.Extra)
	}
	return body, nil
}

// encodeMessages lifts system messages into one system string and
// translates the rest, merging consecutive messages of the same Anthropic
// role, since the API requires user and assistant turns to alternate.
func encodeMessages(in []llm.Message) (string, []Message, error) {
	var system strings.Builder
	out := make([]Message, 0, len(in))
	for i, m := range in {
		var role string
		switch m.Role {
		case llm.RoleSystem:
			for _, p := range m.Content {
				if p.Type != llm.PartText || p.Text == "" {
					continue
				}
				if system.Len() > 0 {
					system.WriteString("\n\n")
				}
				system.WriteString(p.Text)
			}
			continue
		case llm.RoleUser, llm.RoleTool:
			role = "user"
		case llm.RoleAssistant:
			role = "assistant"
		default:
			return "", nil, llm.BadRequest(fmt.Sprintf("messages[%d].role", i), "unsupported role %q", m.Role)
		}
		var cur *Message
		if n := len(out); n > 0 && out[n-1].Role == role {
			cur = &out[n-1]
		}
		for j, p := range m.Content {
			b, ok, err := encodeBlock(p)
			if err != nil {
				return "", nil, llm.BadRequest(fmt.Sprintf("messages[%d].content[%d]", i, j), "%s", err)
			}
			if !ok {
				continue
			}
			if cur == nil {
				out = append(out, Message{Role: role, Content: make([]Block, 0, len(m.Content))})
				cur = &out[len(out)-1]
			}
			cur.add(b)
		}
	}
	return system.String(), out, nil
}

// add appends b to m. Anthropic wants a user turn's tool_result blocks
// before its other blocks, so a tool result merged into a user turn that
// already holds text goes in after the turn's leading tool results.
func (m *Message) add(b Block) {
	if b.Type != "tool_result" {
		m.Content = append(m.Content, b)
		return
	}
	i := 0
	for i < len(m.Content) && m.Content[i].Type == "tool_result" {
		i++
	}
	m.Content = slices.Insert(m.Content, i, b)
}

// encodeBlock translates one content part. It reports false for a part
// that has no Anthropic form worth sending: an empty text, which the API
// rejects.
func encodeBlock(p llm.Part) (Block, bool, error) {
	switch p.Type {
	case llm.PartText:
		return Block{Type: "text", Text: p.Text}, p.Text != "", nil
	case llm.PartImage:
		img := p.Image
		switch {
		case img == nil:
		case len(img.Data) > 0:
			return Block{Type: "image", Source: &Source{Type: "base64", MediaType: img.MediaType, Data: img.Data}}, true, nil
		case img.URL != "":
			return Block{Type: "image", Source: &Source{Type: "url", URL: img.URL}}, true, nil
		}
		return Block{}, false, fmt.Errorf("image has neither data nor url")
	case llm.PartToolCall:
		tc := p.ToolCall
		if tc == nil {
			return Block{}, false, fmt.Errorf("tool_call part without a tool call")
		}
		input := emptyObject
		if strings.TrimSpace(tc.Arguments) != "" {
			input = json.RawMessage(tc.Arguments)
			if !json.Valid(input) {
				return Block{}, false, fmt.Errorf("arguments of tool call %q are not valid JSON", tc.ID)
			}
		}
		return Block{Type: "tool_use", ID: tc.ID, Name: tc.Name, Input: input}, true, nil
	case llm.PartToolResult:
		tr := p.ToolResult
		if tr == nil {
			return Block{}, false, fmt.Errorf("tool_result part without a tool result")
		}
		b := Block{Type: "tool_result", ToolUseID: tr.CallID, IsError: tr.IsError}
		if tr.Content != "" {
			b.Content = jsonenc.AppendString(nil, tr.Content)
		}
		return b, true, nil
	}
	return Block{}, false, fmt.Errorf("unsupported part type %q", p.Type)
}

// appendExtra adds the entries of extra to the JSON object body, in key
// order so that equal requests give equal bodies. Entries naming a field
// EncodeRequest writes itself are dropped: the canonical value wins.
func appendExtra(body []byte, extra map[string]json.RawMessage) ([]byte, error) {
	keys := make([]string, 0, len(extra))
	for k := range extra {
		if !requestFields[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	body = body[:len(body)-1] // drop the closing brace
	for _, k := range keys {
		v := extra[k]
		if !json.Valid(v) {
			return nil, llm.BadRequest(k, "field %q is not valid JSON", k)
		}
		body = append(body, ',')
		body = jsonenc.AppendString(body, k)
		body = append(body, ':')
		body = append(body, bytes.TrimSpace(v)...)
	}
	return append(body, '}'), nil
}
