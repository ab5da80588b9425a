package gemini

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// The Gemini API's generateContent shapes (ai.google.dev/api/generate-content).

type request struct {
	Contents          []content         `json:"contents"`
	SystemInstruction *content          `json:"systemInstruction,omitempty"`
	Tools             []tool            `json:"tools,omitempty"`
	ToolConfig        *toolConfig       `json:"toolConfig,omitempty"`
	GenerationConfig  *generationConfig `json:"generationConfig,omitempty"`
}

type content struct {
	Role  string `json:"role,omitempty"`
	Parts []part `json:"parts"`
}

type part struct {
	Text             string            `json:"text,omitempty"`
	InlineData       *blob             `json:"inlineData,omitempty"`
	FileData         *fileData         `json:"fileData,omitempty"`
	FunctionCall     *functionCall     `json:"functionCall,omitempty"`
	FunctionResponse *functionResponse `json:"functionResponse,omitempty"`
	Thought          bool              `json:"thought,omitempty"`
}

type blob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"`
}

type fileData struct {
	MimeType string `json:"mimeType,omitempty"`
	FileURI  string `json:"fileUri"`
}

type functionCall struct {
	ID   string          `json:"id,omitempty"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

type functionResponse struct {
	ID       string          `json:"id,omitempty"`
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

type tool struct {
	FunctionDeclarations []functionDeclaration `json:"functionDeclarations"`
}

type functionDeclaration struct {
	Name                 string          `json:"name"`
	Description          string          `json:"description,omitempty"`
	ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema,omitempty"`
}

type toolConfig struct {
	FunctionCallingConfig struct {
		Mode                 string   `json:"mode"`
		AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
	} `json:"functionCallingConfig"`
}

type generationConfig struct {
	MaxOutputTokens    *int            `json:"maxOutputTokens,omitempty"`
	Temperature        *float64        `json:"temperature,omitempty"`
	TopP               *float64        `json:"topP,omitempty"`
	StopSequences      []string        `json:"stopSequences,omitempty"`
	ResponseMimeType   string          `json:"responseMimeType,omitempty"`
	ResponseJSONSchema json.RawMessage `json:"responseJsonSchema,omitempty"`
}

// response is a GenerateContentResponse, whole or one streamed chunk.
type response struct {
	Candidates     []candidate     `json:"candidates"`
	PromptFeedback *promptFeedback `json:"promptFeedback,omitempty"`
	UsageMetadata  *usageMetadata  `json:"usageMetadata,omitempty"`
	ModelVersion   string          `json:"modelVersion,omitempty"`
	ResponseID     string          `json:"responseId,omitempty"`
}

type candidate struct {
	Content      *content `json:"content,omitempty"`
	FinishReason string   `json:"finishReason,omitempty"`
	Index        int      `json:"index"`
}

type promptFeedback struct {
	BlockReason string `json:"blockReason,omitempty"`
}

type usageMetadata struct {
	PromptTokenCount        int `json:"promptTokenCount"`
	CandidatesTokenCount    int `json:"candidatesTokenCount"`
	TotalTokenCount         int `json:"totalTokenCount"`
	CachedContentTokenCount int `json:"cachedContentTokenCount"`
	ThoughtsTokenCount      int `json:"thoughtsTokenCount"`
}

// errorResponse is Google's error body.
type errorResponse struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

