// Package jobs is the control plane's view of batch jobs of every kind:
// /api/v1/jobs lists, describes (counts, rate, ETA) and cancels them, for
// admin keys and the `junction jobs` CLI; /api/v1/model-invocation-jobs
// is Bedrock's batch inference (bedrock.go). The jobs themselves run in
// internal/jobs/batch.
package jobs

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/jobs/batch"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Handler serves the jobs API.
type Handler struct {
	Engine *batch.Engine
}

// Register adds the routes to mux, each wrapped by auth (admin keys).
func (h *Handler) Register(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	mux.Handle("GET /api/v1/jobs", auth(http.HandlerFunc(h.list)))
	mux.Handle("GET /api/v1/jobs/{id}", auth(http.HandlerFunc(h.describe)))
	mux.Handle("POST /api/v1/jobs/{id}/cancel", auth(http.HandlerFunc(h.cancel)))
}

// Job is a job as the jobs API shows it.
type Job struct {
	ID      string       `json:"id"`
	Kind    string       `json:"kind"`
	Status  batch.Status `json:"status"`
	Model   string       `json:"model,omitempty"`
	KeyID   string       `json:"key_id"`
	KeyName string       `json:"key_name"`
	// Total is the number of records; Completed and Failed are done,
	// Pending are not yet.
	Total     int64 `json:"total"`
	Completed int64 `json:"completed"`
	Failed    int64 `json:"failed"`
	Pending   int64 `json:"pending"`
	// Retries counts upstream calls beyond one per record.
	Retries      int64 `json:"retries"`
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	// RatePerSecond is records finished per second lately; ETASeconds
	// the time left at that rate (0 when unknown or done).
	RatePerSecond float64                `json:"rate_per_second"`
	ETASeconds    float64                `json:"eta_seconds"`
	CreatedAt     time.Time              `json:"created_at"`
	ExpiresAt     time.Time              `json:"expires_at"`
	Times         map[batch.Status]int64 `json:"status_times"`
	Output        map[string]string      `json:"output,omitempty"`
	Errors        []batch.LineError      `json:"errors,omitempty"`
}

// View returns what the jobs API shows of j.
func View(e *batch.Engine, j *batch.Job) Job {
	rate, eta := e.Rate(j)
	return Job{ID: j.ID, Kind: j.Kind, Status: j.Status, Model: j.Model, KeyID: j.KeyID, KeyName: j.KeyName,
		Total: j.Total, Completed: j.Completed, Failed: j.Failed, Pending: j.Pending(), Retries: j.Retries,
		InputTokens: j.InputTokens, OutputTokens: j.OutputTokens, RatePerSecond: rate, ETASeconds: eta.Seconds(),
		CreatedAt: j.CreatedAt.UTC(), ExpiresAt: j.ExpiresAt.UTC(), Times: j.Times, Output: j.Output, Errors: j.Errors}
}

// List is the body of GET /api/v1/jobs.
type List struct {
	Jobs []Job `json:"jobs"`
	// Next is the cursor for the next page (?after=), empty at the end.
	Next string `json:"next,omitempty"`
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 50
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			admin.WriteError(w, r, llm.BadRequest("limit", "limit must be a whole number from 1 to 1000"))
			return
		}
		limit = n
	}
	js, more, err := h.Engine.List(r.Context(), batch.Filter{Kind: q.Get("kind"), After: q.Get("after"), Limit: limit})
	if err != nil {
		writeErr(w, r, err)
		return
	}
	out := List{Jobs: make([]Job, len(js))}
	for i, j := range js {
		out.Jobs[i] = View(h.Engine, j)
	}
	if more {
		out.Next = js[len(js)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) describe(w http.ResponseWriter, r *http.Request) {
	j, err := h.Engine.Get(r.Context(), "", r.PathValue("id"))
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, View(h.Engine, j))
}

func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) {
	j, err := h.Engine.Cancel(r.Context(), "", r.PathValue("id"))
	if err != nil {
		writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, View(h.Engine, j))
}

func writeErr(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, batch.ErrNotFound) {
		admin.WriteError(w, r, llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "no job %s", r.PathValue("id")))
		return
	}
	admin.WriteError(w, r, llm.Errorf(http.StatusInternalServerError, llm.ErrInternal, "%v", err))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
