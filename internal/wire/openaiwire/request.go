package openaiwire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// Dialect is the llm.Request.Dialect of requests decoded from this format.
const Dialect = "openai"

// DecodeChatRequest parses and validates a chat-completions body. Errors are
// *llm.Error 400s whose message names the offending field. Top-level fields
// that are not modelled are kept in the request's Extra.
func DecodeChatRequest(body []byte) (*llm.Request, error) {
	if req, ok := scanChatRequest(body); ok {
		return req, nil
	}
	return decodeChatRequest(body)
}

// decodeChatRequest is DecodeChatRequest with encoding/json alone: the
// reference scanChatRequest is held to, and the one that words errors.
func decodeChatRequest(body []byte) (*llm.Request, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, llm.BadRequest("", "request body is not valid JSON: %v", err)
	}
	if top == nil {
		return nil, llm.BadRequest("", "request body must be a JSON object")
	}
	req := &llm.Request{Dialect: Dialect}
	var maxCompletion *int
	for k, v := range top {
		var err error
		switch k {
		case "model":
			err = json.Unmarshal(v, &req.Model)
		case "messages":
			req.Messages, err = decodeMessages(v)
		case "max_tokens":
			err = json.Unmarshal(v, &req.MaxTokens)
		case "max_completion_tokens":
			err = json.Unmarshal(v, &maxCompletion)
			req.Extra = setExtra(req.Extra, k, v)
		case "temperature":
			err = json.Unmarshal(v, &req.Temperature)
		case "top_p":
			err = json.Unmarshal(v, &req.TopP)
		case "stream":
			err = json.Unmarshal(v, &req.Stream)
		case "user":
			err = json.Unmarshal(v, &req.User)
		default:
			err = rawMember(req, k, v)
		}
		if err != nil {
			if e, ok := err.(*llm.Error); ok {
				return nil, e
			}
			return nil, llm.BadRequest(k, "%s: %s", k, llm.JSONProblem(err))
		}
	}
	if err := checkChatRequest(req, maxCompletion); err != nil {
		return nil, err
	}
	return req, nil
}

// rawMember decodes a member of a chat request that is kept as its bytes
// or decoded from them apart: stop, tools, tool_choice, response_format,
// and the members Junction does not model (in Extra, forwarded as they
// are; stream_options among them, which the inbound handler reads:
// Junction always asks the upstream for usage and sends it to the client
// only if asked).
func rawMember(req *llm.Request, k string, v json.RawMessage) (err error) {
	switch k {
	case "stop":
		req.Stop, err = decodeStop(v)
	case "tools":
		req.Tools, err = decodeTools(v)
	case "tool_choice":
		req.ToolChoice, err = decodeToolChoice(v)
	case "response_format":
		if !isNull(v) {
			req.ResponseFormat = v
		}
	default:
		req.Extra = setExtra(req.Extra, k, v)
	}
	return err
}

// checkChatRequest checks what a decoded request must hold, and takes
// max_completion_tokens as the cap when max_tokens is not given.
func checkChatRequest(req *llm.Request, maxCompletion *int) error {
	if req.Model == "" {
		return llm.BadRequest("model", "model: required (a model name from GET /v1/models)")
	}
	if len(req.Messages) == 0 {
		return llm.BadRequest("messages", "messages: required, a non-empty array of messages")
	}
	if req.MaxTokens == nil && maxCompletion != nil {
		req.MaxTokens = maxCompletion
	}
	if req.MaxTokens != nil && *req.MaxTokens < 1 {
		return llm.BadRequest("max_tokens", "max_tokens: must be at least 1")
	}
	if req.Temperature != nil && (*req.Temperature < 0 || *req.Temperature > 2) {
		return llm.BadRequest("temperature", "temperature: must be between 0 and 2")
	}
	if req.TopP != nil && (*req.TopP < 0 || *req.TopP > 1) {
		return llm.BadRequest("top_p", "top_p: must be between 0 and 1")
	}
	return nil
}

// IncludeUsage reports whether the client asked for a usage chunk at the
// end of a stream (stream_options.include_usage).
func IncludeUsage(req *llm.Request) bool {
	v, ok := req.Extra["stream_options"]
	if !ok {
		return false
	}
	// The two forms clients send, without a decode; anything else decodes.
	switch string(v) {
	case `{"include_usage":true}`:
		return true
	case `{"include_usage":false}`, "null":
		return false
	}
	var so StreamOptions
	return json.Unmarshal(v, &so) == nil && so.IncludeUsage
}

func setExtra(m map[string]json.RawMessage, k string, v json.RawMessage) map[string]json.RawMessage {
	if m == nil {
		m = make(map[string]json.RawMessage, 4)
	}
	m[k] = v
	return m
}

