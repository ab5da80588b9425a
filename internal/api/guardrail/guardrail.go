// Package guardrail serves guardrails over HTTP: Bedrock's ApplyGuardrail
// (POST /guardrail/{guardrailIdentifier}/version/{guardrailVersion}/apply),
// authenticated and answered as the Bedrock runtime surface is, so that
// an AWS SDK's bedrockruntime client calls it unchanged; and the admin
// routes under /api/v1/guardrails that create drafts, update them and
// freeze numbered versions. Policies and detectors live in
// internal/guardrail.
package guardrail

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/api/admin"
	bedrockapi "github.com/junctionhq/junction/internal/api/bedrock"
	"github.com/junctionhq/junction/internal/guardrail"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Handler serves the guardrail routes.
type Handler struct {
	Registry *guardrail.Registry
	// Auth admits ApplyGuardrail calls; its Verifier's service is
	// bedrockapi.SigningName.
	Auth         *api.AWSAuth
	MaxBodyBytes int64
}

// Register adds ApplyGuardrail (authenticated by h.Auth) and the admin
// routes (each wrapped by adminAuth) to mux.
func (h *Handler) Register(mux *http.ServeMux, adminAuth func(http.Handler) http.Handler) {
	mux.HandleFunc("POST /guardrail/{guardrailIdentifier}/version/{guardrailVersion}/apply", h.apply)
	mux.Handle("GET /api/v1/guardrails", adminAuth(http.HandlerFunc(h.list)))
	mux.Handle("POST /api/v1/guardrails", adminAuth(http.HandlerFunc(h.create)))
	mux.Handle("GET /api/v1/guardrails/{id}", adminAuth(http.HandlerFunc(h.get)))
	mux.Handle("PUT /api/v1/guardrails/{id}", adminAuth(http.HandlerFunc(h.update)))
	mux.Handle("POST /api/v1/guardrails/{id}/versions", adminAuth(http.HandlerFunc(h.freeze)))
	mux.Handle("GET /api/v1/guardrails/{id}/versions/{version}", adminAuth(http.HandlerFunc(h.get)))
	mux.Handle("DELETE /api/v1/guardrails/{id}", adminAuth(http.HandlerFunc(h.delete)))
}

// ApplyRequest is ApplyGuardrail's body.
type ApplyRequest struct {
	Source      string         `json:"source"`
	Content     []ContentBlock `json:"content"`
	OutputScope string         `json:"outputScope,omitempty"`
}

// ContentBlock is one element of content; only text is guarded.
type ContentBlock struct {
	Text  *TextBlock      `json:"text,omitempty"`
	Image json.RawMessage `json:"image,omitempty"`
}

// TextBlock is a text to guard.
type TextBlock struct {
	Text       string   `json:"text"`
	Qualifiers []string `json:"qualifiers,omitempty"`
}

// ApplyResponse is ApplyGuardrail's answer.
type ApplyResponse struct {
	Action            string                 `json:"action"`
	ActionReason      string                 `json:"actionReason,omitempty"`
	Outputs           []Output               `json:"outputs"`
	Assessments       []guardrail.Assessment `json:"assessments"`
	Usage             guardrail.Usage        `json:"usage"`
	GuardrailCoverage guardrail.Coverage     `json:"guardrailCoverage"`
}

// Output is one output text.
type Output struct {
	Text string `json:"text"`
}

