package anthropicwire

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// DecodeRequest parses and validates a Messages API body. Errors are
// *llm.Error 400s whose message starts with the offending field's path in
// Anthropic's notation ("messages.1.content.0.type: ..."). Top-level fields
// that are not modelled (top_k, thinking, service_tier, ...) are kept in
// the request's Extra, with Dialect set, so an Anthropic upstream gets them.
//
// The system prompt becomes a leading system message. A user turn's
// tool_result blocks become tool messages, in place, so that every
// canonical consumer sees them. Thinking blocks in assistant turns have no
// canonical form and are dropped; cache_control hints are ignored.
func DecodeRequest(body []byte) (*llm.Request, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, llm.BadRequest("", "request body is not valid JSON: %v", err)
	}
	if top == nil {
		return nil, llm.BadRequest("", "request body must be a JSON object")
	}
	req := &llm.Request{Dialect: Dialect}
	var system []llm.Part
	for k, v := range top {
		var err error
		switch k {
		case "model":
			err = json.Unmarshal(v, &req.Model)
		case "max_tokens":
			err = json.Unmarshal(v, &req.MaxTokens)
		case "messages":
			req.Messages, err = decodeMessages(v)
		case "system":
			system, err = decodeSystem(v)
		case "temperature":
			err = json.Unmarshal(v, &req.Temperature)
		case "top_p":
			err = json.Unmarshal(v, &req.TopP)
		case "top_k":
			var n *float64
			if err = json.Unmarshal(v, &n); err == nil && n != nil && (*n < 0 || *n != math.Trunc(*n)) {
				return nil, llm.BadRequest(k, "top_k: must be a non-negative integer")
			}
			req.Extra = setExtra(req.Extra, k, v)
		case "stop_sequences":
			err = json.Unmarshal(v, &req.Stop)
		case "stream":
			err = json.Unmarshal(v, &req.Stream)
		case "tools":
			req.Tools, err = decodeTools(v)
		case "tool_choice":
			req.ToolChoice, err = decodeToolChoice(v)
		case "metadata":
			var m *Metadata
			err = json.Unmarshal(v, &m)
			if m != nil {
				req.User = m.UserID
			}
		default:
			req.Extra = setExtra(req.Extra, k, v)
		}
		if err != nil {
			if e, ok := err.(*llm.Error); ok {
				return nil, e
			}
			return nil, llm.BadRequest(k, "%s: %s", k, llm.JSONProblem(err))
		}
	}
	if req.Model == "" {
		return nil, llm.BadRequest("model", "model: required (a model name Junction serves)")
	}
	if req.MaxTokens == nil {
		return nil, llm.BadRequest("max_tokens", "max_tokens: required, the most tokens the model may generate")
	}
	if *req.MaxTokens < 1 {
		return nil, llm.BadRequest("max_tokens", "max_tokens: must be at least 1")
	}
	if len(req.Messages) == 0 {
		return nil, llm.BadRequest("messages", "messages: required, a non-empty array of messages")
	}
	if req.Temperature != nil && (*req.Temperature < 0 || *req.Temperature > 1) {
		return nil, llm.BadRequest("temperature", "temperature: must be between 0 and 1")
	}
	if req.TopP != nil && (*req.TopP < 0 || *req.TopP > 1) {
		return nil, llm.BadRequest("top_p", "top_p: must be between 0 and 1")
	}
	if req.ToolChoice != nil && req.ToolChoice.Mode == llm.ToolChoiceTool &&
		!slices.ContainsFunc(req.Tools, func(t llm.Tool) bool { return t.Name == req.ToolChoice.Name }) {
		return nil, llm.BadRequest("tool_choice.name", "tool_choice.name: %q is not one of the request's tools", req.ToolChoice.Name)
	}
	if len(system) > 0 {
		req.Messages = slices.Insert(req.Messages, 0, llm.Message{Role: llm.RoleSystem, Content: system})
	}
	return req, nil
}

// setExtra keeps field k for an upstream of this dialect; a null is the
// field left out.
func setExtra(m map[string]json.RawMessage, k string, v json.RawMessage) map[string]json.RawMessage {
	if isNull(v) {
		return m
	}
	if m == nil {
		m = make(map[string]json.RawMessage, 4)
	}
	m[k] = v
	return m
}

func isNull(v json.RawMessage) bool { return len(v) == 0 || string(v) == "null" }

// rawMessage is a message as clients send it: content may be a string.
type rawMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// textBlock is the shape of system blocks and tool_result content blocks.
type textBlock struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func decodeSystem(v json.RawMessage) ([]llm.Part, error) {
	if isNull(v) {
		return nil, nil
	}
	if v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil || s == "" {
			return nil, err
		}
		return []llm.Part{{Type: llm.PartText, Text: s}}, nil
	}
	var blocks []textBlock
	if err := json.Unmarshal(v, &blocks); err != nil {
		return nil, llm.BadRequest("system", "system: must be a string or an array of text blocks")
	}
	parts := make([]llm.Part, 0, len(blocks))
	for i, b := range blocks {
		if b.Type != "text" {
			return nil, llm.BadRequest(fmt.Sprintf("system.%d.type", i), "system.%d.type: must be \"text\"", i)
		}
		parts = append(parts, llm.Part{Type: llm.PartText, Text: b.Text})
	}
	return parts, nil
}

