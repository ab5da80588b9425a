// Package openai is the inbound OpenAI surface: /v1/chat/completions
// (plain and streamed), /v1/embeddings and /v1/models, so that any OpenAI
// client works with only its base URL and key changed.
package openai

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/gateway"
	"github.com/junctionhq/junction/internal/guardrail"
	"github.com/junctionhq/junction/internal/wire/jsonenc"
	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/openaiwire"
	"github.com/junctionhq/junction/internal/wire/sse"
)

// Surface is this surface's name in the ledger and metrics.
const Surface = "openai"

// Handler serves the OpenAI surface.
type Handler struct {
	Gateway      *gateway.Gateway
	MaxBodyBytes int64
	Log          *slog.Logger
	// Responses stores Responses API responses; nil stores none.
	Responses *ResponseStore
}

// Register adds the surface's routes to mux, each wrapped by auth.
func (h *Handler) Register(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	mux.Handle("POST /v1/chat/completions", auth(http.HandlerFunc(h.chat)))
	mux.Handle("POST /v1/embeddings", auth(http.HandlerFunc(h.embeddings)))
	mux.Handle("GET /v1/models", auth(http.HandlerFunc(h.models)))
	mux.Handle("GET /v1/models/{id...}", auth(http.HandlerFunc(h.model)))
	mux.Handle("POST /v1/responses", auth(http.HandlerFunc(h.responses)))
	mux.Handle("GET /v1/responses/{id}", auth(http.HandlerFunc(h.getResponse)))
	mux.Handle("DELETE /v1/responses/{id}", auth(http.HandlerFunc(h.deleteResponse)))
	mux.Handle("GET /v1/responses/{id}/input_items", auth(http.HandlerFunc(h.inputItemsList)))
}