func isNull(v json.RawMessage) bool { return len(v) == 0 || string(v) == "null" }

func decodeMessages(v json.RawMessage) ([]llm.Message, error) {
	var wire []Message
	if err := json.Unmarshal(v, &wire); err != nil {
		return nil, llm.BadRequest("messages", "messages: %s", llm.JSONProblem(err))
	}
	return messagesFromWire(wire)
}

// messagesFromWire checks decoded messages and makes them canonical.
func messagesFromWire(wire []Message) ([]llm.Message, error) {
	out := make([]llm.Message, 0, len(wire))
	for i, m := range wire {
		path := fmt.Sprintf("messages[%d]", i)
		msg := llm.Message{Name: m.Name}
		switch m.Role {
		case "system", "developer":
			msg.Role = llm.RoleSystem
		case "user":
			msg.Role = llm.RoleUser
		case "assistant":
			msg.Role = llm.RoleAssistant
		case "tool":
			msg.Role = llm.RoleTool
		case "":
			return nil, llm.BadRequest(path+".role", "%s.role: required (system, developer, user, assistant or tool)", path)
		default:
			return nil, llm.BadRequest(path+".role", "%s.role: %q is not one of system, developer, user, assistant, tool", path, m.Role)
		}
		parts, err := decodeContent(path, m.Content)
		if err != nil {
			return nil, err
		}
		if msg.Role == llm.RoleTool {
			if m.ToolCallID == "" {
				return nil, llm.BadRequest(path+".tool_call_id", "%s.tool_call_id: required on tool messages", path)
			}
			var text strings.Builder
			for _, p := range parts {
				text.WriteString(p.Text)
			}
			parts = []llm.Part{{Type: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: m.ToolCallID, Content: text.String()}}}
		}
		for j, tc := range m.ToolCalls {
			if msg.Role != llm.RoleAssistant {
				return nil, llm.BadRequest(path+".tool_calls", "%s.tool_calls: only assistant messages carry tool calls", path)
			}
			if tc.ID == "" || tc.Function.Name == "" {
				return nil, llm.BadRequest(fmt.Sprintf("%s.tool_calls[%d]", path, j), "%s.tool_calls[%d]: id and function.name are required", path, j)
			}
			parts = append(parts, llm.Part{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments}})
		}
		if len(parts) == 0 && msg.Role != llm.RoleAssistant {
			return nil, llm.BadRequest(path+".content", "%s.content: required", path)
		}
		msg.Content = parts
		out = append(out, msg)
	}
	return out, nil
}

func decodeContent(path string, v json.RawMessage) ([]llm.Part, error) {
	if isNull(v) {
		return nil, nil
	}
	if v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, llm.BadRequest(path+".content", "%s.content: %s", path, llm.JSONProblem(err))
		}
		return []llm.Part{{Type: llm.PartText, Text: s}}, nil
	}
	var wire []ContentPart
	if err := json.Unmarshal(v, &wire); err != nil {
		return nil, llm.BadRequest(path+".content", "%s.content: must be a string or an array of content parts", path)
	}
	parts := make([]llm.Part, 0, len(wire))
	for i, p := range wire {
		pp := fmt.Sprintf("%s.content[%d]", path, i)
		switch p.Type {
		case "text":
			parts = append(parts, llm.Part{Type: llm.PartText, Text: p.Text})
		case "image_url":
			if p.ImageURL == nil || p.ImageURL.URL == "" {
				return nil, llm.BadRequest(pp+".image_url.url", "%s.image_url.url: required", pp)
			}
			img, err := DecodeImageURL(pp, p.ImageURL)
			if err != nil {
				return nil, err
			}
			parts = append(parts, llm.Part{Type: llm.PartImage, Image: img})
		default:
			return nil, llm.BadRequest(pp+".type", "%s.type: %q is not supported (text or image_url)", pp, p.Type)
		}
	}
	return parts, nil
}

// DecodeImageURL reads an image given by URL: a data: URL (base64) is
// decoded, an http(s) URL kept; errors are 400s naming path.
func DecodeImageURL(path string, u *ImageURL) (*llm.Image, error) {
	img := &llm.Image{Detail: u.Detail}
	rest, ok := strings.CutPrefix(u.URL, "data:")
	if !ok {
		img.URL = u.URL
		return img, nil
	}
	meta, data, ok := strings.Cut(rest, ",")
	mediaType, isB64 := strings.CutSuffix(meta, ";base64")
	if !ok || !isB64 {
		return nil, llm.BadRequest(path+".image_url.url", "%s.image_url.url: data URLs must be base64 (data:image/png;base64,...)", path)
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, llm.BadRequest(path+".image_url.url", "%s.image_url.url: invalid base64 data: %v", path, err)
	}
	img.MediaType, img.Data = mediaType, b
	return img, nil
}