// encodeRequest renders a canonical request as a generateContent body.
// System messages become systemInstruction; assistant turns are role
// model; tool results are functionResponse parts of a user turn, named
// after the call they answer (Gemini matches results to calls by name).
func encodeRequest(req *llm.Request) ([]byte, error) {
	out := request{Contents: []content{}}
	names := map[string]string{} // tool call id -> function name
	for _, m := range req.Messages {
		var parts []part
		for _, p := range m.Content {
			switch p.Type {
			case llm.PartText:
				if p.Text != "" {
					parts = append(parts, part{Text: p.Text})
				}
			case llm.PartImage:
				if p.Image.URL != "" {
					parts = append(parts, part{FileData: &fileData{MimeType: p.Image.MediaType, FileURI: p.Image.URL}})
				} else {
					parts = append(parts, part{InlineData: &blob{MimeType: p.Image.MediaType, Data: base64.StdEncoding.EncodeToString(p.Image.Data)}})
				}
			case llm.PartToolCall:
				names[p.ToolCall.ID] = p.ToolCall.Name
				args := json.RawMessage(p.ToolCall.Arguments)
				if len(args) == 0 {
					args = json.RawMessage("{}")
				}
				if !json.Valid(args) {
					return nil, llm.BadRequest("messages", "tool call %s: arguments are not JSON", p.ToolCall.ID)
				}
				parts = append(parts, part{FunctionCall: &functionCall{ID: p.ToolCall.ID, Name: p.ToolCall.Name, Args: args}})
			case llm.PartToolResult:
				tr := p.ToolResult
				name, ok := names[tr.CallID]
				if !ok {
					return nil, llm.BadRequest("messages", "tool result %s: answers no tool call earlier in the conversation (Gemini names results by function)", tr.CallID)
				}
				parts = append(parts, part{FunctionResponse: &functionResponse{ID: tr.CallID, Name: name, Response: resultObject(tr)}})
			}
		}
		if len(parts) == 0 {
			continue
		}
		switch m.Role {
		case llm.RoleSystem:
			if out.SystemInstruction == nil {
				out.SystemInstruction = &content{}
			}
			out.SystemInstruction.Parts = append(out.SystemInstruction.Parts, parts...)
			continue
		case llm.RoleAssistant:
			out.Contents = appendTurn(out.Contents, "model", parts)
		default: // user and tool turns
			out.Contents = appendTurn(out.Contents, "user", parts)
		}
	}
	if len(req.Tools) > 0 {
		t := tool{}
		for _, tl := range req.Tools {
			t.FunctionDeclarations = append(t.FunctionDeclarations, functionDeclaration{Name: tl.Name, Description: tl.Description, ParametersJSONSchema: tl.Parameters})
		}
		out.Tools = []tool{t}
	}
	if tc := req.ToolChoice; tc != nil {
		cfg := &toolConfig{}
		switch tc.Mode {
		case llm.ToolChoiceNone:
			cfg.FunctionCallingConfig.Mode = "NONE"
		case llm.ToolChoiceRequired:
			cfg.FunctionCallingConfig.Mode = "ANY"
		case llm.ToolChoiceTool:
			cfg.FunctionCallingConfig.Mode = "ANY"
			cfg.FunctionCallingConfig.AllowedFunctionNames = []string{tc.Name}
		default:
			cfg.FunctionCallingConfig.Mode = "AUTO"
		}
		out.ToolConfig = cfg
	}
	gc := generationConfig{MaxOutputTokens: req.MaxTokens, Temperature: req.Temperature, TopP: req.TopP, StopSequences: req.Stop}
	if len(req.ResponseFormat) > 0 {
		var rf struct {
			Type       string `json:"type"`
			JSONSchema struct {
				Schema json.RawMessage `json:"schema"`
			} `json:"json_schema"`
		}
		json.Unmarshal(req.ResponseFormat, &rf)
		switch rf.Type {
		case "json_object":
			gc.ResponseMimeType = "application/json"
		case "json_schema":
			gc.ResponseMimeType, gc.ResponseJSONSchema = "application/json", rf.JSONSchema.Schema
		}
	}
	if gc.MaxOutputTokens != nil || gc.Temperature != nil || gc.TopP != nil || gc.StopSequences != nil || gc.ResponseMimeType != "" {
		out.GenerationConfig = &gc
	}
	return json.Marshal(out)
}

// resultObject is a tool result as functionResponse.response, which must
// be an object: JSON objects pass as they are, anything else is wrapped.
func resultObject(tr *llm.ToolResult) json.RawMessage {
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(tr.Content), &obj) == nil && obj != nil {
		return json.RawMessage(tr.Content)
	}
	key := "output"
	if tr.IsError {
		key = "error"
	}
	b, _ := json.Marshal(map[string]string{key: tr.Content})
	return b
}

// appendTurn adds parts to the conversation, joining consecutive parts of
// one role into one turn, as Gemini expects turns to alternate.
func appendTurn(turns []content, role string, parts []part) []content {
	if n := len(turns); n > 0 && turns[n-1].Role == role {
		turns[n-1].Parts = append(turns[n-1].Parts, parts...)
		return turns
	}
	return append(turns, content{Role: role, Parts: parts})
}

// stopReason maps a candidate's finishReason: the safety family are
// content-filter refusals.
func stopReason(r string, calls bool) llm.StopReason {
	switch r {
	case "MAX_TOKENS":
		return llm.StopLength
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE":
		return llm.StopContentFilter
	}
	if calls {
		return llm.StopToolCalls
	}
	return llm.StopEnd
}

func (u *usageMetadata) canonical() llm.Usage {
	if u == nil {
		return llm.Usage{}
	}
	// Thinking tokens are billed as output.
	return llm.Usage{InputTokens: u.PromptTokenCount, OutputTokens: u.CandidatesTokenCount + u.ThoughtsTokenCount, CachedInputTokens: u.CachedContentTokenCount}
}

// callID is a function call's id: Gemini's own when it gave one, else one
// made from the position, which the conversation carries back.
func callID(fc *functionCall, n int) string {
	if fc.ID != "" {
		return fc.ID
	}
	return "call_" + fc.Name + "_" + strconv.Itoa(n)
}

func args(fc *functionCall) string {
	if len(fc.Args) == 0 {
		return "{}"
	}
	return string(fc.Args)
}

// decodeResponse reads a whole generateContent answer. A prompt blocked
// by safety settings is an empty answer with the content_filter stop
// reason: a refusal, which routes may send to their policy fallbacks.
func decodeResponse(b []byte) (*llm.Response, error) {
	var r response
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	out := &llm.Response{ID: r.ResponseID, Model: r.ModelVersion, Usage: r.UsageMetadata.canonical()}
	if len(r.Candidates) == 0 {
		if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
			out.StopReason = llm.StopContentFilter
			return out, nil
		}
		return nil, fmt.Errorf("no candidates and no promptFeedback")
	}
	c := r.Candidates[0]
	calls := 0
	if c.Content != nil {
		for _, p := range c.Content.Parts {
			switch {
			case p.Thought:
			case p.FunctionCall != nil:
				out.Content = append(out.Content, llm.Part{Type: llm.PartToolCall,
					ToolCall: &llm.ToolCall{ID: callID(p.FunctionCall, calls), Name: p.FunctionCall.Name, Arguments: args(p.FunctionCall)}})
				calls++
			case p.Text != "":
				out.Content = append(out.Content, llm.Part{Type: llm.PartText, Text: p.Text})
			}
		}
	}
	out.StopReason = stopReason(c.FinishReason, calls > 0)
	return out, nil
}
