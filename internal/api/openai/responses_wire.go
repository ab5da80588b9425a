package openai

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/openaiwire"
)

// responseRequest is the body of POST /v1/responses. Fields Junction does
// not model are ignored: the request is translated to a chat call, which
// any model behind the router can answer.
type responseRequest struct {
	Model              string            `json:"model"`
	Input              json.RawMessage   `json:"input"`
	Instructions       *string           `json:"instructions"`
	Tools              []responseTool    `json:"tools"`
	ToolChoice         json.RawMessage   `json:"tool_choice"`
	Text               *responseText     `json:"text"`
	MaxOutputTokens    *int              `json:"max_output_tokens"`
	Temperature        *float64          `json:"temperature"`
	TopP               *float64          `json:"top_p"`
	Reasoning          *responseReason   `json:"reasoning"`
	Metadata           map[string]string `json:"metadata"`
	Store              *bool             `json:"store"`
	Stream             bool              `json:"stream"`
	PreviousResponseID string            `json:"previous_response_id"`
	ParallelToolCalls  *bool             `json:"parallel_tool_calls"`
	User               string            `json:"user"`
}

// responseTool is an entry of tools: Responses function tools are flat,
// not nested under "function" as in chat completions.
type responseTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// responseText is the text member: the output format.
type responseText struct {
	Format json.RawMessage `json:"format,omitempty"`
}

// responseReason is the reasoning member.
type responseReason struct {
	Effort  *string `json:"effort"`
	Summary *string `json:"summary"`
}

// item is one input or output item, in the wire shape Junction stores and
// lists: a message, a function call, or a function call's output.
type item struct {
	Type      string          `json:"type"`
	ID        string          `json:"id,omitempty"`
	Status    string          `json:"status,omitempty"`
	Role      string          `json:"role,omitempty"`
	Content   []itemPart      `json:"content,omitempty"`
	CallID    string          `json:"call_id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Arguments *string         `json:"arguments,omitempty"`
	Output    json.RawMessage `json:"output,omitempty"`
}

// itemPart is one content part of a message item.
type itemPart struct {
	Type        string          `json:"type"`
	Text        *string         `json:"text,omitempty"`
	ImageURL    string          `json:"image_url,omitempty"`
	Detail      string          `json:"detail,omitempty"`
	Annotations json.RawMessage `json:"annotations,omitempty"`
	Refusal     string          `json:"refusal,omitempty"`
}

// inputItem is an item as a client may send it: content may be a plain
// string, and type may be left out of a message.
type inputItem struct {
	Type      string          `json:"type"`
	ID        string          `json:"id"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments *string         `json:"arguments"`
	Output    json.RawMessage `json:"output"`
}

func strp(s string) *string { return &s }

// decodeResponseRequest parses and checks a Responses body. Errors are
// 400s naming the field.
func decodeResponseRequest(body []byte) (*responseRequest, error) {
	var req responseRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, llm.BadRequest("", "request body: %s", llm.JSONProblem(err))
	}
	if req.Model == "" {
		return nil, llm.BadRequest("model", "model: required (a model name from GET /v1/models)")
	}
	if len(req.Input) == 0 || string(req.Input) == "null" {
		return nil, llm.BadRequest("input", "input: required, a string or an array of input items")
	}
	if req.MaxOutputTokens != nil && *req.MaxOutputTokens < 1 {
		return nil, llm.BadRequest("max_output_tokens", "max_output_tokens: must be at least 1")
	}
	if req.Temperature != nil && (*req.Temperature < 0 || *req.Temperature > 2) {
		return nil, llm.BadRequest("temperature", "temperature: must be between 0 and 2")
	}
	if req.TopP != nil && (*req.TopP < 0 || *req.TopP > 1) {
		return nil, llm.BadRequest("top_p", "top_p: must be between 0 and 1")
	}
	return &req, nil
}

