package batch

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune an Engine.
type Options struct {
	// Concurrency is the most records of one model in flight; default 16.
	Concurrency int
	// MaxAttempts bounds the calls for a record answered 429 or 5xx;
	// default 5.
	MaxAttempts int
	// RetryBackoff is the base of the jittered wait before retrying a 5xx
	// and the pause after a 429 with no Retry-After; default 1s.
	RetryBackoff time.Duration
	// MaxJobs is the most jobs this engine runs at once; default 2.
	MaxJobs int
	// PollInterval is how often the engine looks for jobs to run and a
	// running job for a cancel; default 1s.
	PollInterval time.Duration
	// Lease is how long a replica holds a job without renewing; default
	// 30s. Another replica takes a job whose lease has lapsed.
	Lease time.Duration
	// Exclusive says no other process uses the database (SQLite): on its
	// first look the engine takes every unfinished job, whatever lease a
	// killed predecessor left.
	Exclusive bool
	// PerSecond returns the starts per second batch records of a model
	// may make; 0 means no cap.
	PerSecond func(model string) float64
	Log       *slog.Logger
}

// Engine runs batch jobs.
type Engine struct {
	opt   Options
	jobs  jobs
	kinds map[string]Kind
	owner string
	wake  chan struct{}

	// completed, failed and retried count what this engine committed.
	completed, failed, retried atomic.Int64

	mu      sync.Mutex
	running map[string]*progress
	pacers  map[string]*Pacer
}

// New returns an engine over db running jobs of the given kinds (by
// name). Nothing runs until Run.
func New(db *sql.DB, kinds map[string]Kind, opt Options) *Engine {
	if opt.Concurrency <= 0 {
		opt.Concurrency = 16
	}
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = 5
	}
	if opt.RetryBackoff <= 0 {
		opt.RetryBackoff = time.Second
	}
	if opt.MaxJobs <= 0 {
		opt.MaxJobs = 2
	}
	if opt.PollInterval <= 0 {
		opt.PollInterval = time.Second
	}
	if opt.Lease <= 0 {
		opt.Lease = 30 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Engine{opt: opt, jobs: jobs{db}, kinds: kinds, owner: NewID("engine-"), wake: make(chan struct{}, 1),
		running: map[string]*progress{}, pacers: map[string]*Pacer{}}
}

// pacer returns the pacer shared by every job's records of model.
func (e *Engine) pacer(model string) *Pacer {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.pacers[model]
	if p == nil {
		var ps float64
		if e.opt.PerSecond != nil {
			ps = e.opt.PerSecond(model)
		}
		p = NewPacer(e.opt.Concurrency, ps)
		e.pacers[model] = p
	}
	return p
}

func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Create stores a new job, in status validating, and wakes the engine.
// The job's ID, Kind, KeyID, KeyName, Tags and Spec are the caller's;
// window is how long it may take (OpenAI's 24h).
func (e *Engine) Create(ctx context.Context, j *Job, window time.Duration) error {
	if _, ok := e.kinds[j.Kind]; !ok {
		return fmt.Errorf("batch: unknown job kind %q", j.Kind)
	}
	now := time.Now()
	j.Status = Validating
	j.CreatedAt, j.ExpiresAt = now, now.Add(window)
	j.Times = map[Status]int64{Validating: now.Unix()}
	if err := e.jobs.insert(ctx, j); err != nil {
		return err
	}
	e.poke()
	return nil
}

// Get returns job id; keyID, when set, must be its owner's.
func (e *Engine) Get(ctx context.Context, keyID, id string) (*Job, error) {
	j, err := e.jobs.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if keyID != "" && j.KeyID != keyID {
		return nil, ErrNotFound
	}
	return j, nil
}

// List returns jobs newest first and whether more follow.
func (e *Engine) List(ctx context.Context, f Filter) ([]*Job, bool, error) {
	return e.jobs.list(ctx, f)
}

// Cancel asks for job id to stop: it goes to cancelling, its records in
// flight finish, and it ends cancelled with what was done. Cancelling a
// job already done changes nothing. keyID, when set, must own the job.
func (e *Engine) Cancel(ctx context.Context, keyID, id string) (*Job, error) {
	j, err := e.Get(ctx, keyID, id)
	if err != nil {
		return nil, err
	}
	if _, err := e.jobs.setStatus(ctx, j, Cancelling, Validating, InProgress); err != nil {
		return nil, err
	}
	e.mu.Lock()
	if p := e.running[id]; p != nil {
		p.cancel()
	}
	e.mu.Unlock()
	e.poke()
	return e.Get(ctx, keyID, id)
}

// Run runs jobs until ctx ends, then waits for the jobs it started to
// stop (records in flight are abandoned uncommitted, to run again on the
// next start).
func (e *Engine) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(e.opt.PollInterval)
	defer t.Stop()
	first := e.opt.Exclusive
	for {
		e.startJobs(ctx, &wg, first)
		first = false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.wake:
		}
	}
}

// startJobs leases and starts runnable jobs up to MaxJobs.
func (e *Engine) startJobs(ctx context.Context, wg *sync.WaitGroup, takeover bool) {
	e.mu.Lock()
	free := e.opt.MaxJobs - len(e.running)
	e.mu.Unlock()
	if free <= 0 {
		return
	}
	now := time.Now()
	lapsed := now
	if takeover {
		lapsed = now.Add(100 * 365 * 24 * time.Hour)
	}
	ids, err := e.jobs.runnable(ctx, e.owner, lapsed, free+e.opt.MaxJobs)
	if err != nil {
		if ctx.Err() == nil {
			e.opt.Log.Warn("batch: listing jobs to run failed", "err", err)
		}
		return
	}
	for _, id := range ids {
		if free == 0 {
			return
		}
		e.mu.Lock()
		_, busy := e.running[id]
		e.mu.Unlock()
		if busy {
			continue
		}
		ok, err := e.jobs.lease(ctx, id, e.owner, lapsed, now.Add(e.opt.Lease))
		if err != nil || !ok {
			continue
		}
		j, err := e.jobs.get(ctx, id)
		if err != nil {
			continue
		}
		jctx, cancel := context.WithCancel(ctx)
		p := newProgress(j)
		p.stopRun = cancel
		e.mu.Lock()
		e.running[id] = p
		e.mu.Unlock()
		free--
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			e.run(jctx, j, p)
			e.mu.Lock()
			delete(e.running, id)
			e.mu.Unlock()
			e.jobs.release(context.WithoutCancel(ctx), id, e.owner)
			e.poke()
		}()
	}
}

// Stats are an engine's counters since it started, for metrics.
type Stats struct {
	// Completed and Failed count records this engine committed; Retries
	// their calls beyond one each.
	Completed, Failed, Retries int64
	// Running is the number of jobs this engine runs now.
	Running int
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	n := len(e.running)
	e.mu.Unlock()
	return Stats{Completed: e.completed.Load(), Failed: e.failed.Load(), Retries: e.retried.Load(), Running: n}
}
