package async

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/blob"
	"github.com/junctionhq/junction/internal/hosting"
)

// Start runs the workers: the dispatcher, the sweeper of expired leases
// and TTLs, and the notifier. They stop at Close.
func (q *Queue) Start() {
	q.wg.Add(3)
	go q.dispatchLoop()
	go q.sweepLoop()
	go q.notifyLoop()
}

// Close stops the workers and waits for the requests in flight, which
// end as they would (or, past ctx, are left leased, to be retried once
// their lease expires).
func (q *Queue) Close(ctx context.Context) {
	q.cancel()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// dispatchLoop leases queued requests to workers as endpoints have room.
func (q *Queue) dispatchLoop() {
	defer q.wg.Done()
	t := time.NewTicker(q.opts.Poll)
	defer t.Stop()
	for {
		q.dispatch()
		select {
		case <-q.ctx.Done():
			return
		case <-q.wake:
		case <-t.C:
		}
	}
}

// dispatch starts a worker for each request an endpoint has room for.
func (q *Queue) dispatch() {
	ctx, cancel := context.WithTimeout(q.ctx, 10*time.Second)
	defer cancel()
	eps, err := q.queuedEndpoints(ctx)
	if err != nil {
		if q.ctx.Err() == nil {
			q.log.Warn("async: cannot read the queue", "err", err)
		}
		return
	}
	for _, name := range eps {
		limit := q.capacity(ctx, name)
		for q.localCount(name) < limit {
			j, err := q.claim(ctx, name, limit)
			if err != nil {
				if q.ctx.Err() == nil {
					q.log.Warn("async: cannot lease a request", "endpoint", name, "err", err)
				}
				return
			}
			if j == nil {
				break
			}
			if j.Attempts == 1 {
				q.wait.Observe(time.Since(j.EnqueuedAt).Seconds())
			}
			q.adjust(name, 1)
			q.wg.Add(1)
			go q.serve(j)
		}
	}
}

// queuedEndpoints lists the endpoints with requests ready to run.
func (q *Queue) queuedEndpoints(ctx context.Context) ([]string, error) {
	return q.ids(ctx, `SELECT DISTINCT endpoint FROM async_requests WHERE state = ? AND not_before <= ?`, StateQueued, time.Now().UnixMilli())
}

// capacity is how many of an endpoint's requests may run at once: its
// config's per-instance concurrency times its instances in service (on
// this replica's view). An endpoint scaled to zero takes none: its
// requests wait, and their backlog is what scales it up.
func (q *Queue) capacity(ctx context.Context, name string) int {
	ep, err := q.backend.Endpoint(name)
	if err != nil || ep.Status == hosting.StatusDeleting || ep.Status == hosting.StatusFailed {
		return 0
	}
	per := hosting.DefaultAsyncConcurrency
	if cfg, err := q.configs.Config(ctx, ep.Config); err == nil && cfg.AsyncInference != nil {
		per = cfg.AsyncInference.MaxConcurrentInvocationsPerInstance
	}
	n := 0
	for _, v := range ep.Variants {
		if !v.Shadow && v.Config == ep.Config {
			n += v.CurrentInstanceCount
		}
	}
	return n * per
}

func (q *Queue) localCount(name string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.local[name]
}

func (q *Queue) adjust(name string, d int) {
	q.mu.Lock()
	q.local[name] += d
	if q.local[name] <= 0 {
		delete(q.local, name)
	}
	q.mu.Unlock()
}

// serve runs one leased request to its end, renewing its lease meanwhile.
func (q *Queue) serve(j *job) {
	defer q.wg.Done()
	defer poke(q.wake)
	defer q.adjust(j.Endpoint, -1)
	// The request's own work is not cut short by Close: it ends as it
	// would, within its invocation timeout.
	ctx := context.WithoutCancel(q.ctx)
	if j.Attempts > 1 {
		// An earlier try may have written the output and died before
		// recording it: then the request is done.
		if ok, _ := q.objects.Exists(ctx, mustLocation(j.Output)); ok {
			q.succeed(ctx, j, "")
			return
		}
	}
	res, err := q.invoke(ctx, j)
	if !q.holds(ctx, j) {
		// This replica lost the lease while the call ran (it stopped
		// renewing it); the request is another's now.
		return
	}
	if err == nil {
		if err = q.objects.Put(ctx, mustLocation(j.Output), bytes.NewReader(res.Body), res.ContentType); err == nil {
			q.succeed(ctx, j, res.ContentType)
			return
		}
		err = fmt.Errorf("write the output %s: %w", j.Output, err)
	}
	if retryable(err) && j.Attempts < q.opts.MaxAttempts {
		q.stats.retried.Add(1)
		if rerr := q.requeue(ctx, j, err.Error(), backoff(q.opts.RetryBackoff, j.Attempts-1, time.Minute)); rerr != nil {
			q.log.Warn("async: cannot requeue a request; its lease will expire", "id", j.ID, "err", rerr)
		}
		return
	}
	q.fail(ctx, j, failureMessage(err, j.Attempts))
}

// holds reports whether this replica still holds the request's lease.
func (q *Queue) holds(ctx context.Context, j *job) bool {
	var holder, state string
	err := q.db.QueryRowContext(ctx, `SELECT holder, state FROM async_requests WHERE id = ?`, j.ID).Scan(&holder, &state)
	return err == nil && holder == q.opts.Holder && state == StateRunning
}

// invoke reads the input and calls the model server.
func (q *Queue) invoke(ctx context.Context, j *job) (*hosting.Result, error) {
	body := j.Body
	if j.Input != "" {
		var err error
		if body, err = q.readInput(ctx, j.Input); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, j.Timeout)
	defer cancel()
	res, err := q.backend.Invoke(ctx, &hosting.Invocation{Endpoint: j.Endpoint, ContentType: j.ContentType, Accept: j.Accept,
		CustomAttributes: j.CustomAttrs, InferenceID: j.InferenceID, Body: body})
	if err == nil && res == nil {
		err = errors.New("the endpoint returned neither an answer nor an error")
	}
	if err != nil && ctx.Err() != nil {
		return nil, &hosting.Error{Status: http.StatusFailedDependency, Code: hosting.ErrModel,
			Message: fmt.Sprintf("the model server did not answer within the invocation timeout (%s)", j.Timeout)}
	}
	return res, err
}

// permanent is an input that can never be served; retrying cannot help.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

func (q *Queue) readInput(ctx context.Context, uri string) ([]byte, error) {
	l, err := blob.ParseLocation(uri)
	if err != nil {
		return nil, permanent{fmt.Errorf("input %s: %w", uri, err)}
	}
	r, err := q.objects.Open(ctx, l)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, permanent{fmt.Errorf("input: %w", err)}
	}
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", uri, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, q.opts.MaxInputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read the input %s: %w", uri, err)
	}
	if int64(len(b)) > q.opts.MaxInputBytes {
		return nil, permanent{fmt.Errorf("input %s is larger than the %d-byte limit (async.max_input_bytes)", uri, q.opts.MaxInputBytes)}
	}
	return b, nil
}

