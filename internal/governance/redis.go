package governance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/junctionhq/junction/internal/governance/budget"
	"github.com/junctionhq/junction/internal/governance/ratelimit"
)

// Counters in Redis: one server or a Redis Cluster. An admission sends
// every rate limit and budget of a request in one pipeline, one script
// per slot group, which reaches each node once, in parallel; settlements
// go in batches from a few workers, summed per counter first.

// maxSettleBatch bounds how many admissions one settlement round trip
// carries.
const maxSettleBatch = 256

// settleWorkers is how many settlement round trips run at once, and
// settleLinger how long the worker holding a settlement waits for more to
// join it. Big batches are cheap: a busy scope's settlements cost Redis
// about one adjustment per batch: at a thousand requests a second per
// replica, 50 ms instead of 10 cut Redis's CPU per request by a tenth in
// the governance lane. One worker, not two, doubles the batch again
// (what arrives during its round trip joins the next), which matters
// most on a cluster, where a batch costs a script per slot it touches
// (three replicas on a three-master cluster, leases on global: 57 against
// 26 settlements a batch, 45 against 57 µs of Redis CPU a request). A
// settlement waits at most the linger and a round trip, off the
// request's path; meanwhile its worst case stays reserved and its token
// estimate charged, which errs toward refusing.
const (
	settleWorkers = 1
	settleLinger  = 50 * time.Millisecond
)

// connect opens the Redis client cfg names, checks that it answers and
// that it is what cfg says (a cluster or not).
func connect(ctx context.Context, cfg Config) (redis.UniversalClient, error) {
	if cfg.RedisCluster {
		opt, err := redis.ParseClusterURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("governance.redis_url: %s", redactURLError(err))
		}
		if opt.PoolSize == 0 {
			opt.PoolSize = 64
		}
		opt.ContextTimeoutEnabled = true // redis_timeout bounds the wait, not ReadTimeout alone
		c := redis.NewClusterClient(opt)
		err = c.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error { return n.Ping(ctx).Err() })
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("governance: redis cluster at %s: %w", strings.Join(opt.Addrs, ", "), err)
		}
		return c, nil
	}
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("governance.redis_url: %s", redactURLError(err))
	}
	if opt.PoolSize == 0 {
		opt.PoolSize = 64
	}
	opt.ContextTimeoutEnabled = true // redis_timeout bounds the wait, not ReadTimeout alone
	c := redis.NewClient(opt)
	info, err := c.Info(ctx, "cluster").Result()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("governance: redis at %s: %w", opt.Addr, err)
	}
	if strings.Contains(info, "cluster_enabled:1") {
		c.Close()
		return nil, fmt.Errorf("governance.redis_url: %s is a node of a Redis Cluster; set governance.redis_cluster: true", opt.Addr)
	}
	return c, nil
}

// admitRedis is admitOnce on Redis: both checks prepared here, sent by an
// admission worker with whatever else is waiting (group commit), then,
// when anything refused or failed, whatever was taken given back in one
// more round trip. The Redis work has cfg.RedisTimeout from when the
// request is queued; the give-back has its own, and runs even if the
// request was cancelled.
func (g *Governor) admitRedis(ctx context.Context, o outcome, ls, hotL []ratelimit.Limit, tokens int64, bs, hotB []budget.Budget, worst budget.Nanos) (outcome, error) {
	j := &admitJob{deadline: time.Now().Add(g.cfg.RedisTimeout), done: make(chan struct{})}
	var pl rlPending
	var pb bgPending
	switch {
	case len(hotL) > 0 && g.rls != nil:
		j.rlSliced = g.rls.Prepare(ls, hotL, tokens)
		pl = j.rlSliced
	case len(ls)+len(hotL) > 0:
		j.rl = g.rl.Prepare(append(ls, hotL...), tokens)
		pl = j.rl
	}
	switch {
	case len(hotB) > 0 && g.bgs != nil:
		j.bgSliced = g.bgs.Prepare(bs, hotB, worst)
		pb = j.bgSliced
	case len(bs)+len(hotB) > 0:
		j.bg = g.bg.Prepare(append(bs, hotB...), worst)
		pb = j.bg
	}
	queued := g.queue(func() bool {
		select {
		case g.admits <- j:
			return true
		default: // the workers are far behind: go alone
			return false
		}
	})
	if !queued {
		g.sendAdmissions([]*admitJob{j})
	}
	<-j.done // within RedisTimeout; the request waits even if cancelled, to give back what it took
	var errL, errB error
	if j.err != nil {
		errL = j.err
	} else {
		if pl != nil {
			o.d, o.t, errL = pl.Result()
		}
		if pb != nil {
			o.bd, o.res, errB = pb.Result()
		}
		if errL == nil && errB == nil && o.d.Allowed && o.bd.Allowed {
			o.admitted = true
			return o, nil
		}
	}
	// Whatever either side took, it gives back: the slots that admitted
	// when another refused, or a whole admission the other side refused.
	var rb *ratelimit.Batch
	var bb *budget.Batch
	if pl != nil && j.err == nil {
		rb = pl.GiveBack()
	}
	if pb != nil && j.err == nil {
		bb = pb.GiveBack()
	}
	o.t, o.res = nil, nil
	if rb != nil || bb != nil {
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.RedisTimeout)
		defer cancel()
		if err := g.sendBatches(gctx, rb, bb, nil); err != nil {
			g.log.Warn("governance: could not give back a refused admission's other part; it ages out", "err", err)
		}
	}
	err := errors.Join(errL, errB)
	if err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)) {
		// A deadline met while waiting for a worker, or on the connection
		// (go-redis sets the request's deadline on it).
		g.stats.timeouts.Add(1)
		err = fmt.Errorf("redis did not answer within governance.redis_timeout (%s): %w: %w", g.cfg.RedisTimeout, context.DeadlineExceeded, err)
	}
	return o, err
}

