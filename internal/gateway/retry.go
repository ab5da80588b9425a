package gateway

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/router"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// retrySame decides whether an attempt on d that failed with err is sent
// to d again, and after how long. Worth repeating on the same deployment
// are a 429 that says when to come back (Retry-After, waited for when it
// fits the cap and the request's deadline), and a server error or a
// connection reset before any answer (after a backoff). Other failures —
// overloaded, timed out, a 429 without Retry-After — go to the next
// deployment at once. Retries are bounded per route, by the call's
// attempts, and per deployment and second across all calls.
func (g *Gateway) retrySame(ctx context.Context, c *Call, d *router.Deployment, err error) (time.Duration, bool) {
	if err == nil || c.retries >= c.plan.Retries() || c.Attempts >= g.maxAttempts() || ctx.Err() != nil {
		return 0, false
	}
	e := llm.AsError(err)
	var wait time.Duration
	switch {
	case e.Status == http.StatusTooManyRequests:
		secs, perr := strconv.ParseFloat(e.RetryAfter, 64)
		if perr != nil || secs < 0 {
			return 0, false
		}
		wait = time.Duration(secs * float64(time.Second))
		if wait > c.plan.MaxRetryWait() {
			return 0, false
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return 0, false
		}
	case e.Type == llm.ErrUpstream && e.Status >= 500:
		wait = g.jitter(c.Attempts + 1)
	default:
		return 0, false
	}
	if !d.AllowRetry() {
		return 0, false
	}
	return wait, true
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
