// Package llm holds Junction's canonical chat and embedding types and the
// Provider interface that every outbound adapter implements.
//
// Inbound surfaces (OpenAI, Anthropic, Bedrock) translate their wire format
// into these types, and provider adapters translate these types into each
// upstream's wire format, so a protocol is added by writing one adapter.
// The package imports nothing of the project and does no I/O.
package llm

import (
	"context"
	"encoding/json"
	"fmt"
)

// Role is the author of a message.
type Role string

// Message roles. System messages stay in the message list so that an
// OpenAI-to-OpenAI call keeps their position; adapters for APIs with a
// separate system field lift them out.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool"
)

// PartType says which field of a Part is set.
type PartType string

// Content part types.
const (
	PartText       PartType = "text"
	PartImage      PartType = "image"
	PartToolCall   PartType = "tool_call"
	PartToolResult PartType = "tool_result"
)

// Part is one piece of a message's content.
type Part struct {
	Type PartType
	// Text is set for PartText.
	Text string
	// Image is set for PartImage.
	Image *Image
	// ToolCall is set for PartToolCall (assistant messages).
	ToolCall *ToolCall
	// ToolResult is set for PartToolResult (tool or user messages).
	ToolResult *ToolResult
}

// Image is an image input, given either inline or by URL.
type Image struct {
	// MediaType is the MIME type, e.g. "image/png"; set with Data.
	MediaType string
	// Data is the raw image bytes (not base64).
	Data []byte
	// URL is an http(s) URL when the image is given by reference.
	URL string
	// Detail is OpenAI's optional detail hint ("low", "high", "auto").
	Detail string
}

// ToolCall is a model's request to call a tool.
type ToolCall struct {
	ID   string
	Name string
	// Arguments is the JSON-encoded argument object, as the model wrote it.
	Arguments string
}

// ToolResult is the result of a tool call sent back to the model.
type ToolResult struct {
	CallID  string
	Content string
	IsError bool
}

// Message is one turn of a conversation.
type Message struct {
	Role    Role
	Content []Part
	// Name is OpenAI's optional participant name.
	Name string
}

// Text returns the concatenated text parts of the message.
func (m Message) Text() string {
	if len(m.Content) == 1 && m.Content[0].Type == PartText {
		return m.Content[0].Text
	}
	var n int
	for _, p := range m.Content {
		n += len(p.Text)
	}
	b := make([]byte, 0, n)
	for _, p := range m.Content {
		if p.Type == PartText {
			b = append(b, p.Text...)
		}
	}
	return string(b)
}

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the argument object.
	Parameters json.RawMessage
	// Strict asks for exact schema adherence where the upstream supports it.
	Strict bool
}

// ToolChoiceMode says how the model should pick tools.
type ToolChoiceMode string

// Tool choice modes.
const (
	ToolChoiceAuto     ToolChoiceMode = "auto"
	ToolChoiceNone     ToolChoiceMode = "none"
	ToolChoiceRequired ToolChoiceMode = "required"
	ToolChoiceTool     ToolChoiceMode = "tool"
)

// ToolChoice constrains tool use. Name is set when Mode is ToolChoiceTool.
type ToolChoice struct {
	Mode ToolChoiceMode
	Name string
}

// Request is a canonical chat request.
type Request struct {
	// Model is the upstream model id the provider should call. Inbound
	// surfaces put the client's model name here; the gateway replaces it
	// with the configured upstream model before calling a provider.
	Model       string
	Messages    []Message
	MaxTokens   *int
	Temperature *float64
	TopP        *float64
	Stop        []string
	Tools       []Tool
	ToolChoice  *ToolChoice
	// ResponseFormat is OpenAI's response_format object, kept as JSON.
	ResponseFormat json.RawMessage
	Stream         bool
	User           string
	// Extra holds request fields the inbound surface did not model, by
	// their wire name. A provider that speaks the same dialect as the
	// inbound surface (Dialect) forwards them untouched, so new upstream
	// features keep working through Junction.
	Extra   map[string]json.RawMessage
	Dialect string
	// Continue asks the model to continue the trailing assistant message
	// rather than answer after it (a prefill): the gateway sets it to
	// finish a broken stream on another deployment.
	Continue bool
	// Raw is the client's body in Dialect's wire format, set by the gateway
	// only on an attempt that sends the request as the client sent it (no
	// guardrail rewrote it, no continuation): a provider of the same
	// dialect may forward it with only the members it sets itself patched
	// (model, stream options, max_tokens) instead of encoding the request.
	Raw []byte
}

