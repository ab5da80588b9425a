package bedrockwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// DecodeConverseRequest parses and validates a Converse or ConverseStream
// body into a canonical request (whose Model the caller sets from the URL)
// and the request's requestMetadata. Errors are *llm.Error 400s whose
// message starts with the offending member's path
// ("messages[0].content[1].image.source: ...").
//
// System blocks become a leading system message; a user turn's runs of
// toolResult blocks become tool messages, in place, so that upstreams with
// a tool role (OpenAI) get them as such; guardContent text is sent as
// text; cachePoint markers are dropped.
func DecodeConverseRequest(body []byte) (*llm.Request, map[string]string, error) {
	var w ConverseRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, nil, decodeError(err)
	}
	if err := refuse(&w); err != nil {
		return nil, nil, err
	}
	req := &llm.Request{Dialect: Dialect}
	system, err := decodeSystem(w.System)
	if err != nil {
		return nil, nil, err
	}
	if len(system) > 0 {
		req.Messages = append(req.Messages, llm.Message{Role: llm.RoleSystem, Content: system})
	}
	if len(w.Messages) == 0 {
		return nil, nil, llm.BadRequest("messages", "messages: required, a non-empty list of user and assistant turns")
	}
	for i, m := range w.Messages {
		if req.Messages, err = appendMessage(req.Messages, i, m); err != nil {
			return nil, nil, err
		}
	}
	if err := decodeInference(req, w.InferenceConfig); err != nil {
		return nil, nil, err
	}
	if err := decodeTools(req, w.ToolConfig); err != nil {
		return nil, nil, err
	}
	return req, w.RequestMetadata, nil
}

// decodeError turns a JSON error into a 400 naming the member.
func decodeError(err error) *llm.Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return llm.BadRequest(te.Field, "%s: expected %s, got a JSON %s", te.Field, jsonType(te.Type.String()), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return llm.BadRequest("", "request body is not valid JSON: %v (at byte %d)", err, se.Offset)
	}
	if strings.Contains(err.Error(), "illegal base64") {
		return llm.BadRequest("", "an image's source.bytes is not valid base64: %v", err)
	}
	return llm.BadRequest("", "request body is not a valid Converse request: %v", err)
}

func jsonType(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]uint8"):
		return "base64 bytes"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map[") || strings.Contains(goType, "bedrockwire."):
		return "an object"
	case strings.Contains(goType, "int"):
		return "an integer"
	case strings.Contains(goType, "float"):
		return "a number"
	case strings.Contains(goType, "bool"):
		return "a boolean"
	}
	return "a string"
}

// set reports whether a raw member is present and not null or empty.
func set(v json.RawMessage) bool {
	t := bytes.TrimSpace(v)
	return len(t) > 0 && !bytes.Equal(t, []byte("null")) && !bytes.Equal(t, []byte("{}"))
}

// refuse rejects the members Junction cannot honour, so that a client
// never gets an answer made without what it asked for.
func refuse(w *ConverseRequest) error {
	switch {
	case set(w.AdditionalModelRequestFields):
		return llm.BadRequest("additionalModelRequestFields",
			"additionalModelRequestFields: model-specific fields cannot be sent through Junction, which may serve the model from another provider; remove them")
	case len(w.AdditionalModelResponseFieldPaths) > 0:
		return llm.BadRequest("additionalModelResponseFieldPaths", "additionalModelResponseFieldPaths: not supported by Junction; remove it")
	case set(w.PromptVariables):
		return llm.BadRequest("promptVariables", "promptVariables: Bedrock prompt management is not supported by Junction; send the messages")
	case set(w.OutputConfig):
		return llm.BadRequest("outputConfig", "outputConfig: structured output is not supported on Junction's Converse API; describe the format in the prompt or use a tool")
	}
	return nil
}

