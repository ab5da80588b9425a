package async

import (
	"context"
	"database/sql"
	"time"
)

// Backlog is the number of an endpoint's requests waiting for or being
// served by an instance: SageMaker's ApproximateBacklogSize, the metric
// that scales an async endpoint (BacklogPerInstance is it over the
// instances in service), from zero when the first request queues.
func (q *Queue) Backlog(ctx context.Context, endpoint string) (int, error) {
	var n int
	err := q.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM async_requests WHERE endpoint = ? AND state IN (?, ?)`,
		endpoint, StateQueued, StateRunning).Scan(&n)
	return n, err
}

// Stats is the state of one endpoint's queue.
type Stats struct {
	Endpoint string `json:"endpoint"`
	// Queued wait for an instance; Running are being served.
	Queued  int `json:"queued"`
	Running int `json:"running"`
	// Succeeded and Failed are kept for the retention period.
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// OldestQueuedSeconds is the age of the oldest queued request.
	OldestQueuedSeconds float64 `json:"oldest_queued_seconds"`
	// NotificationsPending are due or being delivered;
	// NotificationsFailed were given up.
	NotificationsPending int `json:"notifications_pending"`
	NotificationsFailed  int `json:"notifications_failed"`
}

// Stats returns every endpoint's queue (or only endpoint's, when set).
func (q *Queue) Stats(ctx context.Context, endpoint string) ([]Stats, error) {
	rows, err := q.db.QueryContext(ctx, `SELECT endpoint,
		SUM(CASE WHEN state = ? THEN 1 ELSE 0 END), SUM(CASE WHEN state = ? THEN 1 ELSE 0 END),
		SUM(CASE WHEN state = ? THEN 1 ELSE 0 END), SUM(CASE WHEN state = ? THEN 1 ELSE 0 END),
		MIN(CASE WHEN state = ? THEN enqueued_at END),
		SUM(CASE WHEN notify = ? THEN 1 ELSE 0 END), SUM(CASE WHEN notify = ? THEN 1 ELSE 0 END)
		FROM async_requests WHERE (? = '' OR endpoint = ?) GROUP BY endpoint ORDER BY endpoint`,
		StateQueued, StateRunning, StateSucceeded, StateFailed, StateQueued, notifyPending, notifyFailed, endpoint, endpoint)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Stats{}
	now := time.Now()
	for rows.Next() {
		var s Stats
		var oldest sql.NullInt64
		if err := rows.Scan(&s.Endpoint, &s.Queued, &s.Running, &s.Succeeded, &s.Failed, &oldest, &s.NotificationsPending, &s.NotificationsFailed); err != nil {
			return nil, err
		}
		if oldest.Valid {
			s.OldestQueuedSeconds = now.Sub(time.UnixMilli(oldest.Int64)).Seconds()
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Info describes one request, for listing.
type Info struct {
	ID          string    `json:"id"`
	InferenceID string    `json:"inference_id"`
	State       string    `json:"state"`
	Attempts    int       `json:"attempts"`
	Input       string    `json:"input,omitempty"`
	Output      string    `json:"output"`
	Failure     string    `json:"failure"`
	Error       string    `json:"error,omitempty"`
	Notify      string    `json:"notification,omitempty"`
	EnqueuedAt  time.Time `json:"enqueued_at"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
}

// List returns an endpoint's requests, newest first, at most limit,
// only those in state when it is set.
func (q *Queue) List(ctx context.Context, endpoint, state string, limit int) ([]Info, error) {
	rows, err := q.db.QueryContext(ctx, `SELECT id, inference_id, state, attempts, input, output, failure, error, notify, enqueued_at, finished_at
		FROM async_requests WHERE endpoint = ? AND (? = '' OR state = ?) ORDER BY seq DESC LIMIT ?`, endpoint, state, state, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Info{}
	for rows.Next() {
		var i Info
		var enq, fin int64
		if err := rows.Scan(&i.ID, &i.InferenceID, &i.State, &i.Attempts, &i.Input, &i.Output, &i.Failure, &i.Error, &i.Notify, &enq, &fin); err != nil {
			return nil, err
		}
		i.EnqueuedAt = time.UnixMilli(enq).UTC()
		if fin > 0 {
			i.FinishedAt = time.UnixMilli(fin).UTC()
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

// BacklogSource is the autoscaler's source of BacklogPerInstance: the
// endpoint's backlog, given to each of its variants (an async endpoint's
// queue is the endpoint's, not a variant's). It reads the database, and
// gives up (reporting nothing) after two seconds.
func (q *Queue) BacklogSource(endpoint, _ string) (float64, bool) {
	ctx, cancel := context.WithTimeout(q.ctx, 2*time.Second)
	defer cancel()
	n, err := q.Backlog(ctx, endpoint)
	return float64(n), err == nil
}
