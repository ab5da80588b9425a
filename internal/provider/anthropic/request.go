package anthropic

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/junctionhq/junction/internal/llm"
)

// wireRequest is the body of POST /v1/messages.
type wireRequest struct {
	Model         string          `json:"model"`
	MaxTokens     int             `json:"max_tokens"`
	System        string          `json:"system,omitempty"`
	Messages      []wireMessage   `json:"messages"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
	Tools         []wireTool      `json:"tools,omitempty"`
	ToolChoice    *wireToolChoice `json:"tool_choice,omitempty"`
	Metadata      *wireMetadata   `json:"metadata,omitempty"`
}

// requestFields are the body fields wireRequest writes; Extra entries with
// these names are dropped so the body never holds a key twice.
var requestFields = map[string]bool{
	"model": true, "max_tokens": true, "system": true, "messages": true,
	"temperature": true, "top_p": true, "stop_sequences": true, "stream": true,
	"tools": true, "tool_choice": true, "metadata": true,
}

type wireMessage struct {
	Role    string      `json:"role"`
	Content []wireBlock `json:"content"`
}

// wireBlock is a request content block; Type says which fields are set.
type wireBlock struct {
	Type string `json:"type"`
	// text
	Text string `json:"text,omitempty"`
	// image
	Source *wireSource `json:"source,omitempty"`
	// tool_use
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
	// tool_result
	ToolUseID string `json:"tool_use_id,omitempty"`
	Content   string `json:"content,omitempty"`
	IsError   bool   `json:"is_error,omitempty"`
}

type wireSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	// Data is base64-encoded by encoding/json, as the API wants it.
	Data []byte `json:"data,omitempty"`
	URL  string `json:"url,omitempty"`
}

type wireTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type wireToolChoice struct {
	Type string `json:"type"`
	Name string `json:"name,omitempty"`
}

type wireMetadata struct {
	UserID string `json:"user_id"`
}

// objectSchema is the input_schema of a tool declared without parameters.
var objectSchema = json.RawMessage(`{"type":"object"}`)

// emptyObject is the input of a tool call made without arguments.
var emptyObject = json.RawMessage(`{}`)

// encodeRequest returns the JSON body for req. maxTokens is used when req
// sets none.
func encodeRequest(req *llm.Request, maxTokens int, stream bool) ([]byte, error) {
	w := wireRequest{
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
		w.Metadata = &wireMetadata{UserID: req.User}
	}
	var err error
	if w.System, w.Messages, err = messages(req.Messages); err != nil {
		return nil, err
	}
	if len(req.Tools) > 0 {
		w.Tools = make([]wireTool, len(req.Tools))
		for i, t := range req.Tools {
			w.Tools[i] = wireTool{Name: t.Name, Description: t.Description, InputSchema: t.Parameters}
			if len(t.Parameters) == 0 || string(t.Parameters) == "null" {
				w.Tools[i].InputSchema = objectSchema
			}
		}
	}
	if tc := req.ToolChoice; tc != nil {
		switch tc.Mode {
		case llm.ToolChoiceAuto:
			w.ToolChoice = &wireToolChoice{Type: "auto"}
		case llm.ToolChoiceRequired:
			w.ToolChoice = &wireToolChoice{Type: "any"}
		case llm.ToolChoiceNone:
			w.ToolChoice = &wireToolChoice{Type: "none"}
		case llm.ToolChoiceTool:
			w.ToolChoice = &wireToolChoice{Type: "tool", Name: tc.Name}
		default:
			return nil, llm.BadRequest("tool_choice", "unsupported tool choice %q", tc.Mode)
		}
	}
	body, err := json.Marshal(&w)
	if err != nil {
		// Only a malformed tool schema can get here.
		return nil, llm.BadRequest("tools", "cannot encode request: %v", err)
	}
	if req.Dialect == dialect && len(req.Extra) > 0 {
		return appendExtra(body, req.Extra)
	}
	return body, nil
}

// messages lifts system messages into one system string and translates the
// rest, merging consecutive messages of the same Anthropic role, since the
// API requires user and assistant turns to alternate.
func messages(in []llm.Message) (string, []wireMessage, error) {
	var system strings.Builder
	out := make([]wireMessage, 0, len(in))
	for i, m := range in {
		var role string
		switch m.Role {
		case llm.RoleSystem:
			if system.Len() > 0 {
				system.WriteString("\n\n")
			}
			system.WriteString(m.Text())
			continue
		case llm.RoleUser, llm.RoleTool:
			role = "user"
		case llm.RoleAssistant:
			role = "assistant"
		default:
			return "", nil, llm.BadRequest(fmt.Sprintf("messages[%d].role", i), "unsupported role %q", m.Role)
		}
		var cur *wireMessage
		if n := len(out); n > 0 && out[n-1].Role == role {
			cur = &out[n-1]
		}
		for j, p := range m.Content {
			b, ok, err := block(p)
			if err != nil {
				return "", nil, llm.BadRequest(fmt.Sprintf("messages[%d].content[%d]", i, j), "%s", err)
			}
			if !ok {
				continue
			}
			if cur == nil {
				out = append(out, wireMessage{Role: role, Content: make([]wireBlock, 0, len(m.Content))})
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
func (m *wireMessage) add(b wireBlock) {
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

// block translates one content part. It reports false for a part that
// has no Anthropic form worth sending: an empty text, which the API
// rejects.
func block(p llm.Part) (wireBlock, bool, error) {
	switch p.Type {
	case llm.PartText:
		return wireBlock{Type: "text", Text: p.Text}, p.Text != "", nil
	case llm.PartImage:
		img := p.Image
		switch {
		case img == nil:
		case len(img.Data) > 0:
			return wireBlock{Type: "image", Source: &wireSource{Type: "base64", MediaType: img.MediaType, Data: img.Data}}, true, nil
		case img.URL != "":
			return wireBlock{Type: "image", Source: &wireSource{Type: "url", URL: img.URL}}, true, nil
		}
		return wireBlock{}, false, fmt.Errorf("image has neither data nor url")
	case llm.PartToolCall:
		tc := p.ToolCall
		if tc == nil {
			return wireBlock{}, false, fmt.Errorf("tool_call part without a tool call")
		}
		input := emptyObject
		if strings.TrimSpace(tc.Arguments) != "" {
			input = json.RawMessage(tc.Arguments)
			if !json.Valid(input) {
				return wireBlock{}, false, fmt.Errorf("arguments of tool call %q are not valid JSON", tc.ID)
			}
		}
		return wireBlock{Type: "tool_use", ID: tc.ID, Name: tc.Name, Input: input}, true, nil
	case llm.PartToolResult:
		tr := p.ToolResult
		if tr == nil {
			return wireBlock{}, false, fmt.Errorf("tool_result part without a tool result")
		}
		return wireBlock{Type: "tool_result", ToolUseID: tr.CallID, Content: tr.Content, IsError: tr.IsError}, true, nil
	}
	return wireBlock{}, false, fmt.Errorf("unsupported part type %q", p.Type)
}

// appendExtra adds the entries of extra to the JSON object body, in key
// order so that equal requests give equal bodies. Entries naming a field
// the adapter writes itself are dropped: the canonical value wins.
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
		name, _ := json.Marshal(k)
		body = append(body, ',')
		body = append(body, name...)
		body = append(body, ':')
		body = append(body, v...)
	}
	return append(body, '}'), nil
}