// WriteError writes e as an OpenAI error object with its status.
func WriteError(w http.ResponseWriter, _ *http.Request, e *llm.Error) {
	if e.RetryAfter != "" {
		w.Header().Set("Retry-After", e.RetryAfter)
	}
	code := e.Code
	if code == "" && e.Provider != "" {
		code = "provider:" + e.Provider
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	w.Write(openaiwire.EncodeError(e.Public(), string(e.Type), e.Param, code))
}

func (h *Handler) call(r *http.Request, model string) *gateway.Call {
	c := api.InfoFrom(r.Context()).Call(Surface)
	c.Model = model
	return c
}

func (h *Handler) chat(w http.ResponseWriter, r *http.Request) {
	c := h.call(r, "")
	defer h.Gateway.End(c)
	body, e := api.ReadBody(w, r, h.MaxBodyBytes)
	if e != nil {
		h.fail(w, r, c, e)
		return
	}
	req, err := openaiwire.DecodeChatRequest(body)
	if err != nil {
		h.fail(w, r, c, err)
		return
	}
	c.Model = req.Model
	c.Prompt = req
	changed, err := applyBodyMetadata(c, req)
	if err != nil {
		h.fail(w, r, c, err)
		return
	}
	if !changed && openaiwire.Passable(body) {
		c.Body = body // sent upstream as it came, where nothing rewrites it
	}
	if err := h.Gateway.Resolve(c); err != nil {
		h.fail(w, r, c, err)
		return
	}
	if req.Stream {
		h.stream(w, r, c, req)
		return
	}
	resp, err := h.Gateway.Chat(r.Context(), c, req)
	c.RouteHeaders(w.Header())
	c.LimitHeaders(w.Header())
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	id := resp.ID
	if id == "" {
		id = "chatcmpl-" + c.RequestID
	}
	out, err := openaiwire.EncodeChatResponse(resp, id, c.Served(), time.Now().Unix())
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	if c.GuardID != "" {
		out = withGuardrail(out, c)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// fail records a request that failed before reaching a provider, then
// answers it.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, c *gateway.Call, err error) {
	h.Gateway.Finish(c, llm.Usage{}, nil, err)
	WriteError(w, r, llm.AsError(err))
}

func (h *Handler) stream(w http.ResponseWriter, r *http.Request, c *gateway.Call, req *llm.Request) {
	includeUsage := openaiwire.IncludeUsage(req)
	s := h.openStream(w, r, c, req)
	if s == nil {
		return
	}
	sw := sse.NewWriter(w)
	enc := openaiwire.ChunkEncoder{ID: "chatcmpl-" + c.RequestID, Model: c.Served(), Created: time.Now().Unix()}
	for {
		ev, err := s.Recv()
		if err != nil {
			if err == io.EOF {
				err = sw.Write("", []byte("[DONE]"))
			} else if r.Context().Err() == nil {
				// Tell the client the stream failed; never end it as if
				// it had succeeded.
				e := llm.AsError(err)
				sw.Write("", openaiwire.EncodeError(e.Public(), string(e.Type), "", e.Code))
			}
			s.Finish(err)
			return
		}
		if ev.Type == llm.EventUsage && !includeUsage {
			continue
		}
		enc.SetModel(s.Served())
		if chunk := enc.Encode(ev); chunk != nil {
			if werr := sw.WriteMore("", chunk, s.Pending()); werr != nil {
				s.Finish(r.Context().Err())
				return
			}
		}
	}
}

// openStream starts a streamed call and sets the routing headers; when it
// fails it answers the error (unless the client is gone) and returns nil.
// The call is recorded either way.
func (h *Handler) openStream(w http.ResponseWriter, r *http.Request, c *gateway.Call, req *llm.Request) *gateway.Stream {
	s, err := h.Gateway.ChatStream(r.Context(), c, req)
	c.RouteHeaders(w.Header())
	c.LimitHeaders(w.Header())
	if err != nil {
		if !errors.Is(err, r.Context().Err()) {
			WriteError(w, r, llm.AsError(err))
		}
		return nil
	}
	return s
}

func (h *Handler) embeddings(w http.ResponseWriter, r *http.Request) {
	c := h.call(r, "")
	defer h.Gateway.End(c)
	body, e := api.ReadBody(w, r, h.MaxBodyBytes)
	if e != nil {
		h.fail(w, r, c, e)
		return
	}
	req, err := openaiwire.DecodeEmbedRequest(body)
	if err != nil {
		h.fail(w, r, c, err)
		return
	}
	c.Model = req.Model
	if err := h.Gateway.Resolve(c); err != nil {
		h.fail(w, r, c, err)
		return
	}
	resp, err := h.Gateway.Embed(r.Context(), c, req)
	c.RouteHeaders(w.Header())
	c.LimitHeaders(w.Header())
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	out, _ := json.Marshal(openaiwire.EmbedResponse{Object: "list", Data: resp.Data, Model: c.Model,
		Usage: openaiwire.Usage{PromptTokens: resp.Usage.InputTokens, TotalTokens: resp.Usage.InputTokens}})
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// applyBodyMetadata adds the body's metadata object (string values) to the
// call's routing metadata; headers set earlier take precedence. The keys
// Junction reads are taken out before the body goes upstream; changed
// reports whether there were any.
func applyBodyMetadata(c *gateway.Call, req *llm.Request) (changed bool, err error) {
	raw, ok := req.Extra["metadata"]
	if !ok {
		return false, nil
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return false, llm.BadRequest("metadata", "metadata: must be an object of string values")
	}
	m = maps.Clone(m)
	if err := applyMetadata(c, m); err != nil {
		return false, err
	}
	for _, k := range routingKeys {
		if _, ok := m[k]; ok {
			delete(m, k)
			changed = true
		}
	}
	if !changed {
		return false, nil
	}
	if len(m) == 0 {
		delete(req.Extra, "metadata")
	} else {
		req.Extra["metadata"], _ = json.Marshal(m)
	}
	return true, nil
}

// routingKeys are the metadata keys the router reads.
var routingKeys = []string{"cost_tier", "max_latency_ms", "model_preference"}

// applyMetadata adds a request's metadata to the call's routing metadata;
// values set earlier (by headers) take precedence.
func applyMetadata(c *gateway.Call, m map[string]string) error {
	for _, k := range routingKeys {
		v, ok := m[k]
		if !ok {
			continue
		}
		if _, set := c.Meta.Values[k]; set {
			continue
		}
		if err := c.Meta.Set(k, v); err != nil {
			return llm.BadRequest("metadata", "metadata: %v", err)
		}
	}
	for k, v := range m {
		if _, set := c.Meta.Values[k]; !set && !slices.Contains(routingKeys, k) {
			c.Meta.Set(k, v)
		}
	}
	return nil
}

// GuardrailReport is the junction_guardrail member of a chat completion
// that a guardrail checked: what it did, and its findings in the input.
// The output's findings are not reported: their matches are the very text
// the guardrail kept from the client.
type GuardrailReport struct {
	ID           string                `json:"id"`
	Action       string                `json:"action"`
	Input        *guardrail.Assessment `json:"input_assessment,omitempty"`
	OutputAction string                `json:"output_action,omitempty"`
}

// withGuardrail adds the junction_guardrail member to a chat completion.
func withGuardrail(out []byte, c *gateway.Call) []byte {
	rep := GuardrailReport{ID: c.GuardID, Action: guardrail.ActionNone}
	for _, r := range []*guardrail.Result{c.GuardInput, c.GuardOutput} {
		if r != nil && r.Action == guardrail.ActionIntervened {
			rep.Action = guardrail.ActionIntervened
		}
	}
	if c.GuardInput != nil {
		rep.Input = &c.GuardInput.Assessment
	}
	if c.GuardOutput != nil {
		rep.OutputAction = c.GuardOutput.Action
	}
	if len(out) < 2 {
		return out
	}
	res := make([]byte, 0, len(out)+256)
	res = append(res, out[:len(out)-1]...)
	res = append(res, `,"junction_guardrail":`...)
	if r, ok := appendQuietReport(res, &rep); ok {
		return append(r, '}')
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return out
	}
	res = append(res, b...)
	return append(res, '}')
}

// appendQuietReport appends rep as encoding/json would, when its input
// assessment found nothing (no policy listed, no coverage): what nearly
// every request's report is. It reports false, appending nothing, for any
// other report.
func appendQuietReport(b []byte, rep *GuardrailReport) ([]byte, bool) {
	in := rep.Input
	if in != nil && (in.TopicPolicy != nil || in.ContentPolicy != nil || in.WordPolicy != nil ||
		in.SensitiveInformationPolicy != nil || (in.InvocationMetrics != nil && in.InvocationMetrics.GuardrailCoverage != nil)) {
		return b, false
	}
	b = append(b, `{"id":`...)
	b = jsonenc.AppendString(b, rep.ID)
	b = append(b, `,"action":`...)
	b = jsonenc.AppendString(b, rep.Action)
	if in != nil {
		b = append(b, `,"input_assessment":{`...)
		if m := in.InvocationMetrics; m != nil {
			u := &m.Usage
			b = append(b, `"invocationMetrics":{"guardrailProcessingLatency":`...)
			b = strconv.AppendInt(b, m.GuardrailProcessingLatency, 10)
			b = append(b, `,"usage":{"topicPolicyUnits":`...)
			b = strconv.AppendInt(b, int64(u.TopicPolicyUnits), 10)
			b = append(b, `,"contentPolicyUnits":`...)
			b = strconv.AppendInt(b, int64(u.ContentPolicyUnits), 10)
			b = append(b, `,"wordPolicyUnits":`...)
			b = strconv.AppendInt(b, int64(u.WordPolicyUnits), 10)
			b = append(b, `,"sensitiveInformationPolicyUnits":`...)
			b = strconv.AppendInt(b, int64(u.SensitiveInformationPolicyUnits), 10)
			b = append(b, `,"sensitiveInformationPolicyFreeUnits":`...)
			b = strconv.AppendInt(b, int64(u.SensitiveInformationPolicyFreeUnits), 10)
			b = append(b, `,"contextualGroundingPolicyUnits":`...)
			b = strconv.AppendInt(b, int64(u.ContextualGroundingPolicyUnits), 10)
			b = append(b, "}}"...)
		}
		b = append(b, '}')
	}
	if rep.OutputAction != "" {
		b = append(b, `,"output_action":`...)
		b = jsonenc.AppendString(b, rep.OutputAction)
	}
	return append(b, '}'), true
}
