package async

import (
	"context"
	"fmt"
	"math"
	"time"
)

// sweepLoop renews this replica's leases, takes back the requests of
// leases that expired (their holder died), fails requests that outlived
// their TTL in the queue, and forgets old finished ones.
func (q *Queue) sweepLoop() {
	defer q.wg.Done()
	t := time.NewTicker(q.opts.LeaseTTL / 3)
	defer t.Stop()
	for {
		q.sweep()
		select {
		case <-q.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (q *Queue) sweep() {
	ctx, cancel := context.WithTimeout(q.ctx, q.opts.LeaseTTL/3+5*time.Second)
	defer cancel()
	now := time.Now()
	if _, err := q.db.ExecContext(ctx, `UPDATE async_requests SET lease_until = ? WHERE holder = ? AND state = ?`,
		now.Add(q.opts.LeaseTTL).UnixMilli(), q.opts.Holder, StateRunning); err != nil {
		if q.ctx.Err() == nil {
			q.log.Warn("async: cannot renew leases", "err", err)
		}
		return
	}
	expired, err := q.ids(ctx, `SELECT id FROM async_requests WHERE state = ? AND lease_until < ? ORDER BY seq LIMIT 100`, StateRunning, now.UnixMilli())
	if err == nil {
		for _, id := range expired {
			j, err := q.claimID(ctx, id, StateRunning, now.UnixMilli())
			if err != nil || j == nil {
				continue
			}
			q.recover(context.WithoutCancel(ctx), j)
		}
	}
	old, err := q.ids(ctx, `SELECT id FROM async_requests WHERE state = ? AND expires_at < ? ORDER BY seq LIMIT 100`, StateQueued, now.UnixMilli())
	if err == nil {
		for _, id := range old {
			j, err := q.claimID(ctx, id, StateQueued, math.MaxInt64)
			if err != nil || j == nil {
				continue
			}
			q.stats.expired.Add(1)
			q.fail(context.WithoutCancel(ctx), j, fmt.Sprintf("RequestTTLExpired: the request waited in the queue longer than its TTL (queued at %s)",
				j.EnqueuedAt.UTC().Format(time.RFC3339)))
		}
	}
	q.db.ExecContext(ctx, `DELETE FROM async_requests WHERE state IN (?, ?) AND finished_at < ? AND notify <> ?`,
		StateSucceeded, StateFailed, now.Add(-q.opts.Retention).UnixMilli(), notifyPending)
}

// recover handles a request whose worker stopped renewing its lease: it
// is done if its output is there, retried if it has tries left, and
// failed otherwise.
func (q *Queue) recover(ctx context.Context, j *job) {
	if ok, _ := q.objects.Exists(ctx, mustLocation(j.Output)); ok {
		q.succeed(ctx, j, "")
		return
	}
	reason := "the worker serving it stopped before it finished (Junction or the instance died)"
	if j.Attempts >= q.opts.MaxAttempts {
		q.fail(ctx, j, fmt.Sprintf("InternalFailure: %s, %d times", reason, j.Attempts))
		return
	}
	q.stats.retried.Add(1)
	q.event(j.Endpoint, fmt.Sprintf("async invocation %s: %s; retrying (attempt %d of %d)", j.ID, reason, j.Attempts+1, q.opts.MaxAttempts))
	if err := q.requeue(ctx, j, reason, 0); err != nil {
		q.log.Warn("async: cannot requeue a request", "id", j.ID, "err", err)
	}
	poke(q.wake)
}

func (q *Queue) ids(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := q.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