func decodeSystem(blocks []SystemBlock) ([]llm.Part, error) {
	var parts []llm.Part
	for i, b := range blocks {
		path := fmt.Sprintf("system[%d]", i)
		switch {
		case b.Text != nil:
			parts = append(parts, llm.Part{Type: llm.PartText, Text: *b.Text})
		case b.GuardContent != nil:
			p, err := guardText(path+".guardContent", b.GuardContent)
			if err != nil {
				return nil, err
			}
			parts = append(parts, p)
		case b.CachePoint != nil:
			// A caching hint; the canonical request has no place for it.
		default:
			return nil, llm.BadRequest(path, "%s: a system block needs text, guardContent or cachePoint", path)
		}
	}
	return parts, nil
}

func guardText(path string, g *GuardContent) (llm.Part, error) {
	if g.Text == nil {
		return llm.Part{}, llm.BadRequest(path, "%s: only guardContent text can be sent through Junction, not images", path)
	}
	return llm.Part{Type: llm.PartText, Text: g.Text.Text}, nil
}

// appendMessage appends turn i. A user turn's runs of tool results become
// tool messages and its other blocks user messages, in order.
func appendMessage(out []llm.Message, i int, m Message) ([]llm.Message, error) {
	path := fmt.Sprintf("messages[%d]", i)
	var role llm.Role
	switch m.Role {
	case "user":
		role = llm.RoleUser
	case "assistant":
		role = llm.RoleAssistant
	default:
		return nil, llm.BadRequest(path+".role", "%s.role: %q is not one of user, assistant (a system prompt goes in the top-level system list)", path, m.Role)
	}
	if len(m.Content) == 0 {
		return nil, llm.BadRequest(path+".content", "%s.content: must not be empty", path)
	}
	parts := make([]llm.Part, 0, len(m.Content))
	for j, b := range m.Content {
		p, ok, err := decodeBlock(fmt.Sprintf("%s.content[%d]", path, j), role, b)
		if err != nil {
			return nil, err
		}
		if ok {
			parts = append(parts, p)
		}
	}
	if role != llm.RoleUser || !slices.ContainsFunc(parts, isToolResult) {
		return append(out, llm.Message{Role: role, Content: parts}), nil
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
	return out, nil
}

func isToolResult(p llm.Part) bool { return p.Type == llm.PartToolResult }

// imageTypes maps Converse image formats to media types.
var imageTypes = map[string]string{"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}

// decodeBlock translates one content block; ok is false for a block with
// no canonical form that may be dropped (a cachePoint).
func decodeBlock(path string, role llm.Role, b ContentBlock) (llm.Part, bool, error) {
	switch {
	case b.Text != nil:
		return llm.Part{Type: llm.PartText, Text: *b.Text}, true, nil
	case b.Image != nil:
		img, err := decodeImage(path+".image", b.Image)
		return llm.Part{Type: llm.PartImage, Image: img}, err == nil, err
	case b.ToolUse != nil:
		if role != llm.RoleAssistant {
			return llm.Part{}, false, llm.BadRequest(path+".toolUse", "%s.toolUse: only assistant turns hold toolUse blocks", path)
		}
		tu := b.ToolUse
		if tu.ToolUseID == "" || tu.Name == "" {
			return llm.Part{}, false, llm.BadRequest(path+".toolUse", "%s.toolUse: toolUseId and name are required", path)
		}
		args, err := compactJSON(tu.Input)
		if err != nil {
			return llm.Part{}, false, llm.BadRequest(path+".toolUse.input", "%s.toolUse.input: %v", path, err)
		}
		return llm.Part{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: tu.ToolUseID, Name: tu.Name, Arguments: args}}, true, nil
	case b.ToolResult != nil:
		if role != llm.RoleUser {
			return llm.Part{}, false, llm.BadRequest(path+".toolResult", "%s.toolResult: only user turns hold toolResult blocks", path)
		}
		tr, err := decodeToolResult(path+".toolResult", b.ToolResult)
		return llm.Part{Type: llm.PartToolResult, ToolResult: tr}, err == nil, err
	case b.GuardContent != nil:
		p, err := guardText(path+".guardContent", b.GuardContent)
		return p, err == nil, err
	case b.CachePoint != nil:
		return llm.Part{}, false, nil
	}
	for _, m := range []struct {
		name string
		v    json.RawMessage
	}{{"document", b.Document}, {"video", b.Video}, {"audio", b.Audio}, {"reasoningContent", b.ReasoningContent},
		{"citationsContent", b.CitationsContent}, {"searchResult", b.SearchResult}} {
		if m.v != nil {
			return llm.Part{}, false, llm.BadRequest(path+"."+m.name,
				"%s.%s: %s blocks cannot be mapped to the models Junction serves; send text, image, toolUse or toolResult blocks", path, m.name, m.name)
		}
	}
	return llm.Part{}, false, llm.BadRequest(path, "%s: a content block needs one of text, image, toolUse, toolResult", path)
}

func decodeImage(path string, im *ImageBlock) (*llm.Image, error) {
	mt, ok := imageTypes[im.Format]
	if !ok {
		return nil, llm.BadRequest(path+".format", "%s.format: %q is not one of png, jpeg, gif, webp", path, im.Format)
	}
	if set(im.Source.S3Location) {
		return nil, llm.BadRequest(path+".source.s3Location", "%s.source.s3Location: Junction cannot read S3; send the image inline as source.bytes", path)
	}
	if len(im.Source.Bytes) == 0 {
		return nil, llm.BadRequest(path+".source.bytes", "%s.source.bytes: required, the image as base64", path)
	}
	return &llm.Image{MediaType: mt, Data: im.Source.Bytes}, nil
}

// decodeToolResult joins a result's text and json blocks into the
// canonical result's text, one block a line.
func decodeToolResult(path string, tr *ToolResultBlock) (*llm.ToolResult, error) {
	if tr.ToolUseID == "" {
		return nil, llm.BadRequest(path+".toolUseId", "%s.toolUseId: required", path)
	}
	var text strings.Builder
	for k, c := range tr.Content {
		cp := fmt.Sprintf("%s.content[%d]", path, k)
		if k > 0 {
			text.WriteByte('\n')
		}
		switch {
		case c.Text != nil:
			text.WriteString(*c.Text)
		case c.JSON != nil:
			s, err := compactJSON(c.JSON)
			if err != nil {
				return nil, llm.BadRequest(cp+".json", "%s.json: %v", cp, err)
			}
			text.WriteString(s)
		case c.Image != nil, c.Document != nil, c.Video != nil:
			return nil, llm.BadRequest(cp, "%s: only text and json tool results can be mapped to the models Junction serves", cp)
		default:
			return nil, llm.BadRequest(cp, "%s: a tool result block needs text or json", cp)
		}
	}
	switch tr.Status {
	case "", "success", "error":
	default:
		return nil, llm.BadRequest(path+".status", "%s.status: %q is not one of success, error", path, tr.Status)
	}
	return &llm.ToolResult{CallID: tr.ToolUseID, Content: text.String(), IsError: tr.Status == "error"}, nil
}

// compactJSON returns a JSON value as compact text; absent or null is
// an empty object.
func compactJSON(v json.RawMessage) (string, error) {
	t := bytes.TrimSpace(v)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return "{}", nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, t); err != nil {
		return "", err
	}
	return b.String(), nil
}