// pos is where a message (block < 0) or one of its blocks sits in the
// request. It is formatted only when an error names it, so that valid
// requests pay nothing for precise errors.
type pos struct{ msg, block int }

// bad returns a 400 for field under p, e.g. messages.1.content.0.type; the
// message starts with that path.
func bad(p pos, field, format string, args ...any) *llm.Error {
	path := "messages." + strconv.Itoa(p.msg)
	if p.block >= 0 {
		path += ".content." + strconv.Itoa(p.block)
	}
	path += field
	e := llm.BadRequest(path, format, args...)
	e.Message = path + ": " + e.Message
	return e
}

func decodeMessages(v json.RawMessage) ([]llm.Message, error) {
	var wire []rawMessage
	if err := json.Unmarshal(v, &wire); err != nil {
		return nil, llm.BadRequest("messages", "messages: %s", llm.JSONProblem(err))
	}
	out := make([]llm.Message, 0, len(wire)+2)
	for i, m := range wire {
		p := pos{i, -1}
		var role llm.Role
		switch m.Role {
		case "user":
			role = llm.RoleUser
		case "assistant":
			role = llm.RoleAssistant
		case "":
			return nil, bad(p, ".role", "required (user or assistant)")
		default:
			return nil, bad(p, ".role", "%q is not one of user, assistant (a system prompt goes in the top-level system field)", m.Role)
		}
		parts, err := decodeContent(p, role, m.Content)
		if err != nil {
			return nil, err
		}
		if len(parts) == 0 && role == llm.RoleUser {
			return nil, bad(p, ".content", "must not be empty")
		}
		out = appendTurn(out, role, parts)
	}
	return out, nil
}

// appendTurn appends one Anthropic turn. A user turn's runs of tool
// results become tool messages, so that upstreams with a tool role (OpenAI)
// get them as such, and its other blocks a user message.
func appendTurn(out []llm.Message, role llm.Role, parts []llm.Part) []llm.Message {
	if role != llm.RoleUser || !slices.ContainsFunc(parts, isToolResult) {
		return append(out, llm.Message{Role: role, Content: parts})
	}
	for len(parts) > 0 {
		r := llm.RoleUser
		if isToolResult(parts[0]) {
			r = llm.RoleTool
		}
		n := 1
		for n < len(parts) && isToolResult(parts[n]) == (r == llm.RoleTool) {
			n++
		}
		out = append(out, llm.Message{Role: r, Content: parts[:n:n]})
		parts = parts[n:]
	}
	return out
}

func isToolResult(p llm.Part) bool { return p.Type == llm.PartToolResult }

func decodeContent(p pos, role llm.Role, v json.RawMessage) ([]llm.Part, error) {
	if isNull(v) {
		return nil, bad(p, ".content", "required, a string or an array of content blocks")
	}
	if v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, bad(p, ".content", "%s", llm.JSONProblem(err))
		}
		if s == "" {
			return nil, nil
		}
		return []llm.Part{{Type: llm.PartText, Text: s}}, nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		return nil, bad(p, ".content", "must be a string or an array of content blocks")
	}
	parts := make([]llm.Part, 0, len(raw))
	for j, rb := range raw {
		bp := pos{p.msg, j}
		var b Block
		if err := json.Unmarshal(rb, &b); err != nil {
			return nil, bad(bp, "", "%s", llm.JSONProblem(err))
		}
		part, ok, err := decodeBlock(bp, role, &b)
		if err != nil {
			return nil, err
		}
		if ok {
			parts = append(parts, part)
		}
	}
	return parts, nil
}

// mediaTypes are the image types the Messages API takes.
var mediaTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp"}

// decodeBlock translates one request block; it reports false for a block
// that is accepted but has no canonical form.
func decodeBlock(p pos, role llm.Role, b *Block) (llm.Part, bool, error) {
	if want := blockRole(b.Type); want != "" && role != want {
		return llm.Part{}, false, bad(p, ".type", "%s blocks belong in %s messages", b.Type, want)
	}
	switch b.Type {
	case "text":
		return llm.Part{Type: llm.PartText, Text: b.Text}, true, nil
	case "image":
		img, err := decodeSource(p, b.Source)
		if err != nil {
			return llm.Part{}, false, err
		}
		return llm.Part{Type: llm.PartImage, Image: img}, true, nil
	case "tool_use":
		if b.ID == "" {
			return llm.Part{}, false, bad(p, ".id", "required")
		}
		if b.Name == "" {
			return llm.Part{}, false, bad(p, ".name", "required")
		}
		args := "{}"
		if !isNull(b.Input) {
			if b.Input[0] != '{' {
				return llm.Part{}, false, bad(p, ".input", "must be an object")
			}
			args = string(b.Input)
		}
		return llm.Part{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: b.ID, Name: b.Name, Arguments: args}}, true, nil
	case "tool_result":
		if b.ToolUseID == "" {
			return llm.Part{}, false, bad(p, ".tool_use_id", "required")
		}
		content, err := toolResultContent(p, b.Content)
		if err != nil {
			return llm.Part{}, false, err
		}
		return llm.Part{Type: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: b.ToolUseID, Content: content, IsError: b.IsError}}, true, nil
	case "thinking", "redacted_thinking":
		// A client replaying an earlier turn of extended thinking; there is
		// no canonical form, and the API does not require old ones back.
		return llm.Part{}, false, nil
	case "":
		return llm.Part{}, false, bad(p, ".type", "required (text, image, tool_use or tool_result)")
	}
	return llm.Part{}, false, bad(p, ".type", "%q is not supported (text, image, tool_use or tool_result)", b.Type)
}