// inputItems normalises the request's input into items, each with an id
// (prefix plus its position) so that input_items can list them.
func inputItems(raw json.RawMessage, prefix string) ([]item, error) {
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, llm.BadRequest("input", "input: %s", llm.JSONProblem(err))
		}
		return []item{{Type: "message", ID: prefix + "0", Status: "completed", Role: "user",
			Content: []itemPart{{Type: "input_text", Text: strp(s)}}}}, nil
	}
	var wire []inputItem
	if err := json.Unmarshal(raw, &wire); err != nil {
		return nil, llm.BadRequest("input", "input: must be a string or an array of input items")
	}
	if len(wire) == 0 {
		return nil, llm.BadRequest("input", "input: must not be empty")
	}
	out := make([]item, 0, len(wire))
	for i, w := range wire {
		path := fmt.Sprintf("input[%d]", i)
		it := item{Type: w.Type, ID: w.ID, Status: "completed"}
		if it.ID == "" {
			it.ID = fmt.Sprintf("%s%d", prefix, i)
		}
		switch w.Type {
		case "", "message":
			it.Type = "message"
			switch w.Role {
			case "user", "system", "developer", "assistant":
				it.Role = w.Role
			case "":
				return nil, llm.BadRequest(path+".role", "%s.role: required (user, system, developer or assistant)", path)
			default:
				return nil, llm.BadRequest(path+".role", "%s.role: %q is not one of user, system, developer, assistant", path, w.Role)
			}
			parts, err := inputParts(path, w.Role, w.Content)
			if err != nil {
				return nil, err
			}
			it.Content = parts
		case "function_call":
			if w.CallID == "" || w.Name == "" {
				return nil, llm.BadRequest(path, "%s: a function_call needs call_id and name", path)
			}
			args := ""
			if w.Arguments != nil {
				args = *w.Arguments
			}
			it.CallID, it.Name, it.Arguments = w.CallID, w.Name, &args
		case "function_call_output":
			if w.CallID == "" {
				return nil, llm.BadRequest(path+".call_id", "%s.call_id: required on a function_call_output", path)
			}
			if len(w.Output) == 0 {
				return nil, llm.BadRequest(path+".output", "%s.output: required on a function_call_output", path)
			}
			it.CallID, it.Output = w.CallID, w.Output
		case "reasoning":
			continue // another model's reasoning: nothing a chat call can carry
		default:
			return nil, llm.BadRequest(path+".type", "%s.type: %q is not supported (message, function_call, function_call_output)", path, w.Type)
		}
		out = append(out, it)
	}
	return out, nil
}

// inputParts normalises a message's content to parts.
func inputParts(path, role string, raw json.RawMessage) ([]itemPart, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, llm.BadRequest(path+".content", "%s.content: required", path)
	}
	textType := "input_text"
	if role == "assistant" {
		textType = "output_text"
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, llm.BadRequest(path+".content", "%s.content: %s", path, llm.JSONProblem(err))
		}
		return []itemPart{{Type: textType, Text: strp(s)}}, nil
	}
	var parts []itemPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, llm.BadRequest(path+".content", "%s.content: must be a string or an array of content parts", path)
	}
	for i, p := range parts {
		pp := fmt.Sprintf("%s.content[%d]", path, i)
		switch p.Type {
		case "input_text", "output_text", "text":
			if p.Text == nil {
				return nil, llm.BadRequest(pp+".text", "%s.text: required", pp)
			}
		case "input_image":
			if p.ImageURL == "" {
				return nil, llm.BadRequest(pp+".image_url", "%s.image_url: required (an https or data: URL; file ids are not supported)", pp)
			}
		case "refusal":
		default:
			return nil, llm.BadRequest(pp+".type", "%s.type: %q is not supported (input_text, input_image, output_text)", pp, p.Type)
		}
	}
	return parts, nil
}

// messages turns items into the canonical conversation: function calls
// join the assistant message before them, outputs become tool messages.
func messages(items []item) ([]llm.Message, error) {
	var out []llm.Message
	for i, it := range items {
		path := fmt.Sprintf("input[%d]", i)
		switch it.Type {
		case "message":
			m := llm.Message{Role: llm.Role(it.Role)}
			if it.Role == "developer" {
				m.Role = llm.RoleSystem
			}
			for j, p := range it.Content {
				switch p.Type {
				case "input_image":
					img, err := openaiwire.DecodeImageURL(fmt.Sprintf("%s.content[%d]", path, j), &openaiwire.ImageURL{URL: p.ImageURL, Detail: p.Detail})
					if err != nil {
						return nil, err
					}
					m.Content = append(m.Content, llm.Part{Type: llm.PartImage, Image: img})
				case "refusal":
					m.Content = append(m.Content, llm.Part{Type: llm.PartText, Text: p.Refusal})
				default:
					m.Content = append(m.Content, llm.Part{Type: llm.PartText, Text: *p.Text})
				}
			}
			out = append(out, m)
		case "function_call":
			call := llm.Part{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: it.CallID, Name: it.Name, Arguments: *it.Arguments}}
			if n := len(out); n > 0 && out[n-1].Role == llm.RoleAssistant {
				out[n-1].Content = append(out[n-1].Content, call)
			} else {
				out = append(out, llm.Message{Role: llm.RoleAssistant, Content: []llm.Part{call}})
			}
		case "function_call_output":
			out = append(out, llm.Message{Role: llm.RoleTool, Content: []llm.Part{{Type: llm.PartToolResult,
				ToolResult: &llm.ToolResult{CallID: it.CallID, Content: outputText(it.Output)}}}})
		}
	}
	return out, nil
}

