package async

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/blob"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/platform/store/storetest"
)

// fleet stands in for the hosting controller: an endpoint with a number
// of instances in service, whose invocations run answer.
type fleet struct {
	instances atomic.Int64
	answer    func(ctx context.Context, inv *hosting.Invocation) (*hosting.Result, error)
	inflight  atomic.Int64
	peak      atomic.Int64
	calls     atomic.Int64
}

func (f *fleet) Invoke(ctx context.Context, inv *hosting.Invocation) (*hosting.Result, error) {
	f.calls.Add(1)
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return f.answer(ctx, inv)
}

func (f *fleet) Endpoint(name string) (*hosting.Endpoint, error) {
	return &hosting.Endpoint{Name: name, Config: "c", Status: hosting.StatusInService,
		Variants: []hosting.VariantSummary{{Name: "a", Config: "c", CurrentInstanceCount: int(f.instances.Load())}}}, nil
}

func echo(_ context.Context, inv *hosting.Invocation) (*hosting.Result, error) {
	return &hosting.Result{Body: append([]byte("echo:"), inv.Body...), ContentType: "text/plain"}, nil
}

// setup opens a database of the backend, stores config c (async, outputs
// under a temporary directory, perInstance) and returns the queue's parts.
type rig struct {
	db      *sql.DB
	hs      *hosting.Store
	objects *blob.Objects
	out     string
	input   string
}

func newRig(t *testing.T, dsn string, perInstance int) *rig {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dir := t.TempDir()
	r := &rig{db: db, hs: &hosting.Store{DB: db}, objects: &blob.Objects{}, out: filepath.Join(dir, "out"), input: filepath.Join(dir, "in.json")}
	os.WriteFile(r.input, []byte("hello"), 0o644)
	cfg := &hosting.EndpointConfig{Name: "c", Variants: []hosting.Variant{{Name: "a", Model: "m", InstanceType: "x"}},
		AsyncInference: &hosting.AsyncInference{OutputPath: "file://" + r.out, FailurePath: "file://" + filepath.Join(dir, "fail"),
			MaxConcurrentInvocationsPerInstance: perInstance}}
	if err := cfg.Validate(func(string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if err := r.hs.CreateConfig(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) queue(t *testing.T, f *fleet, opts Options) *Queue {
	t.Helper()
	opts.FileInputDirs = []string{filepath.Dir(r.input)}
	if opts.Poll == 0 {
		opts.Poll = 20 * time.Millisecond
	}
	q := New(r.db, f, r.hs, r.objects, opts, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		q.Close(ctx)
	})
	return q
}

func (r *rig) enqueue(t *testing.T, q *Queue, req Request) *Accepted {
	t.Helper()
	req.Endpoint = "e"
	if req.Input == "" && req.Body == nil {
		req.Input = "file://" + r.input
	}
	a, err := q.Enqueue(context.Background(), &req)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func read(uri string) (string, bool) {
	b, err := os.ReadFile(strings.TrimPrefix(uri, "file://"))
	return string(b), err == nil
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func each(t *testing.T, test func(t *testing.T, dsn string)) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) { test(t, b.DSN(t)) })
	}
}

// TestConcurrencyStaysWithinTheInstances: requests run at most
// per-instance concurrency times instances at once, and all finish with
// their output.
func TestConcurrencyStaysWithinTheInstances(t *testing.T) {
	each(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn, 3)
		release := make(chan struct{})
		f := &fleet{answer: func(ctx context.Context, inv *hosting.Invocation) (*hosting.Result, error) {
			<-release
			return echo(ctx, inv)
		}}
		f.instances.Store(2)
		q := r.queue(t, f, Options{})
		q.Start()
		var accepted []*Accepted
		for range 20 {
			accepted = append(accepted, r.enqueue(t, q, Request{}))
		}
		waitFor(t, "six requests running", func() bool { return f.inflight.Load() == 6 })
		close(release)
		for _, a := range accepted {
			waitFor(t, "output "+a.Output, func() bool { b, ok := read(a.Output); return ok && b == "echo:hello" })
		}
		if p := f.peak.Load(); p != 6 {
			t.Fatalf("peak concurrency %d, want 2 instances x 3 = 6", p)
		}
		if n := f.calls.Load(); n != 20 {
			t.Fatalf("%d invocations for 20 requests", n)
		}
	})
}