func (h *Handler) apply(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, e := h.Auth.ReadBody(w, r, h.MaxBodyBytes)
	if e != nil {
		bedrockapi.WriteError(w, r, e)
		return
	}
	var req ApplyRequest
	if err := json.Unmarshal(body, &req); err != nil {
		bedrockapi.WriteError(w, r, llm.BadRequest("", "request body is not valid JSON: %v", err))
		return
	}
	var src guardrail.Source
	switch req.Source {
	case "INPUT":
		src = guardrail.Input
	case "OUTPUT":
		src = guardrail.Output
	default:
		bedrockapi.WriteError(w, r, llm.BadRequest("source", "source: %q must be INPUT or OUTPUT", req.Source))
		return
	}
	if len(req.Content) == 0 {
		bedrockapi.WriteError(w, r, llm.BadRequest("content", "content: at least one block is required"))
		return
	}
	if req.OutputScope != "" && req.OutputScope != "INTERVENTIONS" && req.OutputScope != "FULL" {
		bedrockapi.WriteError(w, r, llm.BadRequest("outputScope", "outputScope: %q must be INTERVENTIONS or FULL", req.OutputScope))
		return
	}
	g, err := h.Registry.Lookup(r.Context(), r.PathValue("guardrailIdentifier"), r.PathValue("guardrailVersion"))
	if err != nil {
		bedrockapi.WriteError(w, r, llm.AsError(err))
		return
	}
	// Text blocks are guarded together, as Bedrock does: the whole is
	// one assessment; each block is masked in place.
	resp := ApplyResponse{Action: guardrail.ActionNone, ActionReason: "No action.", Outputs: []Output{}}
	var total guardrail.Result
	total.Action = guardrail.ActionNone
	var texts []string
	for i, b := range req.Content {
		if b.Text == nil {
			if len(b.Image) > 0 {
				bedrockapi.WriteError(w, r, llm.BadRequest("content", "content[%d]: image blocks are not guarded by Junction; send text", i))
				return
			}
			continue
		}
		texts = append(texts, b.Text.Text)
		resp.GuardrailCoverage.TextCharacters.Total += utf8.RuneCountInString(b.Text.Text)
	}
	var results []guardrail.Result
	for _, t := range texts {
		res, err := g.Apply(r.Context(), src, t)
		if err != nil {
			bedrockapi.WriteError(w, r, llm.AsError(err))
			return
		}
		results = append(results, res)
		total.Usage.Add(res.Usage)
		total.Characters += res.Characters
		if res.Intervened() {
			total.Action = guardrail.ActionIntervened
			if res.Blocked || !total.Blocked {
				total.ActionReason = res.ActionReason
			}
			total.Blocked = total.Blocked || res.Blocked
		}
	}
	resp.GuardrailCoverage.TextCharacters.Guarded = total.Characters
	resp.Usage = total.Usage
	a := mergeAssessments(results)
	a.InvocationMetrics = &guardrail.InvocationMetrics{GuardrailProcessingLatency: time.Since(start).Milliseconds(), Usage: total.Usage,
		GuardrailCoverage: &resp.GuardrailCoverage}
	resp.Assessments = []guardrail.Assessment{a}
	if total.Action == guardrail.ActionIntervened {
		resp.Action, resp.ActionReason = total.Action, total.ActionReason
		if total.Blocked {
			resp.Outputs = []Output{{Text: g.BlockedMessage(src)}}
		} else {
			for _, res := range results {
				resp.Outputs = append(resp.Outputs, Output{Text: res.Output})
			}
		}
	} else if req.OutputScope == "FULL" {
		for _, t := range texts {
			resp.Outputs = append(resp.Outputs, Output{Text: t})
		}
	}
	if id := api.InfoFrom(r.Context()).RequestID; id != "" {
		w.Header().Set("X-Amzn-Requestid", id)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// mergeAssessments folds the per-block assessments into one.
func mergeAssessments(rs []guardrail.Result) guardrail.Assessment {
	var out guardrail.Assessment
	for _, r := range rs {
		b := r.Assessment
		if b.TopicPolicy != nil {
			if out.TopicPolicy == nil {
				out.TopicPolicy = &guardrail.TopicAssessment{}
			}
			out.TopicPolicy.Topics = append(out.TopicPolicy.Topics, b.TopicPolicy.Topics...)
		}
		if b.ContentPolicy != nil {
			if out.ContentPolicy == nil {
				out.ContentPolicy = &guardrail.ContentAssessment{}
			}
			out.ContentPolicy.Filters = append(out.ContentPolicy.Filters, b.ContentPolicy.Filters...)
		}
		if b.WordPolicy != nil {
			if out.WordPolicy == nil {
				out.WordPolicy = &guardrail.WordAssessment{CustomWords: []guardrail.WordFinding{}, ManagedWordLists: []guardrail.ManagedWordFinding{}}
			}
			out.WordPolicy.CustomWords = append(out.WordPolicy.CustomWords, b.WordPolicy.CustomWords...)
			out.WordPolicy.ManagedWordLists = append(out.WordPolicy.ManagedWordLists, b.WordPolicy.ManagedWordLists...)
		}
		if b.SensitiveInformationPolicy != nil {
			if out.SensitiveInformationPolicy == nil {
				out.SensitiveInformationPolicy = &guardrail.SensitiveInformationAssessment{PIIEntities: []guardrail.PIIFinding{}, Regexes: []guardrail.RegexFinding{}}
			}
			out.SensitiveInformationPolicy.PIIEntities = append(out.SensitiveInformationPolicy.PIIEntities, b.SensitiveInformationPolicy.PIIEntities...)
			out.SensitiveInformationPolicy.Regexes = append(out.SensitiveInformationPolicy.Regexes, b.SensitiveInformationPolicy.Regexes...)
		}
	}
	return out
}

// Admin routes.

// writeError answers an admin route in the admin API's error shape.
func writeError(w http.ResponseWriter, e *llm.Error) { admin.WriteError(w, nil, e) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// errNoStore refuses a change where guardrails are defined by the config
// alone.
var errNoStore = llm.Errorf(http.StatusNotImplemented, llm.ErrInvalidRequest, "this Junction stores no guardrails; define them in the config")

func (h *Handler) store(w http.ResponseWriter) *guardrail.Store {
	s := h.Registry.Store()
	if s == nil {
		writeError(w, errNoStore)
	}
	return s
}

// readPolicy decodes a policy body.
func (h *Handler) readPolicy(w http.ResponseWriter, r *http.Request) (guardrail.Policy, bool) {
	var p guardrail.Policy
	body, e := api.ReadBody(w, r, 1<<20)
	if e != nil {
		writeError(w, e)
		return p, false
	}
	if e := DecodePolicy(body, &p); e != nil {
		writeError(w, e)
		return p, false
	}
	return p, true
}

// DecodePolicy reads a policy as POST and PUT /api/v1/guardrails take it:
// JSON, with no field the policy does not have.
func DecodePolicy(body []byte, p *guardrail.Policy) *llm.Error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		return llm.BadRequest("", "request body is not a guardrail policy: %v", err)
	}
	return nil
}

// notFound is the answer for an unknown guardrail.
func notFound(id string) *llm.Error {
	return llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "guardrail %s does not exist", id)
}

