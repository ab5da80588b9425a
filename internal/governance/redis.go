package governance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/junctionhq/junction/internal/budget"
	"github.com/junctionhq/junction/internal/ratelimit"
)

// Counters in Redis: one server or a Redis Cluster. An admission sends
// every rate limit and budget of a request in one pipeline, one script
// per slot group, which reaches each node once, in parallel; settlements
// go in batches from a few workers, summed per counter first.

// maxSettleBatch bounds how many admissions one settlement round trip
// carries.
const maxSettleBatch = 256

// settleWorkers is how many settlement round trips run at once, and
// settleLinger how long a worker holding a settlement waits for more to
// join it. Big batches are cheap: a busy scope's settlements cost Redis
// about one adjustment per batch. A settlement waits at most the linger
// and a round trip, off the request's path.
const (
	settleWorkers = 2
	settleLinger  = 10 * time.Millisecond
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

// admitRedis is admitOnce on Redis: both checks in one pipeline, then,
// when anything refused or failed, whatever was taken given back in one
// more. The Redis work has cfg.RedisTimeout; the give-back has its own,
// and runs even if the request was cancelled.
func (g *Governor) admitRedis(ctx context.Context, o outcome, ls, hotL []ratelimit.Limit, tokens int64, bs, hotB []budget.Budget, worst budget.Nanos) (outcome, error) {
	actx, cancel := context.WithTimeout(ctx, g.cfg.RedisTimeout)
	defer cancel()
	pipe := g.client.Pipeline()
	var pl rlPending
	var pb bgPending
	switch {
	case len(hotL) > 0 && g.rls != nil:
		pl = g.rls.Queue(actx, pipe, ls, hotL, tokens)
	case len(ls)+len(hotL) > 0:
		pl = g.rl.Queue(actx, pipe, append(ls, hotL...), tokens)
	}
	switch {
	case len(hotB) > 0 && g.bgs != nil:
		pb = g.bgs.Queue(actx, pipe, bs, hotB, worst)
	case len(bs)+len(hotB) > 0:
		pb = g.bg.Queue(actx, pipe, append(bs, hotB...), worst)
	}
	_, _ = pipe.Exec(actx) // each queued command keeps its own error
	var errL, errB error
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
	// Whatever either side took, it gives back: the slots that admitted
	// when another refused, or a whole admission the other side refused.
	var rb *ratelimit.Batch
	var bb *budget.Batch
	if pl != nil {
		rb = pl.GiveBack()
	}
	if pb != nil {
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
	if err != nil && (errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil) {
		g.stats.timeouts.Add(1)
		err = fmt.Errorf("redis did not answer within governance.redis_timeout (%s): %w", g.cfg.RedisTimeout, err)
	}
	return o, err
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
