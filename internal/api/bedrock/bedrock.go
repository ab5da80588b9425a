// Package bedrock is the inbound Amazon Bedrock runtime surface:
// POST /model/{modelId}/converse and /model/{modelId}/converse-stream, so
// that an application written against an AWS SDK's bedrockruntime client
// reaches any model Junction serves — OpenAI-compatible, Anthropic or
// Bedrock upstreams — with only its endpoint and credentials changed.
//
// Requests are signed with AWS Signature Version 4 by an access key
// Junction issued for a Junction key, or carry "Authorization: Bearer
// <junction key>" as Bedrock API keys do (api.AWSAuth). The model id in
// the path is any model or route name Junction serves. The wire format and
// its translation live in internal/wire/bedrockwire; the call and its
// accounting in internal/gateway. InvokeModel and
// InvokeModelWithResponseStream take the native bodies of Anthropic,
// OpenAI-style and Llama-style models (invoke.go) and translate them to
// any upstream too.
package bedrock

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/gateway"
	"github.com/junctionhq/junction/internal/guardrail"
	"github.com/junctionhq/junction/internal/wire/bedrockwire"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Surface is this surface's name in the ledger and metrics.
const Surface = "bedrock"

// SigningName is the service name AWS SDKs sign Bedrock runtime requests
// for.
const SigningName = "bedrock"

// Handler serves the Bedrock runtime surface.
type Handler struct {
	Gateway *gateway.Gateway
	// Auth admits requests; its Verifier's service is SigningName.
	Auth         *api.AWSAuth
	MaxBodyBytes int64
	Log          *slog.Logger
}

// Register adds the surface's routes to mux. Authentication is the
// handler's own, since a signature covers the body.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("POST /model/{modelId}/converse", h.admit(h.converse))
	mux.Handle("POST /model/{modelId}/converse-stream", h.admit(h.converseStream))
	mux.Handle("POST /model/{modelId}/invoke", h.admit(h.invoke))
	mux.Handle("POST /model/{modelId}/invoke-with-response-stream", h.admit(h.invokeStream))
	mux.HandleFunc("/model/", func(w http.ResponseWriter, r *http.Request) {
		e := llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "%s %s is not a Bedrock runtime operation Junction serves; it serves Converse, ConverseStream, InvokeModel and InvokeModelWithResponseStream",
			r.Method, r.URL.Path)
		writeError(w, r, "UnknownOperationException", http.StatusNotFound, e)
	})
}

// WriteError writes e as AWS does: the error code in X-Amzn-ErrorType,
// {"message": ...} in the body, with the code's status (see
// bedrockwire.ErrorCode) and the upstream's Retry-After.
func WriteError(w http.ResponseWriter, r *http.Request, e *llm.Error) {
	code, status := bedrockwire.ErrorCode(e)
	writeError(w, r, code, status, e)
}

func writeError(w http.ResponseWriter, r *http.Request, code string, status int, e *llm.Error) {
	h := w.Header()
	if e.RetryAfter != "" {
		h.Set("Retry-After", e.RetryAfter)
	}
	setRequestID(w, r)
	h.Set("X-Amzn-Errortype", code)
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(bedrockwire.EncodeError(e))
}

// setRequestID sets x-amzn-RequestId, which the AWS SDKs report as the
// request id; it is Junction's X-Request-Id.
func setRequestID(w http.ResponseWriter, r *http.Request) {
	if id := api.InfoFrom(r.Context()).RequestID; id != "" {
		w.Header().Set("X-Amzn-Requestid", id)
	}
}

// admit reads the body and authenticates the request with it, then
// serves it with next.
func (h *Handler) admit(next func(w http.ResponseWriter, r *http.Request, body []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, e := h.Auth.ReadBody(w, r, h.MaxBodyBytes)
		if e != nil {
			WriteError(w, r, e)
			return
		}
		next(w, r, body)
	})
}

// decode builds the call and the canonical request of a Converse body,
// recording and answering a request that fails before reaching a provider.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, body []byte) (*gateway.Call, *llm.Request, bool) {
	return h.begin(w, r, func(c *gateway.Call) (*llm.Request, error) {
		req, meta, err := bedrockwire.DecodeConverseRequest(body)
		if err == nil {
			var gc *bedrockwire.GuardrailConfig
			if gc, err = bedrockwire.DecodeGuardrailConfig(body); gc != nil {
				c.GuardName, c.GuardMode = gc.GuardrailIdentifier+":"+gc.GuardrailVersion, gc.StreamProcessingMode
				c.GuardTrace = gc.Trace == "enabled" || gc.Trace == "enabled_full"
			}
		}
		if err == nil && len(meta) > 0 {
			err = applyRequestMetadata(c, meta)
		}
		return req, err
	})
}

// begin builds the call for the model the path names and the canonical
// request dec decodes, and resolves the call's routing; a request that
// fails before reaching a provider is recorded and answered here.
func (h *Handler) begin(w http.ResponseWriter, r *http.Request, dec func(c *gateway.Call) (*llm.Request, error)) (*gateway.Call, *llm.Request, bool) {
	c := api.InfoFrom(r.Context()).Call(Surface)
	c.Model = r.PathValue("modelId")
	req, err := dec(c)
	if err == nil && c.Model == "" {
		err = llm.BadRequest("modelId", "modelId: required in the path, /model/{modelId}/...")
	}
	if err == nil {
		req.Model, c.Prompt = c.Model, req
		err = h.Gateway.Resolve(c)
	}
	if err != nil {
		h.Gateway.Finish(c, llm.Usage{}, nil, err)
		WriteError(w, r, llm.AsError(err))
		return nil, nil, false
	}
	return c, req, true
}

