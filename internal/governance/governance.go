// Package governance decides, for each request, which budgets and rate
// limits apply to it, admits it under all of them at once before it
// reaches an upstream, and settles its real cost and tokens when it ends.
// It turns configuration (and budgets made through the admin API) into
// scopes; the budget and ratelimit packages keep the counters, in memory
// or in Redis. It also divides a model's capacity between reserved team
// shares and a shared pool, and records what reservations cost.
//
// It does not price requests (the gateway passes a worst-case function
// built from its route) and it does not write wire formats: refusals are
// *llm.Error values that each surface maps to its own shape.
//
// Calls without an API key (Junction's own calls: guardrail classifiers,
// cascade judges run inside a governed request) are not governed apart.
package governance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/junctionhq/junction/internal/governance/budget"
	"github.com/junctionhq/junction/internal/governance/ratelimit"
)

// Options are what a Governor needs besides its configuration.
type Options struct {
	// DB holds the ledger (read once at start and when budgets change, to
	// seed budgets), the budgets made through the admin API, and the
	// reserved-capacity accruals. Nil leaves all three out.
	DB *sql.DB
	// Log receives settlement and webhook failures; nil means
	// slog.Default().
	Log *slog.Logger
	// Lease is how long a budget reservation outlives a request that never
	// settles; it must outlast the longest request (budget.DefaultLease
	// when zero).
	Lease time.Duration
}

// Governor admits and settles requests. It is safe for concurrent use.
type Governor struct {
	cfg Config
	db  *sql.DB
	log *slog.Logger

	limiter ratelimit.Limiter
	budgets budget.Enforcer
	// client, rl and bg are set when the counters live in Redis.
	client redis.UniversalClient
	rl     *ratelimit.Redis
	bg     *budget.Redis
	// rls and bgs admit leased scopes from slices; nil without leases.
	rls   *ratelimit.Slices
	bgs   *budget.Slices
	stats stats

	policy atomic.Pointer[policy]
	snap   atomic.Pointer[snapshot]
	// reloadMu serialises policy rebuilds.
	reloadMu sync.Mutex
	// dbBudgets is the fingerprint of the stored budgets the policy holds.
	dbBudgets string
	// seeded holds the (scope, period) counters this process has seeded.
	seeded sync.Map
	// accrued is the last UTC day whose reservation costs were recorded.
	accrued atomic.Int64

	admits  chan *admitJob
	settles chan *Admission
	notices chan notice
	// queueMu guards sends on settles and notices against Close closing
	// them; queuesClosed is set, under it, when Close has.
	queueMu      sync.RWMutex
	queuesClosed bool
	stop         chan struct{}
	loops        sync.WaitGroup
	workers      sync.WaitGroup
	closed       atomic.Bool
}

// New builds a Governor from cfg and starts its background work (settling
// on Redis, webhooks, reloading stored budgets, recording reservation
// costs). Close stops it.
func New(ctx context.Context, cfg Config, opt Options) (*Governor, error) {
	if problems := Validate(cfg); len(problems) > 0 {
		return nil, fmt.Errorf("governance: %s", problems[0])
	}
	cfg = cfg.withDefaults()
	g := &Governor{cfg: cfg, db: opt.DB, log: opt.Log, stop: make(chan struct{}),
		notices: make(chan notice, 1024)}
	if g.log == nil {
		g.log = slog.Default()
	}
	lease := opt.Lease
	if lease <= 0 {
		lease = budget.DefaultLease
	}
	if cfg.RedisURL != "" {
		client, err := connect(ctx, cfg)
		if err != nil {
			return nil, err
		}
		g.client = client
		g.rl = ratelimit.NewRedis(g.client, cfg.RedisPrefix, ratelimit.WithWindow(cfg.Window))
		g.bg = budget.NewRedis(g.client, cfg.RedisPrefix, budget.WithLease(lease))
		g.limiter, g.budgets = g.rl, g.bg
		if len(cfg.Leases.Scopes) > 0 {
			g.rls = g.rl.NewSlices(cfg.Leases.Slice, cfg.Leases.Duration)
			g.bgs = g.bg.NewSlices(cfg.Leases.Slice, cfg.Leases.Duration)
		}
		// Admissions go in batches from a few workers (group commit), and
		// settlements from a few others, off the request's path.
		g.admits = make(chan *admitJob, 4096)
		for range admitWorkers {
			g.workers.Add(1)
			go g.admitLoop()
		}
		g.settles = make(chan *Admission, 4096)
		for range settleWorkers {
			g.workers.Add(1)
			go g.settleLoop()
		}
	} else {
		g.limiter = ratelimit.NewMemory(nil, ratelimit.WithWindow(cfg.Window))
		g.budgets = budget.NewMemory(nil, budget.WithLease(lease))
	}
	for range 4 {
		g.workers.Add(1)
		go g.notifyLoop()
	}
	if err := g.reload(ctx, true); err != nil {
		g.Close(ctx)
		return nil, err
	}
	g.accrue(ctx, time.Now())
	g.loops.Add(1)
	go g.background()
	return g, nil
}

