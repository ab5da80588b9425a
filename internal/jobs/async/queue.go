package async

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/junctionhq/junction/internal/blob"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/platform/store"
)

// Backend serves the queue's invocations and says what each endpoint is:
// the hosting controller, or the gateway's call lifecycle in front of it.
type Backend interface {
	// Invoke calls the endpoint's model server, as InvokeEndpoint does.
	Invoke(ctx context.Context, inv *hosting.Invocation) (*hosting.Result, error)
	// Endpoint describes an endpoint, its instances included.
	Endpoint(name string) (*hosting.Endpoint, error)
}

// Configs reads endpoint configs and records endpoint events; the
// hosting store implements it.
type Configs interface {
	Config(ctx context.Context, name string) (*hosting.EndpointConfig, error)
	AddEvent(ctx context.Context, endpoint, message string) error
}

// Queue is the durable queue of async invocations and the workers that
// serve it. Enqueue may be called before Start; Start runs the workers
// until Close.
type Queue struct {
	db      *sql.DB
	dialect store.Dialect
	backend Backend
	configs Configs
	objects *blob.Objects
	opts    Options
	log     *slog.Logger

	wake   chan struct{} // a request was queued or a worker finished
	notify chan struct{} // a notification became due
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// local counts this replica's running requests per endpoint, so
	// that the dispatcher does not over-ask between database reads.
	mu    sync.Mutex
	local map[string]int

	stats counters
	// wait is the time requests waited from enqueue to their first
	// dispatch, in seconds.
	wait prometheus.Histogram
}

// counters are the queue's running totals, for metrics and tests.
type counters struct {
	enqueued, succeeded, failed, retried, expired atomic.Int64
	notified, notifyRetries, notifyFailed         atomic.Int64
}

// New returns a Queue over db. objects reads inputs and writes outputs.
func New(db *sql.DB, backend Backend, configs Configs, objects *blob.Objects, opts Options, log *slog.Logger) *Queue {
	opts.defaults()
	if opts.Holder == "" {
		host, _ := os.Hostname()
		opts.Holder = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), randomHex(4))
	}
	if log == nil {
		log = slog.Default()
	}
	q := &Queue{db: db, dialect: store.DialectOf(db), backend: backend, configs: configs, objects: objects, opts: opts, log: log,
		wake: make(chan struct{}, 1), notify: make(chan struct{}, 1), local: map[string]int{},
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "junction_async_queue_wait_seconds",
			Help:    "Time async invocations waited from enqueue to their first dispatch to an instance, on this replica (waiting for capacity included).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600}})}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	return q
}

func randomHex(n int) string {
	b := make([]byte, n)
	crand.Read(b)
	return hex.EncodeToString(b)
}

// newID returns a random UUID (version 4), the name of a request's output.
func newID() string { return uuid.NewString() }

// Request is one InvokeEndpointAsync call, as the runtime surface parsed
// it.
type Request struct {
	Endpoint string
	// Input is the input object's URI (s3:// or file://); empty when
	// Body carries the input inline.
	Input string
	Body  []byte
	// ContentType, Accept and CustomAttributes pass through to the model
	// server.
	ContentType, Accept, CustomAttributes string
	// InferenceID is the caller's id; empty means the request's own.
	InferenceID string
	// TTL bounds the time the request may wait in the queue (default 6 h);
	// InvocationTimeout bounds the model server's answer (default 15 min).
	TTL, InvocationTimeout time.Duration
	// OutputPathExtension is a path under the config's output path;
	// Filename replaces the output's default name (ID.out).
	OutputPathExtension, Filename string
	// KeyID is the API key that queued it.
	KeyID string
}

// Accepted is a queued request's receipt.
type Accepted struct {
	ID, InferenceID string
	// Output and Failure are where the answer or the failure will land.
	Output, Failure string
}