// admitJob is one request's admission waiting for a worker: its rate
// limits and budgets, prepared, on Redis alone or partly from slices.
type admitJob struct {
	rl       *ratelimit.Pending
	rlSliced *ratelimit.SlicedPending
	bg       *budget.Pending
	bgSliced *budget.SlicedPending
	deadline time.Time
	err      error // set when it was not sent in time
	done     chan struct{}
}

// admitWorkers is how many admission round trips run at once, and
// maxAdmitBatch the most requests one carries. While the round trip is
// out, requests queue and the next one takes them together (natural
// batching): at low load a request goes alone and at once; under load a
// busy scope's hash is read and written once a round trip instead of
// once a request, and Redis runs one script per slot group for many
// requests, where most of a script's cost is per call. One round trip
// at a time groups more than two: from 16 goroutines on one replica,
// 7.6 requests a round trip against 4.8, and 1.9 against 1.3 from 4,
// for a fifth to a third less Redis CPU per request.
const (
	admitWorkers  = 1
	maxAdmitBatch = 256
)

// admitLoop sends admissions: one, then whatever else is waiting.
func (g *Governor) admitLoop() {
	defer g.workers.Done()
	batch := make([]*admitJob, 0, maxAdmitBatch)
	for j := range g.admits {
		batch = append(batch[:0], j)
	more:
		for len(batch) < maxAdmitBatch {
			select {
			case j, ok := <-g.admits:
				if !ok {
					break more
				}
				batch = append(batch, j)
			default:
				break more
			}
		}
		g.sendAdmissions(batch)
	}
}

// errQueued answers an admission that waited past redis_timeout for a
// worker.
var errQueued = fmt.Errorf("waited for a round trip to Redis: %w", context.DeadlineExceeded)

// sendAdmissions sends jobs in one pipeline, each slot group's part of
// all of them in one script, and wakes them.
func (g *Governor) sendAdmissions(jobs []*admitJob) {
	now := time.Now()
	deadline := now.Add(g.cfg.RedisTimeout)
	var rls []*ratelimit.SlicedPending
	var bgs []*budget.SlicedPending
	live := jobs[:0:0]
	for _, j := range jobs {
		if now.After(j.deadline) {
			j.err = errQueued
			if j.rlSliced != nil {
				j.rlSliced.Abandon()
			}
			if j.bgSliced != nil {
				j.bgSliced.Abandon()
			}
			close(j.done)
			continue
		}
		if j.deadline.Before(deadline) {
			deadline = j.deadline
		}
		live = append(live, j)
		if j.rlSliced != nil {
			rls = append(rls, j.rlSliced)
		}
		if j.bgSliced != nil {
			bgs = append(bgs, j.bgSliced)
		}
	}
	if len(live) == 0 {
		return
	}
	// The jobs decode their replies after this returns, and may then need
	// the context (to retry a budget whose period the server named
	// otherwise): it ends at the deadline, not here.
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	time.AfterFunc(time.Until(deadline), cancel)
	pipe := g.client.Pipeline()
	if len(rls) > 0 {
		g.rls.QueueReturns(ctx, pipe, rls)
	}
	if len(bgs) > 0 {
		g.bgs.QueueReturns(ctx, pipe, bgs)
	}
	// Each request's sides on Redis, one script per slot group for all.
	rl := make([]*ratelimit.Pending, len(live))
	bg := make([]*budget.Pending, len(live))
	for i, j := range live {
		switch {
		case j.rl != nil:
			rl[i] = j.rl
		case j.rlSliced != nil:
			rl[i] = j.rlSliced.Remote()
		}
		switch {
		case j.bg != nil:
			bg[i] = j.bg
		case j.bgSliced != nil:
			bg[i] = j.bgSliced.Remote()
		}
	}
	replies := queueSlots(ctx, g.client, pipe, g.rl, g.bg, rl, bg)
	_, _ = pipe.Exec(ctx) // each queued command keeps its own error
	replies()
	g.stats.admitBatches.Add(1)
	g.stats.admitted.Add(uint64(len(live)))
	for _, j := range live {
		close(j.done)
	}
}