// CreatePolicy validates p and stores it as a new guardrail's draft, as
// POST /api/v1/guardrails does.
func (h *Handler) CreatePolicy(ctx context.Context, p guardrail.Policy) (*guardrail.Record, *llm.Error) {
	s := h.Registry.Store()
	if s == nil {
		return nil, errNoStore
	}
	if probs := p.Validate("policy"); len(probs) > 0 {
		return nil, llm.BadRequest("", "%s", strings.Join(probs, "; "))
	}
	rec, err := s.Create(ctx, p)
	if err != nil {
		return nil, llm.AsError(err)
	}
	return rec, nil
}

// UpdatePolicy validates p and makes it guardrail id's draft, as PUT
// /api/v1/guardrails/{id} does.
func (h *Handler) UpdatePolicy(ctx context.Context, id string, p guardrail.Policy) (*guardrail.Record, *llm.Error) {
	s := h.Registry.Store()
	if s == nil {
		return nil, errNoStore
	}
	if probs := p.Validate("policy"); len(probs) > 0 {
		return nil, llm.BadRequest("", "%s", strings.Join(probs, "; "))
	}
	rec, err := s.UpdateDraft(ctx, id, p)
	if errors.Is(err, guardrail.ErrNotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, llm.AsError(err)
	}
	h.Registry.Forget(rec.ID)
	return rec, nil
}

// DeletePolicy removes stored guardrail id (or name), its draft and
// every version, as DELETE /api/v1/guardrails/{id} does. A guardrail of
// the config cannot be deleted here.
func (h *Handler) DeletePolicy(ctx context.Context, id string) *llm.Error {
	for _, c := range h.Registry.Configured() {
		if c.ID == id {
			return llm.BadRequest("", "guardrail %s is defined in the config; remove it there", id)
		}
	}
	s := h.Registry.Store()
	if s == nil {
		return errNoStore
	}
	rec, err := s.Delete(ctx, id)
	if errors.Is(err, guardrail.ErrNotFound) {
		return notFound(id)
	}
	if err != nil {
		return llm.AsError(err)
	}
	h.Registry.Forget(rec.ID)
	h.Registry.Forget(rec.Policy.Name)
	return nil
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	p, ok := h.readPolicy(w, r)
	if !ok {
		return
	}
	rec, e := h.CreatePolicy(r.Context(), p)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusCreated, rec)
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	p, ok := h.readPolicy(w, r)
	if !ok {
		return
	}
	rec, e := h.UpdatePolicy(r.Context(), r.PathValue("id"), p)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	if e := h.DeletePolicy(r.Context(), r.PathValue("id")); e != nil {
		writeError(w, e)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) freeze(w http.ResponseWriter, r *http.Request) {
	s := h.store(w)
	if s == nil {
		return
	}
	rec, err := s.CreateVersion(r.Context(), r.PathValue("id"))
	if h.storeError(w, r, err) {
		return
	}
	writeJSON(w, http.StatusCreated, rec)
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	id, version := r.PathValue("id"), r.PathValue("version")
	if version == "" {
		version = guardrail.Draft
	}
	for _, c := range h.Registry.Configured() {
		if c.ID == id {
			writeJSON(w, http.StatusOK, c)
			return
		}
	}
	s := h.store(w)
	if s == nil {
		return
	}
	rec, err := s.Get(r.Context(), id, version)
	if h.storeError(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	out, err := h.List(r.Context())
	if err != nil {
		writeError(w, llm.AsError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"guardrails": out})
}

// List is what GET /api/v1/guardrails lists: the config's guardrails,
// then the stored ones; the console shows it.
func (h *Handler) List(ctx context.Context) ([]*guardrail.Record, error) {
	out := h.Registry.Configured()
	if s := h.Registry.Store(); s != nil {
		stored, err := s.List(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, stored...)
	}
	if out == nil {
		out = []*guardrail.Record{}
	}
	return out, nil
}

func (h *Handler) storeError(w http.ResponseWriter, r *http.Request, err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, guardrail.ErrNotFound) {
		writeError(w, llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "guardrail %s does not exist", r.PathValue("id")))
		return true
	}
	writeError(w, llm.AsError(err))
	return true
}
