package console

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/hosting"
)

// endpointsData is the Endpoints page: the endpoints, and the answer to
// an invocation made from the page.
type endpointsData struct {
	Endpoints []*hosting.Endpoint
	Hosting   bool
	// Capacity is each endpoint's instances over the last hours, by name.
	Capacity map[string]*capacityHistory
	// Tried is the invocation just made from the page, when there is one.
	Tried *tryResult
}

// tryResult is an invocation made from the page and what came back.
type tryResult struct {
	Endpoint, Variant, ContentType, Body string
	// Request is what was sent, to fill the form again.
	Request, RequestType string
	Bytes                int
	// Shown is false when the answer is not text (its size is shown).
	Shown     bool
	LatencyMS float64
	// Error is the failure, in the runtime's words (code: message).
	Error string
}

// maxShownAnswer is the most of an answer the page shows.
const maxShownAnswer = 64 << 10

// invokeTimeout bounds an invocation made from the page.
const invokeTimeout = time.Minute

// endpoints shows each self-hosted endpoint with its variants and their
// instances, from the controller's live state (GET /api/v1/endpoints).
func (h *Handler) endpoints(w http.ResponseWriter, r *http.Request) {
	h.renderEndpoints(w, r, http.StatusOK, nil)
}

func (h *Handler) renderEndpoints(w http.ResponseWriter, r *http.Request, status int, tried *tryResult) {
	d := endpointsData{Hosting: h.Endpoints != nil, Tried: tried}
	if h.Endpoints != nil {
		d.Endpoints = h.Endpoints()
		d.Capacity = map[string]*capacityHistory{}
		now := h.now()
		for _, ep := range d.Endpoints {
			c, err := h.capacity(r.Context(), ep, now)
			if err != nil {
				h.fail(w, r, http.StatusInternalServerError, err.Error())
				return
			}
			d.Capacity[ep.Name] = c
		}
	}
	msg := ""
	if tried != nil && tried.Error != "" && status >= 400 && status < 500 {
		msg = tried.Error
	}
	h.renderStatus(w, r, status, "endpoints", page{Title: "Endpoints", Error: msg, Data: d})
}

// invokeEndpoint invokes an endpoint with the form's body, as
// InvokeEndpoint does, through the gateway's call lifecycle: the call is
// the signed-in key's, rate-limited and recorded in the ledger (surface
// "console") like any other, and the answer is shown on the page.
func (h *Handler) invokeEndpoint(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body := r.PostFormValue("body")
	tried := &tryResult{Endpoint: name, Request: body, RequestType: strings.TrimSpace(r.PostFormValue("content_type"))}
	if tried.RequestType == "" {
		tried.RequestType = "application/json"
	}
	if body == "" {
		tried.Error = "Body: an invocation needs a body, which the model server receives as it is."
		h.renderEndpoints(w, r, http.StatusBadRequest, tried)
		return
	}
	inv := &hosting.Invocation{Endpoint: name, TargetVariant: strings.TrimSpace(r.PostFormValue("variant")),
		ContentType: tried.RequestType, Accept: strings.TrimSpace(r.PostFormValue("accept")), Body: []byte(body), Timeout: invokeTimeout}
	began := time.Now()
	res, err := h.Invoke(r, viewerFrom(r.Context()).Key, inv)
	tried.LatencyMS = float64(time.Since(began).Microseconds()) / 1000
	if err != nil {
		status := http.StatusBadGateway
		var he *hosting.Error
		if errors.As(err, &he) {
			tried.Error = he.Code + ": " + he.Message
			if he.Status < 500 {
				status = he.Status
			}
		} else {
			tried.Error = err.Error()
		}
		h.renderEndpoints(w, r, status, tried)
		return
	}
	tried.Variant, tried.ContentType, tried.Bytes = res.Variant, res.ContentType, len(res.Body)
	if tried.Shown = utf8.Valid(res.Body); tried.Shown {
		tried.Body = string(res.Body[:min(len(res.Body), maxShownAnswer)])
	}
	h.renderEndpoints(w, r, http.StatusOK, tried)
}

// Invoker invokes a hosted endpoint for key through the gateway, as the
// SageMaker runtime surface does, and ends the call.
type Invoker func(r *http.Request, key *keys.Key, inv *hosting.Invocation) (*hosting.Result, error)