// TestScaledToZeroWaitsThenExpires: an endpoint with no instance takes
// no request; one that outlives its TTL fails with a failure object.
func TestScaledToZeroWaitsThenExpires(t *testing.T) {
	each(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn, 1)
		f := &fleet{answer: echo}
		q := r.queue(t, f, Options{LeaseTTL: 300 * time.Millisecond})
		q.Start()
		short := r.enqueue(t, q, Request{TTL: 200 * time.Millisecond})
		long := r.enqueue(t, q, Request{})
		waitFor(t, "failure object of the expired request", func() bool {
			b, ok := read(short.Failure)
			return ok && strings.Contains(b, "RequestTTLExpired")
		})
		if _, ok := read(short.Output); ok {
			t.Fatal("an expired request has an output")
		}
		if f.calls.Load() != 0 {
			t.Fatal("an endpoint with no instance was invoked")
		}
		waitFor(t, "a backlog of the 1 request still waiting", func() bool {
			n, _ := q.Backlog(context.Background(), "e")
			return n == 1
		})
		f.instances.Store(1)
		waitFor(t, "output once an instance is up", func() bool { _, ok := read(long.Output); return ok })
	})
}

// TestRetriesAreBoundedThenFail: an endpoint that cannot take a request
// is tried MaxAttempts times, then the failure object says why; a
// model's own error fails at once.
func TestRetriesAreBoundedThenFail(t *testing.T) {
	each(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn, 1)
		var modelCalls atomic.Int64
		f := &fleet{answer: func(_ context.Context, inv *hosting.Invocation) (*hosting.Result, error) {
			if inv.CustomAttributes == "model" {
				modelCalls.Add(1)
				return nil, hosting.ModelFailed("a", 500, "boom")
			}
			return nil, hosting.Unavailable("no instance of endpoint e could take the call")
		}}
		f.instances.Store(1)
		q := r.queue(t, f, Options{MaxAttempts: 3, RetryBackoff: 10 * time.Millisecond})
		q.Start()
		a := r.enqueue(t, q, Request{})
		m := r.enqueue(t, q, Request{CustomAttributes: "model"})
		waitFor(t, "failure objects", func() bool {
			_, ok1 := read(a.Failure)
			_, ok2 := read(m.Failure)
			// The event is recorded after the request is marked
			// failed, so the failure objects can land first.
			evs, _ := r.hs.Events(context.Background(), "e", 10)
			return ok1 && ok2 && len(evs) >= 2
		})
		b, _ := read(a.Failure)
		if !strings.Contains(b, "ServiceUnavailable") || !strings.Contains(b, "after 3 attempts") {
			t.Fatalf("failure object: %q", b)
		}
		if n := f.calls.Load() - modelCalls.Load(); n != 3 {
			t.Fatalf("%d tries of an unavailable endpoint, want 3", n)
		}
		if modelCalls.Load() != 1 {
			t.Fatalf("a model error was retried: %d calls", modelCalls.Load())
		}
		evs, _ := r.hs.Events(context.Background(), "e", 10)
		if len(evs) != 2 || !strings.Contains(evs[0].Message, "failed") {
			t.Fatalf("events: %+v", evs)
		}
	})
}

// TestAbandonedLeaseIsRetriedOnce: a replica that stops renewing its
// lease mid-request (it died) loses the request to another, which
// serves it; the one output is the only object, even when the first
// replica's call returns late.
func TestAbandonedLeaseIsRetriedOnce(t *testing.T) {
	each(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn, 1)
		stuck := make(chan struct{})
		var entered sync.Once
		in := make(chan struct{})
		dead := &fleet{answer: func(ctx context.Context, inv *hosting.Invocation) (*hosting.Result, error) {
			entered.Do(func() { close(in) })
			<-stuck
			return &hosting.Result{Body: []byte("late")}, nil
		}}
		dead.instances.Store(1)
		a := r.queue(t, dead, Options{Holder: "dead", LeaseTTL: 300 * time.Millisecond})
		a.Start()
		acc := r.enqueue(t, a, Request{})
		<-in
		// The replica dies: its loops stop, so it renews nothing.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		a.Close(ctx)

		live := &fleet{answer: echo}
		live.instances.Store(1)
		b := r.queue(t, live, Options{Holder: "live", LeaseTTL: 300 * time.Millisecond})
		b.Start()
		waitFor(t, "the output from the live replica", func() bool { s, ok := read(acc.Output); return ok && s == "echo:hello" })
		close(stuck)
		a.Close(context.Background()) // the dead replica's call returns, late
		var state string
		var attempts int
		waitFor(t, "succeeded", func() bool {
			r.db.QueryRow(`SELECT state, attempts FROM async_requests WHERE id = ?`, acc.ID).Scan(&state, &attempts)
			return state == StateSucceeded
		})
		if attempts != 2 {
			t.Fatalf("attempts %d, want 2", attempts)
		}
		if _, ok := read(acc.Failure); ok {
			t.Fatal("a failure object beside the output")
		}
		if s, _ := read(acc.Output); s != "echo:hello" {
			t.Fatalf("output %q: the replica that lost the lease overwrote it", s)
		}
		if entries, _ := os.ReadDir(r.out); len(entries) != 1 {
			t.Fatalf("output dir holds %d entries, want the one output", len(entries))
		}
	})
}

