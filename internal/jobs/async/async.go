// Package async serves SageMaker-style asynchronous invocations: a
// request names an input object, is stored at once as a row of a durable
// queue in Junction's database (SQLite or PostgreSQL), and answered 202
// with where its output will land. Workers lease queued requests to an
// endpoint's instances within their concurrency, call the model server
// through hosting, and write the answer (or a failure object) atomically
// under the endpoint config's output path; webhooks are told of each
// outcome, with retries and backoff.
//
// Nothing is lost across a crash: a lease whose holder stops renewing it
// expires and the request is retried (a bounded number of times, then
// failed with a failure object); a request that outlives its TTL in the
// queue fails with a failure object. Every request ends with exactly one
// output or failure object, whose key is fixed when it is queued, so a
// retry replaces rather than adds. Notifications are delivered at least
// once: one in flight when Junction dies is sent again.
//
// It is not the wire format (api/sagemaker parses InvokeEndpointAsync),
// nor the fleet (hosting runs the instances), nor object storage (blob).
package async

import (
	"time"
)

// Request states.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
)

// Notification states.
const (
	notifyNone    = ""
	notifyPending = "pending"
	notifySent    = "sent"
	notifyFailed  = "failed"
)

// SageMaker's bounds and defaults for an async invocation.
const (
	DefaultTTL               = 6 * time.Hour
	MinTTL                   = 60 * time.Second
	MaxTTL                   = 6 * time.Hour
	DefaultInvocationTimeout = 15 * time.Minute
	MaxInvocationTimeout     = time.Hour
	// MaxInlineBody is the largest body sent inline instead of an input
	// location.
	MaxInlineBody = 128_000
)

// Options tune a Queue. Zero values take the defaults given.
type Options struct {
	// Holder names this replica in leases; empty means a random name.
	Holder string
	// LeaseTTL is how long a request stays leased to a worker without the
	// worker renewing it (default 30 s); a crashed worker's requests are
	// retried after it.
	LeaseTTL time.Duration
	// MaxAttempts bounds the tries of one request (default 3): an
	// instance or Junction that dies mid-request, or an endpoint that
	// cannot take it, counts one.
	MaxAttempts int
	// RetryBackoff is the wait before a request's second try, doubling
	// for each later one (default 1 s).
	RetryBackoff time.Duration
	// MaxInputBytes bounds an input object (default 100 MiB): the model
	// server gets it in one request body.
	MaxInputBytes int64
	// Poll is how often workers look for requests queued by other
	// replicas and for due notifications (default 250 ms); requests
	// queued here are dispatched at once.
	Poll time.Duration
	// NotifyAttempts bounds the deliveries of one notification (default
	// 10), NotifyBackoff is the wait after the first failed one, doubling
	// up to 5 minutes (default 1 s), NotifyTimeout bounds one (default
	// 10 s).
	NotifyAttempts int
	NotifyBackoff  time.Duration
	NotifyTimeout  time.Duration
	// FileInputDirs are the directories file:// inputs may be read from;
	// none means file:// inputs are refused (a client must not make
	// Junction read its own files).
	FileInputDirs []string
	// Retention is how long finished requests are kept for listing
	// (default 7 days).
	Retention time.Duration
}

func (o *Options) defaults() {
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 30 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = time.Second
	}
	if o.MaxInputBytes <= 0 {
		o.MaxInputBytes = 100 << 20
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.NotifyAttempts <= 0 {
		o.NotifyAttempts = 10
	}
	if o.NotifyBackoff <= 0 {
		o.NotifyBackoff = time.Second
	}
	if o.NotifyTimeout <= 0 {
		o.NotifyTimeout = 10 * time.Second
	}
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
}

// backoff is base doubled per step, capped at limit.
func backoff(base time.Duration, step int, limit time.Duration) time.Duration {
	d := base
	for i := 0; i < step && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