// rlPending and bgPending are admissions queued on a pipeline, on Redis
// alone or partly from slices.
type (
	rlPending interface {
		Result() (ratelimit.Decision, *ratelimit.Ticket, error)
		GiveBack() *ratelimit.Batch
	}
	bgPending interface {
		Result() (budget.Decision, *budget.Reservation, error)
		GiveBack() *budget.Batch
	}
)

// sendBatches sends a rate-limit and a budget batch (either may be nil)
// in one pipeline and hands the budget crossings, per reservation in the
// order the batch took them, to crossed (which may be nil).
func (g *Governor) sendBatches(ctx context.Context, rb *ratelimit.Batch, bb *budget.Batch, crossed func([][]budget.Status)) error {
	pipe := g.client.Pipeline()
	checkL := func() error { return nil }
	checkB := func() ([][]budget.Status, error) { return nil, nil }
	if rb != nil && rb.Len() > 0 {
		checkL = rb.Queue(ctx, pipe)
	}
	if bb != nil && bb.Len() > 0 {
		checkB = bb.Queue(ctx, pipe)
	}
	if pipe.Len() == 0 {
		return nil
	}
	_, _ = pipe.Exec(ctx)
	errL := checkL()
	cs, errB := checkB()
	if crossed != nil && cs != nil {
		crossed(cs)
	}
	return errors.Join(errL, errB)
}

// settleLoop settles admissions in batches: it takes one, then what else
// arrives within settleLinger, up to maxSettleBatch, and settles them
// together.
func (g *Governor) settleLoop() {
	defer g.workers.Done()
	batch := make([]*Admission, 0, maxSettleBatch)
	linger := time.NewTimer(settleLinger)
	for a := range g.settles {
		batch = append(batch[:0], a)
		linger.Reset(settleLinger)
	more:
		for len(batch) < maxSettleBatch {
			select {
			case a, ok := <-g.settles:
				if !ok {
					break more
				}
				batch = append(batch, a)
			case <-linger.C:
				break more
			}
		}
		g.settleBatch(batch)
	}
}

// settleBatch charges the real cost and tokens of admissions on Redis in
// one round trip per node, and hands budget crossings to the webhooks.
func (g *Governor) settleBatch(as []*Admission) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rb, bb := g.rl.NewBatch(), g.bg.NewBatch()
	var held []*Admission // the admissions whose reservations bb settles, in order
	for _, a := range as {
		if a.ticket != nil {
			if err := rb.Settle(a.ticket, a.tokens.Load()); err != nil {
				g.log.Warn("governance: rate-limit settlement refused", "err", err)
			}
		}
		if a.res != nil {
			if err := bb.Settle(a.res, budget.Nanos(a.cost.Load())); err != nil {
				g.log.Warn("governance: budget settlement refused", "err", err)
			} else {
				held = append(held, a)
			}
		}
	}
	err := g.sendBatches(ctx, rb, bb, func(cs [][]budget.Status) {
		for i, sts := range cs {
			for _, st := range sts {
				g.crossed(held[i], st)
			}
		}
	})
	g.stats.settleBatches.Add(1)
	g.stats.settled.Add(uint64(len(as)))
	if err != nil {
		g.stats.settleFailures.Add(1)
		g.log.Warn("governance: settlement failed; reservations stand until their lease ends and estimates stay charged", "err", err,
			"admissions", len(as))
	}
}