// applyRequestMetadata records requestMetadata as the request's tags,
// over the key's defaults (except team and project, which only the key
// sets: keys.OrgTagNames), and as its routing metadata (cost_tier,
// max_latency_ms, model_preference and the rest, for rules), where a
// header or key tag has not already set a value.
func applyRequestMetadata(c *gateway.Call, meta map[string]string) error {
	if err := keys.ValidateTags(meta); err != nil {
		return llm.BadRequest("requestMetadata", "requestMetadata: Junction records it as the request's tags: %v", err)
	}
	c.Tags = keys.Merge(c.Tags, keys.FreeTags(meta))
	for k, v := range meta {
		if _, set := c.Meta.Values[k]; set {
			continue
		}
		if err := c.Meta.Set(k, v); err != nil {
			return llm.BadRequest("requestMetadata", "requestMetadata: %v", err)
		}
	}
	return nil
}

func (h *Handler) converse(w http.ResponseWriter, r *http.Request, body []byte) {
	c, req, ok := h.decode(w, r, body)
	if !ok {
		return
	}
	defer h.Gateway.End(c)
	resp, err := h.Gateway.Chat(r.Context(), c, req)
	c.RouteHeaders(w.Header())
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	out, err := bedrockwire.EncodeConverseResponse(resp, time.Since(c.Start))
	if err == nil && c.GuardID != "" {
		out = withGuardrailTrace(out, c)
	}
	if err != nil {
		e := llm.AsError(err)
		if c.Target != nil {
			e.Provider = c.Target.Provider
		}
		WriteError(w, r, e)
		return
	}
	setRequestID(w, r)
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// converseStream relays a streamed call as event-stream frames, each
// flushed as it is written. A stream that fails after it began ends with
// an exception frame and no messageStop, so that no client takes a cut
// stream for a complete one.
func (h *Handler) converseStream(w http.ResponseWriter, r *http.Request, body []byte) {
	c, req, ok := h.decode(w, r, body)
	if !ok {
		return
	}
	defer h.Gateway.End(c)
	req.Stream = true
	s, err := h.Gateway.ChatStream(r.Context(), c, req)
	c.RouteHeaders(w.Header())
	if err != nil {
		if errors.Is(err, r.Context().Err()) {
			return // the client is gone; the call is recorded
		}
		WriteError(w, r, llm.AsError(err))
		return
	}
	setRequestID(w, r)
	w.Header().Set("Content-Type", bedrockwire.StreamContentType)
	flush := func() {}
	if f, ok := w.(http.Flusher); ok {
		flush = f.Flush
	}
	sw := bedrockwire.NewStreamWriter(w)
	for {
		ev, err := s.Recv()
		if err != nil {
			if err == io.EOF {
				err = sw.End(time.Since(c.Start))
			} else if r.Context().Err() == nil {
				sw.Exception(llm.AsError(err))
			}
			flush()
			s.Finish(err)
			return
		}
		wrote, werr := sw.Write(ev)
		if werr != nil {
			s.Finish(r.Context().Err())
			return
		}
		if wrote {
			flush()
		}
	}
}

// withGuardrailTrace marks a Converse answer the guardrail intervened in
// as Bedrock does: stopReason guardrail_intervened when it blocked, and,
// when the request asked for a trace, trace.guardrail with the input and
// output assessments keyed by the guardrail's id.
func withGuardrailTrace(out []byte, c *gateway.Call) []byte {
	trace := c.GuardTrace
	blocked := c.GuardInput != nil && c.GuardInput.Blocked || c.GuardOutput != nil && c.GuardOutput.Blocked
	if !blocked && !trace {
		return out
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(out, &m) != nil {
		return out
	}
	if blocked {
		m["stopReason"] = json.RawMessage(`"guardrail_intervened"`)
	}
	if trace {
		g := map[string]any{}
		reason := ""
		if c.GuardInput != nil {
			g["inputAssessment"] = map[string]any{c.GuardID: c.GuardInput.Assessment}
			reason = c.GuardInput.ActionReason
		}
		if c.GuardOutput != nil {
			g["outputAssessments"] = map[string]any{c.GuardID: []any{withoutMatches(c.GuardOutput.Assessment)}}
			if c.GuardOutput.Action == guardrail.ActionIntervened {
				reason = c.GuardOutput.ActionReason
			}
		}
		if reason != "" {
			g["actionReason"] = reason
		}
		m["trace"], _ = json.Marshal(map[string]any{"guardrail": g})
	}
	b, err := json.Marshal(m)
	if err != nil {
		return out
	}
	return b
}

// withoutMatches is an output assessment without the matched text: the
// matches are what the guardrail kept from the client.
func withoutMatches(a guardrail.Assessment) any {
	b, _ := json.Marshal(a)
	var v any
	json.Unmarshal(b, &v)
	var strip func(any)
	strip = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			delete(t, "match")
			for _, x := range t {
				strip(x)
			}
		case []any:
			for _, x := range t {
				strip(x)
			}
		}
	}
	strip(v)
	return v
}
