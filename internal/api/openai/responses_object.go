package openai

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// responseObject is a Responses API response, as answered, streamed in
// the lifecycle events and stored.
type responseObject struct {
	ID                 string             `json:"id"`
	Object             string             `json:"object"`
	CreatedAt          int64              `json:"created_at"`
	Status             string             `json:"status"`
	Error              *responseError     `json:"error"`
	IncompleteDetails  *incompleteDetails `json:"incomplete_details"`
	Instructions       *string            `json:"instructions"`
	MaxOutputTokens    *int               `json:"max_output_tokens"`
	Model              string             `json:"model"`
	Output             []item             `json:"output"`
	ParallelToolCalls  bool               `json:"parallel_tool_calls"`
	PreviousResponseID *string            `json:"previous_response_id"`
	Reasoning          responseReason     `json:"reasoning"`
	Store              bool               `json:"store"`
	Temperature        *float64           `json:"temperature"`
	Text               responseText       `json:"text"`
	ToolChoice         json.RawMessage    `json:"tool_choice"`
	Tools              []responseTool     `json:"tools"`
	TopP               *float64           `json:"top_p"`
	Truncation         string             `json:"truncation"`
	Usage              *responseUsage     `json:"usage"`
	User               *string            `json:"user"`
	Metadata           map[string]string  `json:"metadata"`
}

type responseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type incompleteDetails struct {
	Reason string `json:"reason"`
}

type responseUsage struct {
	InputTokens        int `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int `json:"total_tokens"`
}

func usageObject(u llm.Usage) *responseUsage {
	out := &responseUsage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, TotalTokens: u.InputTokens + u.OutputTokens}
	out.InputTokensDetails.CachedTokens = u.CachedInputTokens
	return out
}

// newResponseID is a fresh response id: random, so that ids say nothing
// about one another.
func newResponseID() string {
	var b [16]byte
	rand.Read(b[:])
	return "resp_" + hex.EncodeToString(b[:])
}

// shell is the response before its output: the request's settings echoed
// back, as OpenAI's response object does.
func (req *responseRequest) shell(id, model string, created int64, store bool) *responseObject {
	o := &responseObject{ID: id, Object: "response", CreatedAt: created, Status: "in_progress", Instructions: req.Instructions,
		MaxOutputTokens: req.MaxOutputTokens, Model: model, Output: []item{}, ParallelToolCalls: req.ParallelToolCalls == nil || *req.ParallelToolCalls,
		Store: store, Temperature: req.Temperature, TopP: req.TopP, Truncation: "disabled", Tools: req.Tools, ToolChoice: req.ToolChoice,
		Metadata: req.Metadata}
	if o.Tools == nil {
		o.Tools = []responseTool{}
	}
	if len(o.ToolChoice) == 0 {
		o.ToolChoice = json.RawMessage(`"auto"`)
	}
	if o.Metadata == nil {
		o.Metadata = map[string]string{}
	}
	if req.PreviousResponseID != "" {
		o.PreviousResponseID = strp(req.PreviousResponseID)
	}
	if req.Reasoning != nil {
		o.Reasoning = *req.Reasoning
	}
	o.Text.Format = json.RawMessage(`{"type":"text"}`)
	if req.Text != nil && len(req.Text.Format) > 0 {
		o.Text.Format = req.Text.Format
	}
	if req.User != "" {
		o.User = strp(req.User)
	}
	return o
}

// finish sets the response's outcome from why generation stopped.
func (o *responseObject) finish(stop llm.StopReason, u llm.Usage) {
	o.Usage = usageObject(u)
	switch stop {
	case llm.StopLength:
		o.Status, o.IncompleteDetails = "incomplete", &incompleteDetails{Reason: "max_output_tokens"}
	case llm.StopContentFilter:
		o.Status, o.IncompleteDetails = "incomplete", &incompleteDetails{Reason: "content_filter"}
	default:
		o.Status = "completed"
	}
}

// outputItems turns a complete answer into output items: its text as one
// assistant message, then a function_call item per tool call.
func outputItems(resp *llm.Response, id string) []item {
	out := []item{}
	text, hasText := "", false
	for _, p := range resp.Content {
		if p.Type == llm.PartText {
			text += p.Text
			hasText = true
		}
	}
	if hasText {
		out = append(out, messageItem(id, text, "completed"))
	}
	n := 0
	for _, p := range resp.Content {
		if p.Type == llm.PartToolCall {
			out = append(out, callItem(id, n, p.ToolCall, p.ToolCall.Arguments, "completed"))
			n++
		}
	}
	return out
}

// messageItem is the assistant message of response id.
func messageItem(id, text, status string) item {
	it := item{Type: "message", ID: "msg_" + id[len("resp_"):], Status: status, Role: "assistant", Content: []itemPart{}}
	if status == "completed" {
		it.Content = []itemPart{textPart(text)}
	}
	return it
}

func textPart(text string) itemPart {
	return itemPart{Type: "output_text", Text: strp(text), Annotations: json.RawMessage("[]")}
}

// callItem is the n-th function call of response id.
func callItem(id string, n int, tc *llm.ToolCall, args, status string) item {
	callID := tc.ID
	if callID == "" {
		callID = "call_" + id[len("resp_"):] + "_" + strconv.Itoa(n)
	}
	return item{Type: "function_call", ID: "fc_" + id[len("resp_"):] + "_" + strconv.Itoa(n), Status: status,
		CallID: callID, Name: tc.Name, Arguments: strp(args)}
}