// TestNotificationsRetryWithBackoff: a webhook that fails is called again
// until it answers 2xx; one that never does is given up after
// NotifyAttempts, with an event.
func TestNotificationsRetryWithBackoff(t *testing.T) {
	each(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn, 1)
		var okCalls, errCalls atomic.Int64
		srv := newServer(t, func(w http.ResponseWriter, req *http.Request) {
			io.Copy(io.Discard, req.Body)
			if req.URL.Path == "/ok" && okCalls.Add(1) >= 3 {
				return
			}
			if req.URL.Path == "/err" {
				errCalls.Add(1)
			}
			w.WriteHeader(http.StatusBadGateway)
		})
		cfg, _ := r.hs.Config(context.Background(), "c")
		cfg.AsyncInference.Notification = &hosting.AsyncNotification{SuccessWebhook: srv + "/ok", ErrorWebhook: srv + "/err"}
		if err := r.hs.UpdateConfig(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		f := &fleet{answer: func(ctx context.Context, inv *hosting.Invocation) (*hosting.Result, error) {
			if inv.CustomAttributes == "fail" {
				return nil, hosting.ModelFailed("a", 400, "bad")
			}
			return echo(ctx, inv)
		}}
		f.instances.Store(1)
		q := r.queue(t, f, Options{NotifyBackoff: 10 * time.Millisecond, NotifyAttempts: 4})
		q.Start()
		ok := r.enqueue(t, q, Request{})
		r.enqueue(t, q, Request{CustomAttributes: "fail"})
		var notify string
		waitFor(t, "the success notification delivered", func() bool {
			r.db.QueryRow(`SELECT notify FROM async_requests WHERE id = ?`, ok.ID).Scan(&notify)
			return notify == notifySent
		})
		waitFor(t, "the error notification given up", func() bool { return q.stats.notifyFailed.Load() == 1 })
		if okCalls.Load() != 3 || errCalls.Load() != 4 {
			t.Fatalf("deliveries: %d to /ok (want 3), %d to /err (want 4)", okCalls.Load(), errCalls.Load())
		}
	})
}

// TestBadRequestsAreRefused: what Enqueue refuses, and why.
func TestBadRequestsAreRefused(t *testing.T) {
	r := newRig(t, storetest.SQLite(t), 1)
	f := &fleet{answer: echo}
	q := r.queue(t, f, Options{})
	cases := map[string]Request{
		"under one of async.file_input_dirs": {Input: "file:///etc/passwd"},
		"no S3 configured":                   {Input: "s3://b/k"},
		"names a prefix":                     {Input: "s3://b/"},
		"want an s3:// or file:// URI":       {Input: "https://x/y"},
		"InputLocation: required":            {Body: []byte{}},
		"must be a plain file name":          {Filename: "a/b"},
		"without . or .. parts":              {OutputPathExtension: "../up"},
	}
	for want, req := range cases {
		req.Endpoint = "e"
		if req.Input == "" && req.Body == nil {
			req.Input = "file://" + r.input
		}
		_, err := q.Enqueue(context.Background(), &req)
		var he *hosting.Error
		if !errors.As(err, &he) || he.Status != 400 || !strings.Contains(he.Message, want) {
			t.Errorf("%+v: %v, want a 400 saying %q", req, err, want)
		}
	}
	if _, err := q.Enqueue(context.Background(), &Request{Endpoint: "e", Input: "file://" + r.input, OutputPathExtension: "team/a",
		Filename: "x.json"}); err != nil {
		t.Fatal(err)
	}
	var out string
	r.db.QueryRow(`SELECT output FROM async_requests`).Scan(&out)
	if want := "file://" + filepath.Join(r.out, "team", "a", "x.json"); out != want {
		t.Fatalf("output %s, want %s", out, want)
	}
}

func newServer(t *testing.T, h http.HandlerFunc) string {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}