// blockRole is the role whose messages may hold blocks of type t, or ""
// when both may.
func blockRole(t string) llm.Role {
	switch t {
	case "image", "tool_result":
		return llm.RoleUser
	case "tool_use", "thinking", "redacted_thinking":
		return llm.RoleAssistant
	}
	return ""
}

func decodeSource(p pos, s *Source) (*llm.Image, error) {
	if s == nil {
		return nil, bad(p, ".source", "required")
	}
	switch s.Type {
	case "base64":
		if !slices.Contains(mediaTypes, s.MediaType) {
			return nil, bad(p, ".source.media_type", "%q is not one of %s", s.MediaType, strings.Join(mediaTypes, ", "))
		}
		if len(s.Data) == 0 {
			return nil, bad(p, ".source.data", "required, the base64-encoded image")
		}
		return &llm.Image{MediaType: s.MediaType, Data: s.Data}, nil
	case "url":
		if !strings.HasPrefix(s.URL, "https://") && !strings.HasPrefix(s.URL, "http://") {
			return nil, bad(p, ".source.url", "must be an http(s) URL")
		}
		return &llm.Image{URL: s.URL}, nil
	}
	return nil, bad(p, ".source.type", "%q is not one of base64, url", s.Type)
}

// toolResultContent reads a tool_result's content: absent, a string, or
// text blocks, which are joined with newlines.
func toolResultContent(p pos, v json.RawMessage) (string, error) {
	if isNull(v) {
		return "", nil
	}
	var s string
	if v[0] == '"' && json.Unmarshal(v, &s) == nil {
		return s, nil
	}
	var blocks []textBlock
	if err := json.Unmarshal(v, &blocks); err != nil {
		return "", bad(p, ".content", "must be a string or an array of text blocks")
	}
	var sb strings.Builder
	for i, b := range blocks {
		if b.Type != "text" {
			return "", bad(p, ".content."+strconv.Itoa(i)+".type", "%q is not supported in tool results (text only)", b.Type)
		}
		if i > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(b.Text)
	}
	return sb.String(), nil
}

func decodeTools(v json.RawMessage) ([]llm.Tool, error) {
	var wire []Tool
	if err := json.Unmarshal(v, &wire); err != nil {
		return nil, llm.BadRequest("tools", "tools: %s", llm.JSONProblem(err))
	}
	tools := make([]llm.Tool, 0, len(wire))
	for i, t := range wire {
		if t.Type != "" && t.Type != "custom" {
			return nil, llm.BadRequest(fmt.Sprintf("tools.%d.type", i),
				"tools.%d.type: server tools (%q) are not supported; declare client tools with name and input_schema", i, t.Type)
		}
		if t.Name == "" {
			return nil, llm.BadRequest(fmt.Sprintf("tools.%d.name", i), "tools.%d.name: required", i)
		}
		if isNull(t.InputSchema) || t.InputSchema[0] != '{' {
			return nil, llm.BadRequest(fmt.Sprintf("tools.%d.input_schema", i), "tools.%d.input_schema: required, a JSON Schema object", i)
		}
		tools = append(tools, llm.Tool{Name: t.Name, Description: t.Description, Parameters: t.InputSchema, Strict: t.Strict})
	}
	return tools, nil
}

func decodeToolChoice(v json.RawMessage) (*llm.ToolChoice, error) {
	if isNull(v) {
		return nil, nil
	}
	var tc ToolChoice
	if err := json.Unmarshal(v, &tc); err != nil {
		return nil, llm.BadRequest("tool_choice", `tool_choice: must be an object such as {"type":"auto"}`)
	}
	switch tc.Type {
	case "auto":
		return &llm.ToolChoice{Mode: llm.ToolChoiceAuto}, nil
	case "any":
		return &llm.ToolChoice{Mode: llm.ToolChoiceRequired}, nil
	case "none":
		return &llm.ToolChoice{Mode: llm.ToolChoiceNone}, nil
	case "tool":
		if tc.Name == "" {
			return nil, llm.BadRequest("tool_choice.name", `tool_choice.name: required when type is "tool"`)
		}
		return &llm.ToolChoice{Mode: llm.ToolChoiceTool, Name: tc.Name}, nil
	}
	return nil, llm.BadRequest("tool_choice.type", "tool_choice.type: %q is not one of auto, any, tool, none", tc.Type)
}