// retryable reports whether another try may succeed: the endpoint could
// not take the request (no instance, one that died mid-request, a full
// fleet), or storage failed. A model's own error and a bad input are
// final.
func retryable(err error) bool {
	var p permanent
	if errors.As(err, &p) {
		return false
	}
	var he *hosting.Error
	if errors.As(err, &he) {
		switch he.Code {
		case hosting.ErrModel, hosting.ErrValidation:
			return false
		}
	}
	return true
}

func failureMessage(err error, attempts int) string {
	var he *hosting.Error
	msg := err.Error()
	if errors.As(err, &he) {
		msg = he.Code + ": " + he.Message
	}
	if retryable(err) && attempts > 1 {
		msg = fmt.Sprintf("%s (after %d attempts)", msg, attempts)
	}
	return msg
}

// succeed records a request whose output is written.
func (q *Queue) succeed(ctx context.Context, j *job, contentType string) {
	held, err := q.finish(ctx, j, StateSucceeded, "", contentType)
	if err != nil {
		q.log.Warn("async: cannot record a finished request; it will be retried and find its output", "id", j.ID, "err", err)
		return
	}
	if held {
		q.stats.succeeded.Add(1)
	}
}

// fail writes the failure object and records the request failed. The
// failure object is written only when no output is there, so that a
// request never ends with both.
func (q *Queue) fail(ctx context.Context, j *job, msg string) {
	if ok, _ := q.objects.Exists(ctx, mustLocation(j.Output)); ok {
		q.succeed(ctx, j, "")
		return
	}
	if err := q.objects.Put(ctx, mustLocation(j.Failure), strings.NewReader(msg), "text/plain"); err != nil {
		q.log.Warn("async: cannot write a failure object; the request will be retried", "id", j.ID, "failure", j.Failure, "err", err)
		q.requeue(ctx, j, msg, q.opts.RetryBackoff)
		return
	}
	held, err := q.finish(ctx, j, StateFailed, msg, "")
	if err != nil {
		q.log.Warn("async: cannot record a failed request", "id", j.ID, "err", err)
		return
	}
	if held {
		q.stats.failed.Add(1)
		q.event(j.Endpoint, fmt.Sprintf("async invocation %s (inference id %s) failed: %s", j.ID, j.InferenceID, msg))
	}
}

func (q *Queue) event(endpoint, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.configs.AddEvent(ctx, endpoint, msg); err != nil {
		q.log.Warn("async: event not stored", "endpoint", endpoint, "err", err)
	}
}

// mustLocation parses a location stored by Enqueue, which parsed it once.
func mustLocation(uri string) blob.Location {
	l, _ := blob.ParseLocation(uri)
	return l
}