// Close stops the background work, after settling what is queued and
// posting the webhooks waiting, or when ctx ends.
func (g *Governor) Close(ctx context.Context) error {
	if !g.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(g.stop)
	g.loops.Wait()
	g.queueMu.Lock()
	g.queuesClosed = true
	if g.settles != nil {
		close(g.admits)
		close(g.settles)
	}
	close(g.notices)
	g.queueMu.Unlock()
	done := make(chan struct{})
	go func() { g.workers.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if g.bgs != nil {
		// What slices hold and did not hand out is given back now rather
		// than when their lease ends (budgets) or they leave the window
		// (rate limits).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.RedisTimeout)
		if rerr := g.bgs.Release(rctx); rerr != nil {
			g.log.Warn("governance: could not release budget slices; they are released when their lease ends", "err", rerr)
		}
		if rerr := g.rls.Release(rctx); rerr != nil {
			g.log.Warn("governance: could not return rate-limit slices; they count until they leave the window", "err", rerr)
		}
		cancel()
	}
	if g.client != nil {
		g.client.Close()
	}
	return err
}

// Shared reports whether the counters live in Redis, shared by replicas.
func (g *Governor) Shared() bool { return g.client != nil }

// background reloads stored budgets and records reservation costs until
// Close.
func (g *Governor) background() {
	defer g.loops.Done()
	t := time.NewTicker(g.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case now := <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := g.reload(ctx, false); err != nil {
				g.log.Warn("governance: could not reload budgets", "err", err)
			}
			g.accrue(ctx, now)
			g.sweepSeeded(now)
			cancel()
		}
	}
}

// errUnavailable answers admissions when the shared counters cannot be
// reached: budgets and limits cannot be checked, so nothing is admitted.
var errUnavailable = errors.New("governance: counters unavailable")

// stats are the Governor's counters, for metrics.
type stats struct {
	unavailable, timeouts                  atomic.Uint64
	admitted, admitBatches                 atomic.Uint64
	settled, settleBatches, settleFailures atomic.Uint64
}

// Stats are counts since the Governor started.
type Stats struct {
	// Unavailable counts admissions refused with 503 because Redis could
	// not be reached or answered in error; TimedOut counts those of them
	// that Redis did not answer within redis_timeout.
	Unavailable, TimedOut uint64
	// Admitted counts admissions sent to Redis, in AdmitBatches round
	// trips (requests answered from slices alone count too).
	Admitted, AdmitBatches uint64
	// Settled counts admissions settled on Redis, in SettleBatches round
	// trips; SettleFailures counts batches that failed (their
	// reservations stand until their lease ends).
	Settled, SettleBatches, SettleFailures uint64
	// Slices counts the slices of leased limits and budgets taken.
	Slices uint64
}

// Stats returns the Governor's counts.
func (g *Governor) Stats() Stats {
	st := Stats{Unavailable: g.stats.unavailable.Load(), TimedOut: g.stats.timeouts.Load(),
		Admitted: g.stats.admitted.Load(), AdmitBatches: g.stats.admitBatches.Load(),
		Settled: g.stats.settled.Load(), SettleBatches: g.stats.settleBatches.Load(), SettleFailures: g.stats.settleFailures.Load()}
	if g.rls != nil {
		st.Slices = g.rls.Taken() + g.bgs.Taken()
	}
	return st
}