func decodeStop(v json.RawMessage) ([]string, error) {
	if isNull(v) {
		return nil, nil
	}
	if v[0] == '"' {
		var s string
		err := json.Unmarshal(v, &s)
		return []string{s}, err
	}
	var ss []string
	if err := json.Unmarshal(v, &ss); err != nil {
		return nil, llm.BadRequest("stop", "stop: must be a string or an array of strings")
	}
	return ss, nil
}

func decodeTools(v json.RawMessage) ([]llm.Tool, error) {
	var wire []Tool
	if err := json.Unmarshal(v, &wire); err != nil {
		return nil, llm.BadRequest("tools", "tools: %s", llm.JSONProblem(err))
	}
	tools := make([]llm.Tool, 0, len(wire))
	for i, t := range wire {
		if t.Type != "function" {
			return nil, llm.BadRequest(fmt.Sprintf("tools[%d].type", i), "tools[%d].type: must be \"function\"", i)
		}
		if t.Function.Name == "" {
			return nil, llm.BadRequest(fmt.Sprintf("tools[%d].function.name", i), "tools[%d].function.name: required", i)
		}
		tools = append(tools, llm.Tool{Name: t.Function.Name, Description: t.Function.Description,
			Parameters: t.Function.Parameters, Strict: t.Function.Strict != nil && *t.Function.Strict})
	}
	return tools, nil
}