// wake pokes a loop without blocking.
func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Enqueue stores a request and returns where its result will be. A
// request that cannot be served (no such endpoint, one without
// async_inference, a bad input location) is a *hosting.Error
// ValidationError saying what to fix.
func (q *Queue) Enqueue(ctx context.Context, r *Request) (*Accepted, error) {
	ep, err := q.backend.Endpoint(r.Endpoint)
	if err != nil {
		return nil, hosting.Validation("Endpoint %s not found.", r.Endpoint)
	}
	cfg, err := q.configs.Config(ctx, ep.Config)
	if err != nil {
		return nil, fmt.Errorf("async: config %s of endpoint %s: %w", ep.Config, ep.Name, err)
	}
	ai := cfg.AsyncInference
	if ai == nil {
		return nil, hosting.Validation("Endpoint %s is not an asynchronous endpoint: its config %s has no async_inference; "+
			"call InvokeEndpoint instead, or give the config async_inference.output_path", ep.Name, ep.Config)
	}
	if err := q.checkInput(r); err != nil {
		return nil, err
	}
	if r.TTL == 0 {
		r.TTL = DefaultTTL
	}
	if r.InvocationTimeout == 0 {
		r.InvocationTimeout = DefaultInvocationTimeout
	}
	id := newID()
	if r.InferenceID == "" {
		r.InferenceID = id
	}
	out, fail, err := locations(ai, id, r)
	if err != nil {
		return nil, err
	}
	var success, failure string
	if n := ai.Notification; n != nil {
		success, failure = n.SuccessWebhook, n.ErrorWebhook
	}
	now := time.Now()
	_, err = q.db.ExecContext(ctx, `INSERT INTO async_requests(id, endpoint, inference_id, input, body, output, failure, content_type, accept,
		custom_attributes, timeout_ms, key_id, state, enqueued_at, expires_at, success_webhook, error_webhook)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, r.Endpoint, r.InferenceID, r.Input, r.Body, out.String(), fail.String(), r.ContentType, r.Accept, r.CustomAttributes,
		r.InvocationTimeout.Milliseconds(), r.KeyID, StateQueued, now.UnixMilli(), now.Add(r.TTL).UnixMilli(), success, failure)
	if err != nil {
		return nil, fmt.Errorf("async: queue the request: %w", err)
	}
	q.stats.enqueued.Add(1)
	poke(q.wake)
	return &Accepted{ID: id, InferenceID: r.InferenceID, Output: out.String(), Failure: fail.String()}, nil
}

// checkInput refuses an input Junction must not or cannot read.
func (q *Queue) checkInput(r *Request) error {
	if r.Input == "" {
		if len(r.Body) == 0 {
			return hosting.Validation("InputLocation: required (s3://bucket/key or file:///path), unless the input is sent inline as the body")
		}
		return nil
	}
	l, err := blob.ParseLocation(r.Input)
	if err != nil {
		return hosting.Validation("InputLocation: %v", err)
	}
	if l.Key == "" || strings.HasSuffix(l.Key, "/") {
		return hosting.Validation("InputLocation %s names a prefix; name the input object", r.Input)
	}
	if l.Scheme == "s3" && q.objects.S3 == nil {
		return hosting.Validation("InputLocation %s: this Junction has no S3 configured (s3: in its config)", r.Input)
	}
	if l.Scheme == "file" && !q.fileAllowed(l.Key) {
		return hosting.Validation("InputLocation %s: file:// inputs must lie under one of async.file_input_dirs (%s)", r.Input, q.allowedList())
	}
	return nil
}

func (q *Queue) fileAllowed(path string) bool {
	for _, dir := range q.opts.FileInputDirs {
		if rel, err := filepath.Rel(filepath.Clean(dir), path); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && rel != "." {
			return true
		}
	}
	return false
}

func (q *Queue) allowedList() string {
	if len(q.opts.FileInputDirs) == 0 {
		return "none are configured"
	}
	return strings.Join(q.opts.FileInputDirs, ", ")
}

// locations are a request's output and failure objects: ID.out (or the
// caller's file name) under the output path and the extension, and
// ID-error.out under the failure path.
func locations(ai *hosting.AsyncInference, id string, r *Request) (out, fail blob.Location, err error) {
	base, err := blob.ParseLocation(ai.OutputPath)
	if err != nil {
		return out, fail, fmt.Errorf("async: output_path: %w", err)
	}
	failPath := ai.FailurePath
	if failPath == "" {
		failPath = ai.OutputPath
	}
	fbase, err := blob.ParseLocation(failPath)
	if err != nil {
		return out, fail, fmt.Errorf("async: failure_path: %w", err)
	}
	name := id + ".out"
	if r.Filename != "" {
		if strings.Contains(r.Filename, "/") || r.Filename == "." || r.Filename == ".." {
			return out, fail, hosting.Validation("X-Amzn-SageMaker-Filename %q must be a plain file name", r.Filename)
		}
		name = r.Filename
	}
	if ext := strings.Trim(r.OutputPathExtension, "/"); ext != "" {
		for _, part := range strings.Split(ext, "/") {
			if part == "" || part == "." || part == ".." {
				return out, fail, hosting.Validation("X-Amzn-SageMaker-S3OutputPathExtension %q must be a relative path without . or .. parts", r.OutputPathExtension)
			}
		}
		base = base.Join(ext)
	}
	return base.Join(name), fbase.Join(id + "-error.out"), nil
}