// StopReason says why generation ended, in OpenAI's vocabulary.
type StopReason string

// Stop reasons.
const (
	StopEnd           StopReason = "stop"
	StopLength        StopReason = "length"
	StopToolCalls     StopReason = "tool_calls"
	StopContentFilter StopReason = "content_filter"
)

// Usage counts tokens. InputTokens includes cached tokens, as OpenAI
// reports prompt_tokens; adapters for APIs that report them apart add them.
type Usage struct {
	InputTokens       int
	OutputTokens      int
	CachedInputTokens int
	CacheWriteTokens  int
}

// Add accumulates o into u.
func (u *Usage) Add(o Usage) {
	u.InputTokens += o.InputTokens
	u.OutputTokens += o.OutputTokens
	u.CachedInputTokens += o.CachedInputTokens
	u.CacheWriteTokens += o.CacheWriteTokens
}

// Response is a canonical, complete chat response.
type Response struct {
	ID string
	// Model is the model the upstream says answered.
	Model string
	// Content holds text and tool-call parts in the order produced.
	Content    []Part
	StopReason StopReason
	Usage      Usage
}

// EventType says which fields of an Event are set.
type EventType uint8

// Stream event types. A well-formed stream is Start, any number of
// deltas, Stop, and Usage (which may come before Stop), then io.EOF from
// Recv. A stream that fails returns an *Error from Recv instead of io.EOF.
const (
	// EventStart opens the message; ID and Model are set.
	EventStart EventType = iota + 1
	// EventText carries a text fragment in Text.
	EventText
	// EventToolCall opens a tool call at Index with ToolCall.ID and Name.
	EventToolCall
	// EventToolArgs carries an argument fragment for the tool call at
	// Index in ToolCall.Arguments.
	EventToolArgs
	// EventStop carries the StopReason.
	EventStop
	// EventUsage carries the final token counts.
	EventUsage
)

// Event is one element of a canonical response stream.
type Event struct {
	Type       EventType
	ID         string
	Model      string
	Text       string
	Index      int
	ToolCall   *ToolCall
	StopReason StopReason
	Usage      *Usage
}

// String renders the event on one line, in a form that reads like the
// wire it came from ("text \"Hi\"", "stop end_turn"), for logs and tests.
func (ev Event) String() string {
	switch ev.Type {
	case EventStart:
		return fmt.Sprintf("start %s %s", ev.ID, ev.Model)
	case EventText:
		return fmt.Sprintf("text %q", ev.Text)
	case EventToolCall:
		return fmt.Sprintf("tool %d %s %s", ev.Index, ev.ToolCall.ID, ev.ToolCall.Name)
	case EventToolArgs:
		return fmt.Sprintf("args %d %q", ev.Index, ev.ToolCall.Arguments)
	case EventStop:
		return fmt.Sprintf("stop %s", ev.StopReason)
	case EventUsage:
		u := ev.Usage
		return fmt.Sprintf("usage in=%d out=%d cached=%d write=%d", u.InputTokens, u.OutputTokens, u.CachedInputTokens, u.CacheWriteTokens)
	}
	return fmt.Sprintf("unknown %d", ev.Type)
}

// Stream is a response being received. Recv returns io.EOF after the last
// event of a complete stream. Close releases the upstream connection and
// may be called at any time, more than once.
type Stream interface {
	Recv() (Event, error)
	Close() error
}

// Provider is an upstream that answers chat requests.
type Provider interface {
	// Chat sends a request and waits for the whole response.
	Chat(ctx context.Context, req *Request) (*Response, error)
	// ChatStream sends a request and returns its response as a stream.
	ChatStream(ctx context.Context, req *Request) (Stream, error)
}

// EmbedRequest asks for embeddings of one or more inputs.
type EmbedRequest struct {
	Model string
	// Input is OpenAI's input field as sent: a string, an array of strings
	// or an array of token arrays.
	Input          json.RawMessage
	EncodingFormat string
	Dimensions     *int
	User           string
	Extra          map[string]json.RawMessage
}

// EmbedResponse is the upstream's answer, kept in OpenAI's shape since
// vectors pass through unchanged.
type EmbedResponse struct {
	// Data is the JSON array of embedding objects as the upstream sent it.
	Data  json.RawMessage
	Model string
	Usage Usage
}

// Embedder is a provider that computes embeddings.
type Embedder interface {
	Embed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error)
}
