package openai

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/gateway"
	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/sse"
)

// responses answers POST /v1/responses: the request becomes a chat call
// through the same gateway as chat completions (router, governance,
// guardrails, ledger), and its answer becomes output items. A stored
// response (store, the default, when the server has a store) can be
// continued with previous_response_id.
func (h *Handler) responses(w http.ResponseWriter, r *http.Request) {
	c := h.call(r, "")
	defer h.Gateway.End(c)
	body, e := api.ReadBody(w, r, h.MaxBodyBytes)
	if e != nil {
		h.fail(w, r, c, e)
		return
	}
	req, err := decodeResponseRequest(body)
	if err != nil {
		h.fail(w, r, c, err)
		return
	}
	c.Model = req.Model
	id := newResponseID()
	input, err := inputItems(req.Input, "msg_in_"+id[len("resp_"):]+"_")
	if err != nil {
		h.fail(w, r, c, err)
		return
	}
	var history []item
	if req.PreviousResponseID != "" {
		if history, err = h.previous(r, c, req.PreviousResponseID); err != nil {
			h.fail(w, r, c, err)
			return
		}
	}
	creq, err := req.chatRequest(append(history[:len(history):len(history)], input...))
	if err != nil {
		h.fail(w, r, c, err)
		return
	}
	c.Prompt = creq
	if err := applyMetadata(c, req.Metadata); err != nil {
		h.fail(w, r, c, err)
		return
	}
	if err := h.Gateway.Resolve(c); err != nil {
		h.fail(w, r, c, err)
		return
	}
	store := h.Responses != nil && (req.Store == nil || *req.Store)
	rs := &responseSave{h: h, r: r, c: c, id: id, input: input, history: history, store: store}
	if req.Stream {
		h.streamResponse(w, r, c, req, creq, rs)
		return
	}
	resp, err := h.Gateway.Chat(r.Context(), c, creq)
	c.RouteHeaders(w.Header())
	c.LimitHeaders(w.Header())
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	obj := req.shell(id, c.Served(), time.Now().Unix(), store)
	obj.Output = outputItems(resp, id)
	obj.finish(resp.StopReason, resp.Usage)
	out := rs.save(obj)
	if c.GuardID != "" {
		out = withGuardrail(out, c)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// previous is the conversation a previous_response_id continues.
func (h *Handler) previous(r *http.Request, c *gateway.Call, prev string) ([]item, error) {
	if h.Responses == nil {
		return nil, llm.BadRequest("previous_response_id", "previous_response_id: this server stores no responses")
	}
	st, err := h.Responses.get(r.Context(), c.Key.ID, prev)
	if err != nil {
		return nil, llm.Errorf(http.StatusInternalServerError, llm.ErrInternal, "reading stored response %s: %v", prev, err)
	}
	if st == nil {
		return nil, llm.BadRequest("previous_response_id", "Previous response with id '%s' not found: it was never stored (store: false), was deleted, expired, or belongs to another key", prev)
	}
	conv, err := st.conversation()
	if err != nil {
		return nil, llm.Errorf(http.StatusInternalServerError, llm.ErrInternal, "stored response %s is unreadable: %v", prev, err)
	}
	return conv, nil
}

// responseSave stores a finished response when the request asked to.
type responseSave struct {
	h              *Handler
	r              *http.Request
	c              *gateway.Call
	id             string
	input, history []item
	store          bool
}

// save stores obj (if asked) and returns its JSON. A store that fails
// does not fail the answer, which the client paid for: the response says
// store false, so the client knows it cannot be continued.
func (rs *responseSave) save(obj *responseObject) []byte {
	out, _ := json.Marshal(obj)
	if !rs.store {
		return out
	}
	if err := rs.h.Responses.put(rs.r.Context(), rs.c.Key.ID, rs.id, time.Now(), out, rs.input, rs.history); err != nil {
		if rs.h.Log != nil {
			rs.h.Log.Error("storing a response failed", "request_id", rs.c.RequestID, "err", err)
		}
		obj.Store = false
		out, _ = json.Marshal(obj)
	}
	return out
}

// streamResponse relays a streamed call as the Responses API's typed
// events.
func (h *Handler) streamResponse(w http.ResponseWriter, r *http.Request, c *gateway.Call, req *responseRequest, creq *llm.Request, rs *responseSave) {
	s := h.openStream(w, r, c, creq)
	if s == nil {
		return
	}
	sw := sse.NewWriter(w)
	ev := &responseEvents{resp: req.shell(rs.id, s.Served(), time.Now().Unix(), rs.store),
		emit: func(name string, data []byte) error { return sw.WriteMore(name, data, true) }}
	var err error
	werr := ev.begin()
	for werr == nil {
		var e llm.Event
		e, err = s.Recv()
		if err != nil {
			break
		}
		ev.resp.Model = s.Served()
		werr = ev.on(e)
		if !s.Pending() {
			sw.Flush()
		}
	}
	switch {
	case werr != nil:
		s.Finish(r.Context().Err())
		return
	case err == io.EOF:
		if werr = ev.close(); werr == nil {
			// Stored before response.completed reaches the client, so
			// that a request continuing it finds it.
			rs.save(ev.resp)
			werr = ev.completed()
		}
	case r.Context().Err() == nil:
		ev.fail(llm.AsError(err))
	}
	sw.Flush()
	s.Finish(err)
}

// getResponse answers GET /v1/responses/{id}.
func (h *Handler) getResponse(w http.ResponseWriter, r *http.Request) {
	st, ok := h.lookup(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(st.Response)
}

// deleteResponse answers DELETE /v1/responses/{id}.
func (h *Handler) deleteResponse(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if h.Responses == nil {
		notFound(w, r, id)
		return
	}
	ok, err := h.Responses.delete(r.Context(), api.InfoFrom(r.Context()).Key.ID, id)
	if err != nil {
		WriteError(w, r, llm.Errorf(http.StatusInternalServerError, llm.ErrInternal, "deleting response %s: %v", id, err))
		return
	}
	if !ok {
		notFound(w, r, id)
		return
	}
	writeJSON(w, map[string]any{"id": id, "object": "response", "deleted": true})
}

// inputItemsList answers GET /v1/responses/{id}/input_items: the
// response's own input items, newest first unless order=asc, limit (1 to
// 100, default 20) at a time, after the item named by after.
func (h *Handler) inputItemsList(w http.ResponseWriter, r *http.Request) {
	st, ok := h.lookup(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			WriteError(w, r, llm.BadRequest("limit", "limit: must be an integer from 1 to 100"))
			return
		}
		limit = n
	}
	items := append([]item(nil), st.Input...)
	switch q.Get("order") {
	case "", "desc":
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	case "asc":
	default:
		WriteError(w, r, llm.BadRequest("order", "order: must be asc or desc"))
		return
	}
	if after := q.Get("after"); after != "" {
		for i, it := range items {
			if it.ID == after {
				items = items[i+1:]
				break
			}
		}
	}
	more := len(items) > limit
	items = items[:min(limit, len(items))]
	page := map[string]any{"object": "list", "data": items, "has_more": more, "first_id": nil, "last_id": nil}
	if len(items) > 0 {
		page["first_id"], page["last_id"] = items[0].ID, items[len(items)-1].ID
	}
	writeJSON(w, page)
}

// lookup finds the stored response the path names, or answers 404.
func (h *Handler) lookup(w http.ResponseWriter, r *http.Request) (*stored, bool) {
	id := r.PathValue("id")
	if h.Responses == nil {
		notFound(w, r, id)
		return nil, false
	}
	st, err := h.Responses.get(r.Context(), api.InfoFrom(r.Context()).Key.ID, id)
	if err != nil {
		WriteError(w, r, llm.Errorf(http.StatusInternalServerError, llm.ErrInternal, "reading response %s: %v", id, err))
		return nil, false
	}
	if st == nil {
		notFound(w, r, id)
		return nil, false
	}
	return st, true
}

func notFound(w http.ResponseWriter, r *http.Request, id string) {
	WriteError(w, r, &llm.Error{Status: http.StatusNotFound, Type: llm.ErrInvalidRequest,
		Message: "Response with id '" + id + "' not found."})
}
