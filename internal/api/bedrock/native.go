package bedrock

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/wire/anthropicwire"
	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/openaiwire"
)

// native is one family of InvokeModel bodies: a model vendor's own request
// and response format, as Bedrock passes them through. Junction decodes it
// to a canonical request, so any upstream answers, and encodes the answer
// back in the same family.
type native interface {
	// decode reads the request body for model.
	decode(body []byte, model string) (*llm.Request, error)
	// response renders a complete answer.
	response(resp *llm.Response, id, model string) ([]byte, error)
	// chunks renders one stream event as zero or more native chunks.
	chunks(ev llm.Event) [][]byte
	// end renders the chunks that close a stream, the last one carrying
	// Bedrock's invocation metrics.
	end(m metrics) [][]byte
}

// metrics is amazon-bedrock-invocationMetrics, which Bedrock adds to the
// last chunk of a stream.
type metrics struct {
	InputTokenCount   int   `json:"inputTokenCount"`
	OutputTokenCount  int   `json:"outputTokenCount"`
	InvocationLatency int64 `json:"invocationLatency"`
	FirstByteLatency  int64 `json:"firstByteLatency"`
}

// withMetrics adds the invocation metrics member to a JSON object.
func withMetrics(chunk []byte, m metrics) []byte {
	b, _ := json.Marshal(m)
	out := append([]byte(nil), chunk[:len(chunk)-1]...)
	out = append(out, `,"amazon-bedrock-invocationMetrics":`...)
	out = append(out, b...)
	return append(out, '}')
}

// nativeFamily picks the family of a body by its members: anthropic_version
// is Anthropic's, prompt without messages is Llama's, messages without
// anthropic_version is OpenAI's chat format (as Bedrock's OpenAI models
// take it).
func nativeFamily(body []byte) (native, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return nil, llm.BadRequest("body", "body: must be a JSON object, the model's native request")
	}
	_, anthropic := top["anthropic_version"]
	_, messages := top["messages"]
	_, prompt := top["prompt"]
	switch {
	case anthropic:
		return &anthropicNative{}, nil
	case messages:
		return &openaiNative{}, nil
	case prompt:
		return &llamaNative{}, nil
	}
	return nil, llm.BadRequest("body", "body: not a native request Junction translates: Anthropic (anthropic_version, messages, max_tokens), OpenAI-style (messages) or Llama-style (prompt)")
}

// withModel is body with its model member set, for decoders that require
// one (native bodies name the model in the path instead).
func withModel(body []byte, model string, drop ...string) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, llm.BadRequest("body", "body: %s", llm.JSONProblem(err))
	}
	for _, k := range drop {
		delete(top, k)
	}
	top["model"], _ = json.Marshal(model)
	return json.Marshal(top)
}

// anthropicNative is Anthropic's Messages format, as Claude on Bedrock
// takes it: anthropic_version in place of a model member.
type anthropicNative struct {
	enc anthropicwire.StreamEncoder
}

func (a *anthropicNative) decode(body []byte, model string) (*llm.Request, error) {
	b, err := withModel(body, model, "anthropic_version")
	if err != nil {
		return nil, err
	}
	req, err := anthropicwire.DecodeRequest(b)
	if err != nil {
		return nil, err
	}
	a.enc = anthropicwire.StreamEncoder{Model: model}
	return req, nil
}

func (a *anthropicNative) response(resp *llm.Response, id, model string) ([]byte, error) {
	return anthropicwire.EncodeResponse(resp, id, model)
}

func (a *anthropicNative) chunks(ev llm.Event) [][]byte { return frameData(a.enc.Encode(ev)) }

func (a *anthropicNative) end(m metrics) [][]byte {
	out := frameData(a.enc.Finish())
	if n := len(out); n > 0 {
		out[n-1] = withMetrics(out[n-1], m)
	}
	return out
}

// frameData is the frames' JSON, copied (the encoder reuses its buffers),
// without pings, which Bedrock does not send.
func frameData(frames []anthropicwire.Frame) [][]byte {
	var out [][]byte
	for _, f := range frames {
		if f.Name != anthropicwire.EventPing {
			out = append(out, append([]byte(nil), f.Data...))
		}
	}
	return out
}

// openaiNative is OpenAI's chat-completions format.
type openaiNative struct {
	enc openaiwire.ChunkEncoder
}

func (o *openaiNative) decode(body []byte, model string) (*llm.Request, error) {
	b, err := withModel(body, model)
	if err != nil {
		return nil, err
	}
	req, err := openaiwire.DecodeChatRequest(b)
	if err != nil {
		return nil, err
	}
	o.enc = openaiwire.ChunkEncoder{ID: "chatcmpl-" + model, Model: model, Created: time.Now().Unix()}
	return req, nil
}