func decodeToolChoice(v json.RawMessage) (*llm.ToolChoice, error) {
	if isNull(v) {
		return nil, nil
	}
	if v[0] == '"' {
		var s string
		_ = json.Unmarshal(v, &s)
		switch llm.ToolChoiceMode(s) {
		case llm.ToolChoiceAuto, llm.ToolChoiceNone, llm.ToolChoiceRequired:
			return &llm.ToolChoice{Mode: llm.ToolChoiceMode(s)}, nil
		}
		return nil, llm.BadRequest("tool_choice", "tool_choice: %q is not one of auto, none, required", s)
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(v, &obj); err != nil || obj.Type != "function" || obj.Function.Name == "" {
		return nil, llm.BadRequest("tool_choice", `tool_choice: must be "auto", "none", "required" or {"type":"function","function":{"name":"..."}}`)
	}
	return &llm.ToolChoice{Mode: llm.ToolChoiceTool, Name: obj.Function.Name}, nil
}

// EncodeChatRequest renders a canonical request as a chat-completions body
// for an OpenAI-compatible upstream. Streams always ask for usage. Extra
// fields are forwarded when the request came in through an OpenAI surface.
func EncodeChatRequest(req *llm.Request) ([]byte, error) {
	w := ChatRequest{
		Model:       req.Model,
		Messages:    EncodeMessages(req.Messages),
		MaxTokens:   req.MaxTokens,
		Temperature: req.Temperature,
		TopP:        req.TopP,
		Stream:      req.Stream,
		User:        req.User,
	}
	passExtra := req.Dialect == Dialect && len(req.Extra) > 0
	if passExtra {
		if _, ok := req.Extra["max_completion_tokens"]; ok {
			w.MaxTokens = nil // the client chose the newer name; forward only that
		}
	}
	if w.MaxTokens != nil && reasoningModel(req.Model) {
		// OpenAI's reasoning models refuse max_tokens.
		w.MaxCompletionTokens, w.MaxTokens = w.MaxTokens, nil
	}
	if len(req.Stop) > 0 {
		w.Stop, _ = json.Marshal(req.Stop)
	}
	for _, t := range req.Tools {
		ft := Tool{Type: "function", Function: FunctionSpec{Name: t.Name, Description: t.Description, Parameters: t.Parameters}}
		if t.Strict {
			ft.Function.Strict = &t.Strict
		}
		w.Tools = append(w.Tools, ft)
	}
	if tc := req.ToolChoice; tc != nil {
		if tc.Mode == llm.ToolChoiceTool {
			w.ToolChoice, _ = json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": tc.Name}})
		} else {
			w.ToolChoice, _ = json.Marshal(string(tc.Mode))
		}
	}
	w.ResponseFormat = req.ResponseFormat
	if req.Stream {
		w.StreamOptions = &StreamOptions{IncludeUsage: true}
	}
	if req.Continue {
		no := false
		w.ContinueFinalMessage, w.AddGenerationPrompt = true, &no
	}
	b, err := json.Marshal(&w)
	if err != nil || !passExtra {
		return b, err
	}
	return appendFields(b, req.Extra, "stream_options"), nil
}

// appendFields adds extra's members, except skip, to the JSON object b.
func appendFields(b []byte, extra map[string]json.RawMessage, skip string) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b) + 256)
	buf.Write(b[:len(b)-1])
	for k, v := range extra {
		if k == skip {
			continue
		}
		kb, _ := json.Marshal(k)
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

// EncodeMessages renders canonical messages in OpenAI's shape. A tool
// message holding several results becomes several tool messages.
func EncodeMessages(msgs []llm.Message) []Message {
	out := make([]Message, 0, len(msgs))
	for _, m := range msgs {
		if m.Role == llm.RoleTool || hasOnlyToolResults(m) {
			for _, p := range m.Content {
				if p.Type == llm.PartToolResult {
					c, _ := json.Marshal(p.ToolResult.Content)
					out = append(out, Message{Role: "tool", ToolCallID: p.ToolResult.CallID, Content: c})
				}
			}
			continue
		}
		w := Message{Role: string(m.Role), Name: m.Name}
		var parts []ContentPart
		textOnly := true
		for _, p := range m.Content {
			switch p.Type {
			case llm.PartText:
				parts = append(parts, ContentPart{Type: "text", Text: p.Text})
			case llm.PartImage:
				textOnly = false
				u := p.Image.URL
				if u == "" {
					u = "data:" + p.Image.MediaType + ";base64," + base64.StdEncoding.EncodeToString(p.Image.Data)
				}
				parts = append(parts, ContentPart{Type: "image_url", ImageURL: &ImageURL{URL: u, Detail: p.Image.Detail}})
			case llm.PartToolCall:
				w.ToolCalls = append(w.ToolCalls, ToolCall{ID: p.ToolCall.ID, Type: "function",
					Function: FunctionCall{Name: p.ToolCall.Name, Arguments: p.ToolCall.Arguments}})
			}
		}
		switch {
		case len(parts) == 0:
			if m.Role == llm.RoleAssistant {
				w.Content = json.RawMessage(`null`) // a tool-calling turn
			} else {
				w.Content = json.RawMessage(`""`)
			}
		case textOnly && len(parts) == 1:
			w.Content, _ = json.Marshal(parts[0].Text)
		default:
			w.Content, _ = json.Marshal(parts)
		}
		out = append(out, w)
	}
	return out
}

func hasOnlyToolResults(m llm.Message) bool {
	if len(m.Content) == 0 {
		return false
	}
	for _, p := range m.Content {
		if p.Type != llm.PartToolResult {
			return false
		}
	}
	return true
}

// DecodeEmbedRequest parses and validates an embeddings body.
func DecodeEmbedRequest(body []byte) (*llm.EmbedRequest, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return nil, llm.BadRequest("", "request body must be a JSON object")
	}
	req := &llm.EmbedRequest{}
	for k, v := range top {
		var err error
		switch k {
		case "model":
			err = json.Unmarshal(v, &req.Model)
		case "input":
			req.Input = v
		case "encoding_format":
			err = json.Unmarshal(v, &req.EncodingFormat)
		case "dimensions":
			err = json.Unmarshal(v, &req.Dimensions)
		case "user":
			err = json.Unmarshal(v, &req.User)
		default:
			req.Extra = setExtra(req.Extra, k, v)
		}
		if err != nil {
			return nil, llm.BadRequest(k, "%s: %s", k, llm.JSONProblem(err))
		}
	}
	if req.Model == "" {
		return nil, llm.BadRequest("model", "model: required")
	}
	if isNull(req.Input) {
		return nil, llm.BadRequest("input", "input: required, a string or an array of strings")
	}
	switch req.Input[0] {
	case '"':
	case '[':
		if string(bytes.TrimSpace(req.Input)) == "[]" {
			return nil, llm.BadRequest("input", "input: must not be empty")
		}
	default:
		return nil, llm.BadRequest("input", "input: must be a string or an array of strings or token arrays")
	}
	return req, nil
}

// EncodeEmbedRequest renders an embeddings body for an upstream.
func EncodeEmbedRequest(req *llm.EmbedRequest) ([]byte, error) {
	b, err := json.Marshal(EmbedRequest{Model: req.Model, Input: req.Input, EncodingFormat: req.EncodingFormat,
		Dimensions: req.Dimensions, User: req.User})
	if err != nil || len(req.Extra) == 0 {
		return b, err
	}
	return appendFields(b, req.Extra, ""), nil
}

// reasoningModel reports whether an OpenAI model id names a reasoning
// model (o1, o3, o4-mini, gpt-5...), which takes max_completion_tokens
// instead of max_tokens.
func reasoningModel(model string) bool {
	if i := strings.LastIndexByte(model, '/'); i >= 0 {
		model = model[i+1:]
	}
	if strings.HasPrefix(model, "gpt-5") {
		return true
	}
	return len(model) >= 2 && model[0] == 'o' && model[1] >= '1' && model[1] <= '9'
}
