// Package anthropic is the inbound Anthropic surface: POST /v1/messages,
// plain and streamed, so that an application written against an Anthropic
// SDK reaches any model Junction serves — OpenAI-compatible, Anthropic or
// Bedrock upstreams — with only its base URL and key changed.
//
// The wire format and its translation live in internal/wire/anthropicwire; the
// call itself, and its accounting, in internal/gateway. Token counting
// (/v1/messages/count_tokens) is answered offline with internal/tokens;
// the Batches API is not served.
package anthropic

import (
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/gateway"
	"github.com/junctionhq/junction/internal/wire/anthropicwire"
	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/sse"
)

// Surface is this surface's name in the ledger and metrics.
const Surface = "anthropic"

// Handler serves the Anthropic surface.
type Handler struct {
	Gateway      *gateway.Gateway
	MaxBodyBytes int64
	Log          *slog.Logger
}

// Register adds the surface's routes to mux, each wrapped by auth.
func (h *Handler) Register(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	mux.Handle("POST /v1/messages", auth(http.HandlerFunc(h.messages)))
	mux.Handle("POST /v1/messages/count_tokens", auth(http.HandlerFunc(h.countTokens)))
}

// WriteError writes e as an Anthropic error body with its status, passing
// on the upstream's Retry-After.
func WriteError(w http.ResponseWriter, r *http.Request, e *llm.Error) {
	h := w.Header()
	if e.RetryAfter != "" {
		h.Set("Retry-After", e.RetryAfter)
	}
	setRequestID(w, r)
	h.Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	w.Write(anthropicwire.EncodeError(e.Type, e.Public()))
}

// setRequestID sets request-id, where Anthropic's SDKs look for the id to
// quote in their errors; it is Junction's X-Request-Id.
func setRequestID(w http.ResponseWriter, r *http.Request) {
	if id := api.InfoFrom(r.Context()).RequestID; id != "" {
		w.Header()["Request-Id"] = []string{id}
	}
}

func (h *Handler) call(r *http.Request) *gateway.Call {
	return api.InfoFrom(r.Context()).Call(Surface)
}

func (h *Handler) messages(w http.ResponseWriter, r *http.Request) {
	c := h.call(r)
	defer h.Gateway.End(c)
	body, e := api.ReadBody(w, r, h.MaxBodyBytes)
	if e != nil {
		h.fail(w, r, c, e)
		return
	}
	req, err := anthropicwire.DecodeRequest(body)
	if err != nil {
		h.fail(w, r, c, err)
		return
	}
	c.Model, c.Prompt = req.Model, req
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
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	id := resp.ID
	if id == "" {
		id = "msg_" + c.RequestID
	}
	out, err := anthropicwire.EncodeResponse(resp, id, c.Served())
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

// fail records a request that failed before reaching a provider, then
// answers it.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, c *gateway.Call, err error) {
	h.Gateway.Finish(c, llm.Usage{}, nil, err)
	WriteError(w, r, llm.AsError(err))
}

// stream relays a streamed call. A stream that fails after it began ends
// with an error event and no message_stop, so that no client takes a cut
// stream for a complete one.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, c *gateway.Call, req *llm.Request) {
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
	sw := sse.NewWriter(w)
	enc := anthropicwire.StreamEncoder{ID: "msg_" + c.RequestID, Model: c.Served()}
	for {
		ev, err := s.Recv()
		if err != nil {
			if err == io.EOF {
				err = write(sw, enc.Finish(), false)
			} else if r.Context().Err() == nil {
				// As Anthropic's own streams do, say overloaded_error or
				// api_error: the request was fine, the upstream failed.
				e := llm.AsError(err)
				t := llm.ErrUpstream
				if e.Type == llm.ErrOverloaded {
					t = llm.ErrOverloaded
				}
				sw.Write(anthropicwire.EventError, anthropicwire.EncodeError(t, e.Public()))
			}
			s.Finish(err)
			return
		}
		if werr := write(sw, enc.Encode(ev), s.Pending()); werr != nil {
			s.Finish(r.Context().Err())
			return
		}
	}
}

// write sends frames and flushes after the last, unless more is true
// (the next event is already at hand and will carry the flush).
func write(sw *sse.Writer, frames []anthropicwire.Frame, more bool) error {
	for i, f := range frames {
		if err := sw.WriteMore(f.Name, f.Data, more || i < len(frames)-1); err != nil {
			return err
		}
	}
	return nil
}