func decodeInference(req *llm.Request, ic *InferenceConfig) error {
	if ic == nil {
		return nil
	}
	if ic.MaxTokens != nil && *ic.MaxTokens < 1 {
		return llm.BadRequest("inferenceConfig.maxTokens", "inferenceConfig.maxTokens: must be at least 1")
	}
	if ic.Temperature != nil && (*ic.Temperature < 0 || *ic.Temperature > 1) {
		return llm.BadRequest("inferenceConfig.temperature", "inferenceConfig.temperature: must be between 0 and 1")
	}
	if ic.TopP != nil && (*ic.TopP < 0 || *ic.TopP > 1) {
		return llm.BadRequest("inferenceConfig.topP", "inferenceConfig.topP: must be between 0 and 1")
	}
	for i, s := range ic.StopSequences {
		if s == "" {
			return llm.BadRequest("inferenceConfig.stopSequences", "inferenceConfig.stopSequences[%d]: must not be empty", i)
		}
	}
	req.MaxTokens, req.Temperature, req.TopP, req.Stop = ic.MaxTokens, ic.Temperature, ic.TopP, ic.StopSequences
	return nil
}

func decodeTools(req *llm.Request, tc *ToolConfig) error {
	if tc == nil {
		return nil
	}
	for i, t := range tc.Tools {
		path := fmt.Sprintf("toolConfig.tools[%d]", i)
		switch {
		case t.ToolSpec != nil:
			s := t.ToolSpec
			if s.Name == "" {
				return llm.BadRequest(path+".toolSpec.name", "%s.toolSpec.name: required", path)
			}
			if !set(s.InputSchema.JSON) && !bytes.Equal(bytes.TrimSpace(s.InputSchema.JSON), []byte("{}")) {
				return llm.BadRequest(path+".toolSpec.inputSchema", "%s.toolSpec.inputSchema.json: required, the JSON Schema of the tool's input", path)
			}
			req.Tools = append(req.Tools, llm.Tool{Name: s.Name, Description: s.Description, Parameters: s.InputSchema.JSON,
				Strict: s.Strict != nil && *s.Strict})
		case t.SystemTool != nil:
			return llm.BadRequest(path+".systemTool", "%s.systemTool: Bedrock system tools are not supported by Junction; describe the tool with toolSpec", path)
		case t.CachePoint != nil:
		default:
			return llm.BadRequest(path, "%s: a tool needs toolSpec", path)
		}
	}
	if len(req.Tools) == 0 {
		return llm.BadRequest("toolConfig.tools", "toolConfig.tools: required, at least one toolSpec")
	}
	if c := tc.ToolChoice; c != nil {
		switch {
		case c.Auto != nil:
			req.ToolChoice = &llm.ToolChoice{Mode: llm.ToolChoiceAuto}
		case c.Any != nil:
			req.ToolChoice = &llm.ToolChoice{Mode: llm.ToolChoiceRequired}
		case c.Tool != nil:
			if !slices.ContainsFunc(req.Tools, func(t llm.Tool) bool { return t.Name == c.Tool.Name }) {
				return llm.BadRequest("toolConfig.toolChoice.tool.name", "toolConfig.toolChoice.tool.name: %q is not one of the request's tools", c.Tool.Name)
			}
			req.ToolChoice = &llm.ToolChoice{Mode: llm.ToolChoiceTool, Name: c.Tool.Name}
		default:
			return llm.BadRequest("toolConfig.toolChoice", "toolConfig.toolChoice: one of auto, any or tool is required")
		}
	}
	return nil
}

