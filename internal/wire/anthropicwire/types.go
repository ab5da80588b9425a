// Package anthropicwire holds the Anthropic Messages API wire shapes
// (POST /v1/messages: request, response, stream events, error body) and
// their translation to and from the canonical llm types. Both the inbound
// Anthropic surface and the Anthropic provider adapter use it, so the two
// directions of the same format are written once.
//
// It does no I/O: sending requests, reading SSE framing and writing HTTP
// answers belong to the surface and the adapter.
package anthropicwire

import "encoding/json"

// Version is the anthropic-version header value these shapes follow.
const Version = "2023-06-01"

// Dialect is the llm.Request.Dialect of requests decoded from this format.
// A provider that speaks it forwards llm.Request.Extra into its body.
const Dialect = "anthropic"

// Request is the body of POST /v1/messages as Junction writes it. Clients
// may send more shapes than it writes (string content, system blocks,
// top_k); DecodeRequest reads those. Fields Junction does not model, top_k
// among them, travel in llm.Request.Extra.
type Request struct {
	Model     string `json:"model"`
	MaxTokens int    `json:"max_tokens"`
	// System is a string or an array of text blocks.
	System        json.RawMessage `json:"system,omitempty"`
	Messages      []Message       `json:"messages"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
	Tools         []Tool          `json:"tools,omitempty"`
	ToolChoice    *ToolChoice     `json:"tool_choice,omitempty"`
	Metadata      *Metadata       `json:"metadata,omitempty"`
}

// Message is one entry of messages. Clients may also send Content as a
// plain string, which reads as one text block.
type Message struct {
	// Role is "user" or "assistant".
	Role    string  `json:"role"`
	Content []Block `json:"content"`
}

// Block is a request content block; Type says which fields are set.
type Block struct {
	// Type is text, image, tool_use or tool_result.
	Type string `json:"type"`
	// Text is set for text.
	Text string `json:"text,omitempty"`
	// Source is set for image.
	Source *Source `json:"source,omitempty"`
	// ID, Name and Input are set for tool_use; Input is a JSON object.
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
	// ToolUseID, Content and IsError are set for tool_result. Content is
	// a string or an array of text blocks.
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`
}

// Source is an image block's source: inline base64 data or a URL.
type Source struct {
	// Type is "base64" or "url".
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	// Data is the raw image; encoding/json writes and reads it as base64,
	// as the API wants.
	Data []byte `json:"data,omitempty"`
	URL  string `json:"url,omitempty"`
}

// Tool is an entry of tools: a client tool the model may call.
type Tool struct {
	// Type is empty or "custom" for client tools; Anthropic's server
	// tools (web_search_..., bash_...) have their own types.
	Type        string          `json:"type,omitempty"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
	// Strict asks for inputs that follow the schema exactly. It is read
	// into llm.Tool.Strict for upstreams that honour it (OpenAI) and not
	// written, since not every Anthropic model takes it.
	Strict bool `json:"strict,omitempty"`
}

// ToolChoice is the tool_choice object.
type ToolChoice struct {
	// Type is auto, any, tool or none.
	Type string `json:"type"`
	// Name is set when Type is tool.
	Name string `json:"name,omitempty"`
}

// Metadata is the metadata object.
type Metadata struct {
	UserID string `json:"user_id"`
}

// Response is a complete Messages API response, and the message of a
// stream's message_start event.
type Response struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	Role  string `json:"role"`
	Model string `json:"model"`
	// Content holds the blocks the model produced.
	Content []ResponseBlock `json:"content"`
	// StopReason is end_turn, max_tokens, stop_sequence, tool_use,
	// pause_turn or refusal; empty (null) in message_start.
	StopReason   string  `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
	Usage        Usage   `json:"usage"`
}

// ResponseBlock is a response content block. Blocks other than text and
// tool_use (thinking, server tool results) have no canonical form and are
// skipped when decoded.
type ResponseBlock struct {
	Type  string          `json:"type"`
	Text  string          `json:"text"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// Usage counts tokens. Unlike llm.Usage, InputTokens excludes the tokens
// read from and written to the prompt cache, which are counted apart.
type Usage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	OutputTokens             int `json:"output_tokens"`
}

// Event is the data of any stream event; its type (also the SSE event
// name) says which fields are set.
type Event struct {
	Type string `json:"type"`
	// Message is set for message_start.
	Message Response `json:"message"`
	// Index is the content block of content_block_start, _delta and _stop.
	Index int `json:"index"`
	// ContentBlock is set for content_block_start.
	ContentBlock ResponseBlock `json:"content_block"`
	// Delta is set for content_block_delta and message_delta.
	Delta Delta `json:"delta"`
	// Usage is set for message_delta; its counts are cumulative.
	Usage Usage `json:"usage"`
	// Error is set for error.
	Error ErrorBody `json:"error"`
}

// Delta is the delta of a content_block_delta (Type text_delta with Text,
// or input_json_delta with PartialJSON) or of a message_delta (StopReason).
type Delta struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	PartialJSON string `json:"partial_json"`
	StopReason  string `json:"stop_reason"`
}

// ErrorBody is the error object of an error answer or stream event.
type ErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// ErrorResponse is the body of an error answer:
// {"type":"error","error":{"type":...,"message":...}}.
type ErrorResponse struct {
	Type  string    `json:"type"`
	Error ErrorBody `json:"error"`
}