func (o *openaiNative) response(resp *llm.Response, id, model string) ([]byte, error) {
	return openaiwire.EncodeChatResponse(resp, id, model, time.Now().Unix())
}

func (o *openaiNative) chunks(ev llm.Event) [][]byte {
	if b := o.enc.Encode(ev); b != nil {
		if ev.Type == llm.EventUsage {
			return nil // sent by end, with the metrics
		}
		return [][]byte{append([]byte(nil), b...)}
	}
	return nil
}

func (o *openaiNative) end(m metrics) [][]byte {
	u := llm.Usage{InputTokens: m.InputTokenCount, OutputTokens: m.OutputTokenCount}
	return [][]byte{withMetrics(append([]byte(nil), o.enc.Encode(llm.Event{Type: llm.EventUsage, Usage: &u})...), m)}
}

// llamaNative is Meta Llama's format on Bedrock: a prompt (Llama 3's chat
// template, or plain text) in, a generation out.
type llamaNative struct {
	stop   llm.StopReason
	tokens int
}

type llamaRequest struct {
	Prompt      string   `json:"prompt"`
	MaxGenLen   *int     `json:"max_gen_len"`
	Temperature *float64 `json:"temperature"`
	TopP        *float64 `json:"top_p"`
}

type llamaResponse struct {
	Generation           string  `json:"generation"`
	PromptTokenCount     *int    `json:"prompt_token_count"`
	GenerationTokenCount int     `json:"generation_token_count"`
	StopReason           *string `json:"stop_reason"`
}

func (l *llamaNative) decode(body []byte, model string) (*llm.Request, error) {
	var in llamaRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, llm.BadRequest("body", "body: %s", llm.JSONProblem(err))
	}
	if strings.TrimSpace(in.Prompt) == "" {
		return nil, llm.BadRequest("prompt", "prompt: required, the text to complete")
	}
	if in.MaxGenLen != nil && *in.MaxGenLen < 1 {
		return nil, llm.BadRequest("max_gen_len", "max_gen_len: must be at least 1")
	}
	return &llm.Request{Model: model, Messages: llamaMessages(in.Prompt), MaxTokens: in.MaxGenLen, Temperature: in.Temperature, TopP: in.TopP}, nil
}

// llamaMessages reads a prompt in Llama 3's chat template into messages;
// a prompt without the template is one user message.
func llamaMessages(prompt string) []llm.Message {
	const head, headEnd, eot = "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"
	p := strings.TrimPrefix(strings.TrimSpace(prompt), "<|begin_of_text|>")
	if !strings.Contains(p, head) {
		return []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: p}}}}
	}
	var out []llm.Message
	for _, seg := range strings.Split(p, head)[1:] {
		role, text, ok := strings.Cut(seg, headEnd)
		if !ok {
			continue
		}
		text = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(text), eot))
		r := llm.Role(role)
		switch r {
		case llm.RoleSystem, llm.RoleUser, llm.RoleAssistant:
		case "ipython":
			r = llm.RoleUser
		default:
			continue
		}
		if text == "" && r == llm.RoleAssistant {
			continue // the header the model is to answer after
		}
		out = append(out, llm.Message{Role: r, Content: []llm.Part{{Type: llm.PartText, Text: text}}})
	}
	return out
}

func llamaStop(r llm.StopReason) string {
	if r == llm.StopLength {
		return "length"
	}
	return "stop"
}

func (l *llamaNative) response(resp *llm.Response, id, model string) ([]byte, error) {
	text := ""
	for _, p := range resp.Content {
		text += p.Text
	}
	in, stop := resp.Usage.InputTokens, llamaStop(resp.StopReason)
	return json.Marshal(llamaResponse{Generation: text, PromptTokenCount: &in, GenerationTokenCount: resp.Usage.OutputTokens, StopReason: &stop})
}

func (l *llamaNative) chunks(ev llm.Event) [][]byte {
	switch ev.Type {
	case llm.EventText:
		l.tokens++
		b, _ := json.Marshal(llamaResponse{Generation: ev.Text, GenerationTokenCount: l.tokens})
		return [][]byte{b}
	case llm.EventStop:
		l.stop = ev.StopReason
	}
	return nil
}

func (l *llamaNative) end(m metrics) [][]byte {
	in, stop := m.InputTokenCount, llamaStop(l.stop)
	b, _ := json.Marshal(llamaResponse{PromptTokenCount: &in, GenerationTokenCount: m.OutputTokenCount, StopReason: &stop})
	return [][]byte{withMetrics(b, m)}
}
