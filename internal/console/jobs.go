package console

import (
	"context"
	"errors"
	"net/http"
	"time"

	jobsapi "github.com/junctionhq/junction/internal/api/jobs"
	"github.com/junctionhq/junction/internal/jobs/async"
)

// JobLister lists batch jobs of every kind, newest first, as GET
// /api/v1/jobs shows them.
type JobLister func(ctx context.Context) ([]jobsapi.Job, error)

// JobCanceller cancels a job as POST /api/v1/jobs/{id}/cancel does.
type JobCanceller func(ctx context.Context, id string) error

// jobRow is a job with what its progress bar and clock need.
type jobRow struct {
	jobsapi.Job
	Done     float64
	Terminal bool
	// ETA is the time left at the recent rate, rounded; "" when unknown.
	ETA string
}

// jobsData is the Jobs page: the async queues (for an admin) and the
// batch jobs.
type jobsData struct {
	// Queues is nil when the page shows none (no async queues, or a team
	// viewer); Batch is false when the server runs no batch jobs.
	Queues []queueRow
	Batch  bool
	Jobs   []jobRow
}

// queueRow is one endpoint's async queue with what its bar needs.
type queueRow struct {
	async.Stats
	// Done and Total are the requests finished (succeeded or failed) and
	// all the queue holds; Oldest is the oldest queued request's age.
	Done, Total float64
	Oldest      string
}

// jobsPage lists the async queues (admins only) and the batch jobs with
// their progress: all of them for an admin, those made by the team's
// keys for a team key.
func (h *Handler) jobsPage(w http.ResponseWriter, r *http.Request) {
	h.renderJobs(w, r, http.StatusOK, "")
}

func (h *Handler) renderJobs(w http.ResponseWriter, r *http.Request, status int, msg string) {
	team := viewerFrom(r.Context()).Team()
	d := jobsData{Batch: h.Jobs != nil, Jobs: []jobRow{}}
	if h.Queues != nil && team == "" {
		qs, err := h.Queues(r.Context())
		if err != nil {
			h.fail(w, r, http.StatusInternalServerError, err.Error())
			return
		}
		d.Queues = make([]queueRow, len(qs))
		for i, q := range qs {
			d.Queues[i] = queueRow{Stats: q, Done: float64(q.Succeeded + q.Failed), Total: float64(q.Queued + q.Running + q.Succeeded + q.Failed)}
			if q.Queued > 0 {
				d.Queues[i].Oldest = (time.Duration(q.OldestQueuedSeconds) * time.Second).String()
			}
		}
	}
	if h.Jobs == nil {
		h.renderStatus(w, r, status, "jobs", page{Title: "Jobs", Error: msg, Data: d})
		return
	}
	list, err := h.Jobs(r.Context())
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	ofTeam := map[string]bool{}
	if team != "" {
		all, err := h.Keys.List(r.Context())
		if err != nil {
			h.fail(w, r, http.StatusInternalServerError, err.Error())
			return
		}
		for _, k := range all {
			if k.Team == team {
				ofTeam[k.ID] = true
			}
		}
	}
	for _, j := range list {
		if team != "" && !ofTeam[j.KeyID] {
			continue
		}
		row := jobRow{Job: j, Done: float64(j.Completed + j.Failed)}
		switch j.Status {
		case "completed", "failed", "expired", "cancelled":
			row.Terminal = true
		}
		if !row.Terminal && j.ETASeconds > 0 {
			row.ETA = (time.Duration(j.ETASeconds) * time.Second).Round(time.Second).String()
		}
		d.Jobs = append(d.Jobs, row)
	}
	h.renderStatus(w, r, status, "jobs", page{Title: "Jobs", Error: msg, Data: d})
}

// cancelJob cancels a job from the page.
func (h *Handler) cancelJob(w http.ResponseWriter, r *http.Request) {
	if err := h.CancelJob(r.Context(), r.PathValue("id")); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, ErrNotFound) {
			status = http.StatusNotFound
		}
		h.renderJobs(w, r, status, err.Error())
		return
	}
	http.Redirect(w, r, "/ui/jobs", http.StatusSeeOther)
}

// ErrNotFound is what a JobCanceller returns for a job that does not
// exist.
var ErrNotFound = errors.New("not found")
