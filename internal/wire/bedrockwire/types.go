// Package bedrockwire is the Amazon Bedrock runtime's JSON wire format as
// Junction serves it: the Converse and ConverseStream request and response
// shapes, the ConverseStream events in AWS event-stream framing, the AWS
// error vocabulary, and their translation to and from the canonical llm
// types. Inbound Bedrock operations (Converse today; ApplyGuardrail and
// InvokeModel later) share it.
//
// The shapes follow the bedrock-runtime API model (botocore
// bedrock-runtime/2023-09-30). Members Junction cannot honour are refused
// with a 400 that names them rather than dropped, except hints with no
// effect on the answer (cachePoint, performanceConfig, serviceTier).
//
// It is not the outbound Bedrock adapter, which speaks to AWS through the
// AWS SDK (internal/provider/bedrock).
package bedrockwire

import "encoding/json"

// Dialect is the llm.Request.Dialect of requests decoded from this format.
const Dialect = "bedrock"

// ConverseRequest is the body of Converse and ConverseStream; the model id
// is in the URL.
type ConverseRequest struct {
	Messages        []Message        `json:"messages"`
	System          []SystemBlock    `json:"system,omitempty"`
	InferenceConfig *InferenceConfig `json:"inferenceConfig,omitempty"`
	ToolConfig      *ToolConfig      `json:"toolConfig,omitempty"`
	// RequestMetadata is a string map for invocation logs; Junction
	// records it as the request's tags.
	RequestMetadata map[string]string `json:"requestMetadata,omitempty"`

	// Refused when set: Junction cannot honour them.
	GuardrailConfig                   json.RawMessage `json:"guardrailConfig,omitempty"`
	AdditionalModelRequestFields      json.RawMessage `json:"additionalModelRequestFields,omitempty"`
	AdditionalModelResponseFieldPaths []string        `json:"additionalModelResponseFieldPaths,omitempty"`
	PromptVariables                   json.RawMessage `json:"promptVariables,omitempty"`
	OutputConfig                      json.RawMessage `json:"outputConfig,omitempty"`

	// Ignored: hints that do not change the answer.
	PerformanceConfig json.RawMessage `json:"performanceConfig,omitempty"`
	ServiceTier       json.RawMessage `json:"serviceTier,omitempty"`
}

// Message is one turn: role "user" or "assistant".
type Message struct {
	Role    string         `json:"role"`
	Content []ContentBlock `json:"content"`
}

// ContentBlock is a union: exactly one member is set.
type ContentBlock struct {
	Text         *string          `json:"text,omitempty"`
	Image        *ImageBlock      `json:"image,omitempty"`
	ToolUse      *ToolUseBlock    `json:"toolUse,omitempty"`
	ToolResult   *ToolResultBlock `json:"toolResult,omitempty"`
	GuardContent *GuardContent    `json:"guardContent,omitempty"`
	CachePoint   json.RawMessage  `json:"cachePoint,omitempty"`

	Document         json.RawMessage `json:"document,omitempty"`
	Video            json.RawMessage `json:"video,omitempty"`
	Audio            json.RawMessage `json:"audio,omitempty"`
	ReasoningContent json.RawMessage `json:"reasoningContent,omitempty"`
	CitationsContent json.RawMessage `json:"citationsContent,omitempty"`
	SearchResult     json.RawMessage `json:"searchResult,omitempty"`
}

// ImageBlock is an image: format png, jpeg, gif or webp.
type ImageBlock struct {
	Format string      `json:"format"`
	Source ImageSource `json:"source"`
}

// ImageSource is a union of inline bytes (base64 in JSON) and an S3
// location, which Junction cannot read.
type ImageSource struct {
	Bytes      []byte          `json:"bytes,omitempty"`
	S3Location json.RawMessage `json:"s3Location,omitempty"`
}