// outputText is a function_call_output's output as text: a string as it
// is, a list of parts as their texts joined.
func outputText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []itemPart
	if json.Unmarshal(raw, &parts) == nil {
		var b strings.Builder
		for _, p := range parts {
			if p.Text != nil {
				b.WriteString(*p.Text)
			}
		}
		return b.String()
	}
	return string(raw)
}

// chatRequest builds the canonical chat request for a Responses request
// over the conversation items.
func (req *responseRequest) chatRequest(items []item) (*llm.Request, error) {
	msgs, err := messages(items)
	if err != nil {
		return nil, err
	}
	if req.Instructions != nil && *req.Instructions != "" {
		msgs = append([]llm.Message{{Role: llm.RoleSystem, Content: []llm.Part{{Type: llm.PartText, Text: *req.Instructions}}}}, msgs...)
	}
	out := &llm.Request{Model: req.Model, Messages: msgs, MaxTokens: req.MaxOutputTokens, Temperature: req.Temperature,
		TopP: req.TopP, Stream: req.Stream, User: req.User, Dialect: openaiwire.Dialect}
	for i, t := range req.Tools {
		if t.Type != "function" {
			return nil, llm.BadRequest(fmt.Sprintf("tools[%d].type", i), "tools[%d].type: %q is not supported: Junction serves function tools", i, t.Type)
		}
		if t.Name == "" {
			return nil, llm.BadRequest(fmt.Sprintf("tools[%d].name", i), "tools[%d].name: required", i)
		}
		out.Tools = append(out.Tools, llm.Tool{Name: t.Name, Description: t.Description, Parameters: t.Parameters, Strict: t.Strict != nil && *t.Strict})
	}
	if out.ToolChoice, err = responseToolChoice(req.ToolChoice); err != nil {
		return nil, err
	}
	if req.Text != nil && len(req.Text.Format) > 0 {
		if out.ResponseFormat, err = responseFormat(req.Text.Format); err != nil {
			return nil, err
		}
	}
	// Fields only OpenAI's own models take travel as chat-completions
	// fields, which OpenAI-compatible upstreams receive and others drop.
	if req.Reasoning != nil && req.Reasoning.Effort != nil {
		out.Extra = map[string]json.RawMessage{"reasoning_effort": mustJSON(*req.Reasoning.Effort)}
	}
	if req.ParallelToolCalls != nil && len(out.Tools) > 0 {
		if out.Extra == nil {
			out.Extra = map[string]json.RawMessage{}
		}
		out.Extra["parallel_tool_calls"] = mustJSON(*req.ParallelToolCalls)
	}
	return out, nil
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// responseToolChoice reads tool_choice: a mode, or {"type":"function",
// "name":...}.
func responseToolChoice(v json.RawMessage) (*llm.ToolChoice, error) {
	if len(v) == 0 || string(v) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		switch llm.ToolChoiceMode(s) {
		case llm.ToolChoiceAuto, llm.ToolChoiceNone, llm.ToolChoiceRequired:
			return &llm.ToolChoice{Mode: llm.ToolChoiceMode(s)}, nil
		}
		return nil, llm.BadRequest("tool_choice", "tool_choice: %q is not one of auto, none, required", s)
	}
	var obj struct{ Type, Name string }
	if err := json.Unmarshal(v, &obj); err != nil || obj.Type != "function" || obj.Name == "" {
		return nil, llm.BadRequest("tool_choice", `tool_choice: must be "auto", "none", "required" or {"type":"function","name":"..."}`)
	}
	return &llm.ToolChoice{Mode: llm.ToolChoiceTool, Name: obj.Name}, nil
}

// responseFormat turns text.format into chat's response_format: the JSON
// schema's name, schema and strict move under json_schema.
func responseFormat(v json.RawMessage) (json.RawMessage, error) {
	var f struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Schema      json.RawMessage `json:"schema"`
		Strict      *bool           `json:"strict,omitempty"`
	}
	if err := json.Unmarshal(v, &f); err != nil {
		return nil, llm.BadRequest("text.format", "text.format: %s", llm.JSONProblem(err))
	}
	switch f.Type {
	case "text":
		return nil, nil
	case "json_object":
		return json.RawMessage(`{"type":"json_object"}`), nil
	case "json_schema":
		if f.Name == "" || len(f.Schema) == 0 {
			return nil, llm.BadRequest("text.format", "text.format: a json_schema format needs name and schema")
		}
		js := map[string]any{"name": f.Name, "schema": f.Schema, "strict": f.Strict != nil && *f.Strict}
		if f.Description != "" {
			js["description"] = f.Description
		}
		return mustJSON(map[string]any{"type": "json_schema", "json_schema": js}), nil
	}
	return nil, llm.BadRequest("text.format.type", "text.format.type: %q is not one of text, json_object, json_schema", f.Type)
}
