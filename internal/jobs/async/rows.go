package async

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// job is a leased request, as a worker serves it.
type job struct {
	ID, Endpoint, InferenceID, Input  string
	Body                              []byte
	Output, Failure                   string
	ContentType, Accept, CustomAttrs  string
	Timeout                           time.Duration
	Attempts                          int
	EnqueuedAt                        time.Time
	SuccessWebhook, ErrorWebhook, Key string
}

const jobColumns = `id, endpoint, inference_id, input, body, output, failure, content_type, accept, custom_attributes,
	timeout_ms, attempts, enqueued_at, success_webhook, error_webhook, key_id`

func scanJob(row interface{ Scan(...any) error }) (*job, error) {
	j := &job{}
	var timeout, enq int64
	if err := row.Scan(&j.ID, &j.Endpoint, &j.InferenceID, &j.Input, &j.Body, &j.Output, &j.Failure, &j.ContentType, &j.Accept,
		&j.CustomAttrs, &timeout, &j.Attempts, &enq, &j.SuccessWebhook, &j.ErrorWebhook, &j.Key); err != nil {
		return nil, err
	}
	j.Timeout, j.EnqueuedAt = time.Duration(timeout)*time.Millisecond, time.UnixMilli(enq)
	return j, nil
}

// claim leases the oldest ready request of endpoint to this replica, if
// fewer than limit of the endpoint's requests are running, and returns
// it; nil when there is none to take. The count and the lease are one
// statement, so replicas sharing a database keep to the limit together
// (on PostgreSQL up to a race between two claims at the same instant).
func (q *Queue) claim(ctx context.Context, endpoint string, limit int) (*job, error) {
	now := time.Now()
	row := q.db.QueryRowContext(ctx, `UPDATE async_requests SET state = ?, holder = ?, lease_until = ?, attempts = attempts + 1, started_at = ?
		WHERE id = (SELECT id FROM async_requests WHERE state = ? AND endpoint = ? AND not_before <= ? ORDER BY seq LIMIT 1)
		AND state = ? AND (SELECT COUNT(*) FROM async_requests WHERE state = ? AND endpoint = ?) < ?
		RETURNING `+jobColumns,
		StateRunning, q.opts.Holder, now.Add(q.opts.LeaseTTL).UnixMilli(), now.UnixMilli(),
		StateQueued, endpoint, now.UnixMilli(), StateQueued, StateRunning, endpoint, limit)
	j, err := scanJob(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return j, err
}

// claimID leases one request by id, whatever its lease, when its state is
// from; the sweeper uses it to take over an expired lease or a request
// past its TTL.
func (q *Queue) claimID(ctx context.Context, id, from string, leaseBefore int64) (*job, error) {
	now := time.Now()
	row := q.db.QueryRowContext(ctx, `UPDATE async_requests SET state = ?, holder = ?, lease_until = ?
		WHERE id = ? AND state = ? AND lease_until < ? RETURNING `+jobColumns,
		StateRunning, q.opts.Holder, now.Add(q.opts.LeaseTTL).UnixMilli(), id, from, leaseBefore)
	j, err := scanJob(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return j, err
}

// finish records a leased request's end and, when a webhook wants to
// hear of it, queues the notification. It reports whether this replica
// still held the lease.
func (q *Queue) finish(ctx context.Context, j *job, state, errMsg, contentType string) (bool, error) {
	hook := j.SuccessWebhook
	if state == StateFailed {
		hook = j.ErrorWebhook
	}
	notify := notifyNone
	if hook != "" {
		notify = notifyPending
	}
	now := time.Now().UnixMilli()
	res, err := q.db.ExecContext(ctx, `UPDATE async_requests SET state = ?, error = ?, result_content_type = ?, finished_at = ?, holder = '',
		lease_until = 0, body = NULL, notify = ?, notify_at = ? WHERE id = ? AND state = ? AND holder = ?`,
		state, errMsg, contentType, now, notify, now, j.ID, StateRunning, q.opts.Holder)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	if n == 1 && notify == notifyPending {
		poke(q.notify)
	}
	return n == 1, nil
}

// requeue gives a leased request back to the queue, to be tried again
// after wait.
func (q *Queue) requeue(ctx context.Context, j *job, reason string, wait time.Duration) error {
	_, err := q.db.ExecContext(ctx, `UPDATE async_requests SET state = ?, holder = '', lease_until = 0, not_before = ?, error = ?
		WHERE id = ? AND state = ? AND holder = ?`,
		StateQueued, time.Now().Add(wait).UnixMilli(), reason, j.ID, StateRunning, q.opts.Holder)
	return err
}