// GuardrailConfig is Converse's guardrailConfig member.
type GuardrailConfig struct {
	GuardrailIdentifier string `json:"guardrailIdentifier"`
	GuardrailVersion    string `json:"guardrailVersion"`
	// Trace is enabled, disabled or enabled_full.
	Trace string `json:"trace"`
	// StreamProcessingMode is sync or async (ConverseStream only).
	StreamProcessingMode string `json:"streamProcessingMode"`
}

// DecodeGuardrailConfig reads a Converse body's guardrailConfig, or nil
// when it has none.
func DecodeGuardrailConfig(body []byte) (*GuardrailConfig, error) {
	if !bytes.Contains(body, []byte(`"guardrailConfig"`)) {
		return nil, nil
	}
	var w struct {
		GuardrailConfig *GuardrailConfig `json:"guardrailConfig"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, decodeError(err)
	}
	g := w.GuardrailConfig
	if g == nil {
		return nil, nil
	}
	if g.GuardrailIdentifier == "" || g.GuardrailVersion == "" {
		return nil, llm.BadRequest("guardrailConfig", "guardrailConfig: guardrailIdentifier and guardrailVersion are required")
	}
	switch g.Trace {
	case "", "enabled", "disabled", "enabled_full":
	default:
		return nil, llm.BadRequest("guardrailConfig.trace", "guardrailConfig.trace: %q is not one of enabled, disabled, enabled_full", g.Trace)
	}
	switch g.StreamProcessingMode {
	case "", "sync", "async":
	default:
		return nil, llm.BadRequest("guardrailConfig.streamProcessingMode", "guardrailConfig.streamProcessingMode: %q is not one of sync, async", g.StreamProcessingMode)
	}
	return g, nil
}