// ToolUseBlock is a model's call of a tool.
type ToolUseBlock struct {
	ToolUseID string          `json:"toolUseId"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
}

// ToolResultBlock is a tool's result, sent back in a user turn.
type ToolResultBlock struct {
	ToolUseID string              `json:"toolUseId"`
	Content   []ToolResultContent `json:"content"`
	// Status is "success" or "error".
	Status string `json:"status,omitempty"`
}

// ToolResultContent is a union; Junction maps text and json.
type ToolResultContent struct {
	Text     *string         `json:"text,omitempty"`
	JSON     json.RawMessage `json:"json,omitempty"`
	Image    json.RawMessage `json:"image,omitempty"`
	Document json.RawMessage `json:"document,omitempty"`
	Video    json.RawMessage `json:"video,omitempty"`
}

// GuardContent marks content for a guardrail to assess. Junction sends
// its text to the model as plain text.
type GuardContent struct {
	Text  *GuardContentText `json:"text,omitempty"`
	Image json.RawMessage   `json:"image,omitempty"`
}

// GuardContentText is guarded text.
type GuardContentText struct {
	Text       string   `json:"text"`
	Qualifiers []string `json:"qualifiers,omitempty"`
}

// SystemBlock is a union: text, guardContent or cachePoint.
type SystemBlock struct {
	Text         *string         `json:"text,omitempty"`
	GuardContent *GuardContent   `json:"guardContent,omitempty"`
	CachePoint   json.RawMessage `json:"cachePoint,omitempty"`
}

// InferenceConfig holds the sampling settings.
type InferenceConfig struct {
	MaxTokens     *int     `json:"maxTokens,omitempty"`
	Temperature   *float64 `json:"temperature,omitempty"`
	TopP          *float64 `json:"topP,omitempty"`
	StopSequences []string `json:"stopSequences,omitempty"`
}

// ToolConfig lists the tools and how the model may choose them.
type ToolConfig struct {
	Tools      []Tool      `json:"tools"`
	ToolChoice *ToolChoice `json:"toolChoice,omitempty"`
}

// Tool is a union: toolSpec, systemTool or cachePoint.
type Tool struct {
	ToolSpec   *ToolSpec       `json:"toolSpec,omitempty"`
	SystemTool json.RawMessage `json:"systemTool,omitempty"`
	CachePoint json.RawMessage `json:"cachePoint,omitempty"`
}

// ToolSpec describes a function the model may call.
type ToolSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema ToolInputSchema `json:"inputSchema"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ToolInputSchema holds the JSON Schema of a tool's input.
type ToolInputSchema struct {
	JSON json.RawMessage `json:"json"`
}

// ToolChoice is a union: auto, any (some tool) or one named tool.
type ToolChoice struct {
	Auto *struct{}           `json:"auto,omitempty"`
	Any  *struct{}           `json:"any,omitempty"`
	Tool *SpecificToolChoice `json:"tool,omitempty"`
}

// SpecificToolChoice names the tool the model must call.
type SpecificToolChoice struct {
	Name string `json:"name"`
}

// ConverseResponse is Converse's answer.
type ConverseResponse struct {
	Output     ConverseOutput `json:"output"`
	StopReason string         `json:"stopReason"`
	Usage      TokenUsage     `json:"usage"`
	Metrics    Metrics        `json:"metrics"`
}

// ConverseOutput is a union; Converse answers with a message.
type ConverseOutput struct {
	Message *OutputMessage `json:"message"`
}

// OutputMessage is the assistant's message.
type OutputMessage struct {
	Role    string        `json:"role"`
	Content []OutputBlock `json:"content"`
}

// OutputBlock is a content block of an answer: text or toolUse.
type OutputBlock struct {
	Text    *string       `json:"text,omitempty"`
	ToolUse *ToolUseBlock `json:"toolUse,omitempty"`
}

// TokenUsage counts tokens as Bedrock does: InputTokens excludes the cache
// reads and writes, which are counted apart; TotalTokens includes them.
type TokenUsage struct {
	InputTokens           int `json:"inputTokens"`
	OutputTokens          int `json:"outputTokens"`
	TotalTokens           int `json:"totalTokens"`
	CacheReadInputTokens  int `json:"cacheReadInputTokens,omitempty"`
	CacheWriteInputTokens int `json:"cacheWriteInputTokens,omitempty"`
}

// Metrics reports the call's latency.
type Metrics struct {
	LatencyMs int64 `json:"latencyMs"`
}

// Stop reasons Junction sends.
const (
	StopEndTurn         = "end_turn"
	StopToolUse         = "tool_use"
	StopMaxTokens       = "max_tokens"
	StopStopSequence    = "stop_sequence"
	StopContentFiltered = "content_filtered"
)

// ConverseStream event names (the :event-type header) and their payloads.
const (
	EventMessageStart      = "messageStart"
	EventContentBlockStart = "contentBlockStart"
	EventContentBlockDelta = "contentBlockDelta"
	EventContentBlockStop  = "contentBlockStop"
	EventMessageStop       = "messageStop"
	EventMetadata          = "metadata"
)

// MessageStartEvent opens the message.
type MessageStartEvent struct {
	Role string `json:"role"`
}

// ContentBlockStartEvent opens a toolUse block; text blocks have none.
type ContentBlockStartEvent struct {
	ContentBlockIndex int               `json:"contentBlockIndex"`
	Start             ContentBlockStart `json:"start"`
}

// ContentBlockStart is a union; Junction starts toolUse blocks.
type ContentBlockStart struct {
	ToolUse *ToolUseBlockStart `json:"toolUse,omitempty"`
}

// ToolUseBlockStart names the tool being called.
type ToolUseBlockStart struct {
	ToolUseID string `json:"toolUseId"`
	Name      string `json:"name"`
}

// ContentBlockDeltaEvent carries a fragment of a block.
type ContentBlockDeltaEvent struct {
	ContentBlockIndex int               `json:"contentBlockIndex"`
	Delta             ContentBlockDelta `json:"delta"`
}

// ContentBlockDelta is a union: text, or a fragment of a tool's input.
type ContentBlockDelta struct {
	Text    *string            `json:"text,omitempty"`
	ToolUse *ToolUseBlockDelta `json:"toolUse,omitempty"`
}

// ToolUseBlockDelta is a fragment of the input's JSON text.
type ToolUseBlockDelta struct {
	Input string `json:"input"`
}

// ContentBlockStopEvent closes a block.
type ContentBlockStopEvent struct {
	ContentBlockIndex int `json:"contentBlockIndex"`
}

// MessageStopEvent ends the message.
type MessageStopEvent struct {
	StopReason string `json:"stopReason"`
}

// MetadataEvent follows messageStop with the usage and latency.
type MetadataEvent struct {
	Usage   TokenUsage `json:"usage"`
	Metrics Metrics    `json:"metrics"`
}

// ErrorBody is the body of an AWS error answer and the payload of an
// event-stream exception.
type ErrorBody struct {
	Message string `json:"message"`
}
