package budget_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/governance/budget"
	"github.com/junctionhq/junction/internal/governance/ratelimit"
	"github.com/redis/go-redis/v9"
)

// These tests and benchmarks run a whole admission, rate limits and budgets
// together, the way the gateway is meant to: all-or-nothing across both, and
// on Redis in one round trip.

// admission admits one request under limits and budgets, or neither.
type admission interface {
	admit(ctx context.Context, limits []ratelimit.Limit, tokens int64, budgets []budget.Budget, worst budget.Nanos) (ok bool, t *ratelimit.Ticket, r *budget.Reservation, err error)
	settle(ctx context.Context, t *ratelimit.Ticket, tokens int64, r *budget.Reservation, cost budget.Nanos) error
}

// memoryAdmission checks the rate limits, then the budgets, and takes back
// the rate-limit charge when a budget refuses.
type memoryAdmission struct {
	rl *ratelimit.Memory
	bg *budget.Memory
}

func (a memoryAdmission) admit(ctx context.Context, limits []ratelimit.Limit, tokens int64, budgets []budget.Budget, worst budget.Nanos) (bool, *ratelimit.Ticket, *budget.Reservation, error) {
	d, t, err := a.rl.Admit(ctx, limits, tokens)
	if err != nil || !d.Allowed {
		return false, nil, nil, err
	}
	bd, r, err := a.bg.Admit(ctx, budgets, worst)
	if err != nil || !bd.Allowed {
		return false, nil, nil, errors.Join(err, a.rl.Cancel(ctx, t))
	}
	return true, t, r, nil
}

func (a memoryAdmission) settle(ctx context.Context, t *ratelimit.Ticket, tokens int64, r *budget.Reservation, cost budget.Nanos) error {
	_, err := a.bg.Settle(ctx, r, cost)
	return errors.Join(err, a.rl.Settle(ctx, t, tokens))
}

// redisAdmission sends both checks in one pipeline: one round trip. Each
// check is atomic on its own; when one admits and the other refuses, the
// admitted one is taken back (a second round trip, on the refusal path only).
type redisAdmission struct {
	client redis.UniversalClient
	rl     *ratelimit.Redis
	bg     *budget.Redis
}

func (a redisAdmission) admit(ctx context.Context, limits []ratelimit.Limit, tokens int64, budgets []budget.Budget, worst budget.Nanos) (bool, *ratelimit.Ticket, *budget.Reservation, error) {
	pipe := a.client.Pipeline()
	pl := a.rl.Queue(ctx, pipe, limits, tokens)
	pb := a.bg.Queue(ctx, pipe, budgets, worst)
	_, _ = pipe.Exec(ctx) // each result carries its own error
	d, t, errL := pl.Result()
	bd, r, errB := pb.Result()
	if errL == nil && errB == nil && d.Allowed && bd.Allowed {
		return true, t, r, nil
	}
	var undo error
	if t != nil {
		undo = a.rl.Cancel(ctx, t)
	}
	if r != nil {
		_, err := a.bg.Settle(ctx, r, 0)
		undo = errors.Join(undo, err)
	}
	return false, nil, nil, errors.Join(errL, errB, undo)
}

func (a redisAdmission) settle(ctx context.Context, t *ratelimit.Ticket, tokens int64, r *budget.Reservation, cost budget.Nanos) error {
	_, err := a.bg.Settle(ctx, r, cost)
	return errors.Join(err, a.rl.Settle(ctx, t, tokens))
}

// Three limits and two budgets, as a request on a team key usually meets.
var (
	benchLimits = []ratelimit.Limit{
		{Scope: "key:k1", RPM: 1 << 40, TPM: 1 << 50},
		{Scope: "team:t1", TPM: 1 << 50},
		{Scope: "team:t1|model:m1", RPM: 1 << 40},
	}
	benchBudgets = []budget.Budget{
		{Scope: "key:k1", Period: budget.Daily, Limit: 1 << 50},
		{Scope: "team:t1", Period: budget.Monthly, Limit: 1 << 50},
	}
)

func newMemoryAdmission(window time.Duration) memoryAdmission {
	return memoryAdmission{
		rl: ratelimit.NewMemory(nil, ratelimit.WithWindow(window)),
		bg: budget.NewMemory(nil, budget.WithLease(window)),
	}
}

func newRedisAdmission(tb testing.TB, c *redis.Client, window time.Duration) redisAdmission {
	prefix := budget.KeyPrefix(tb)
	return redisAdmission{
		client: c,
		rl:     ratelimit.NewRedis(c, prefix, ratelimit.WithWindow(window)),
		bg:     budget.NewRedis(c, prefix, budget.WithLease(window)),
	}
}

func TestAdmissionAllOrNothing(t *testing.T) {
	c := budget.NewTestRedisClient(t)
	for name, a := range map[string]admission{
		"memory": newMemoryAdmission(time.Minute),
		"redis":  newRedisAdmission(t, c, time.Minute),
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			limits := []ratelimit.Limit{{Scope: "key:a", RPM: 3}}
			budgets := []budget.Budget{{Scope: "key:a", Period: budget.Daily, Limit: budget.Dollar}}
			// A budget refusal leaves the rate limit untouched...
			if ok, _, _, err := a.admit(ctx, limits, 10, budgets, 2*budget.Dollar); ok || err != nil {
				t.Fatalf("over budget: ok=%v err=%v", ok, err)
			}
			for i := range 3 {
				if ok, _, _, err := a.admit(ctx, limits, 10, budgets, budget.Dollar/10); !ok || err != nil {
					t.Fatalf("request %d of RPM 3: ok=%v err=%v", i, ok, err)
				}
			}
			// ...and a rate-limit refusal leaves the budget untouched: $0.30
			// reserved of $1, so $0.70 still fits once the rate allows.
			if ok, _, _, _ := a.admit(ctx, limits, 10, budgets, budget.Dollar/10); ok {
				t.Fatal("fourth request under RPM 3 admitted")
			}
			other := []ratelimit.Limit{{Scope: "key:b", RPM: 3}}
			if ok, _, _, err := a.admit(ctx, other, 10, budgets, 7*budget.Dollar/10); !ok || err != nil {
				t.Fatalf("$0.70 after the rate refusal: ok=%v err=%v", ok, err)
			}
		})
	}
}

func TestAdmissionOneRoundTrip(t *testing.T) {
	c := budget.NewTestRedisClient(t)
	trips := budget.CountRoundTrips(c)
	a := newRedisAdmission(t, c, time.Minute)
	ctx := context.Background()
	_, tk, r, _ := a.admit(ctx, benchLimits, 100, benchBudgets, budget.Dollar) // warm up: loads the scripts
	_ = a.settle(ctx, tk, 50, r, budget.Dollar/2)

	trips()
	const n = 50
	for range n {
		ok, _, _, err := a.admit(ctx, benchLimits, 100, benchBudgets, budget.Dollar/1000)
		if !ok || err != nil {
			t.Fatalf("ok=%v err=%v", ok, err)
		}
	}
	if got := trips(); got != n {
		t.Errorf("%d admissions (3 limits, 2 budgets) took %d round trips, want %d", n, got, n)
	}
}

// BenchmarkAdmission measures one request's admission under three rate
// limits and two budgets: "admit" is the admission alone, "admit+settle"
// the request's whole accounting. The short window and lease keep the state
// the benchmark leaves behind bounded.
func BenchmarkAdmission(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, a admission, settle bool) {
		b.ReportAllocs()
		for b.Loop() {
			ok, t, r, err := a.admit(ctx, benchLimits, 1000, benchBudgets, budget.Dollar/100)
			if !ok || err != nil {
				b.Fatalf("ok=%v err=%v", ok, err)
			}
			if settle {
				if err := a.settle(ctx, t, 600, r, budget.Dollar/200); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	runParallel := func(b *testing.B, a admission) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if ok, _, _, err := a.admit(ctx, benchLimits, 1000, benchBudgets, budget.Dollar/100); !ok || err != nil {
					b.Errorf("ok=%v err=%v", ok, err)
					return
				}
			}
		})
	}
	b.Run("memory/admit", func(b *testing.B) { run(b, newMemoryAdmission(time.Second), false) })
	b.Run("memory/admit+settle", func(b *testing.B) { run(b, newMemoryAdmission(time.Second), true) })
	b.Run("memory/admit/parallel", func(b *testing.B) { runParallel(b, newMemoryAdmission(time.Second)) })
	c := budget.NewTestRedisClient(b)
	b.Run("redis/ping", func(b *testing.B) { // the floor: one bare round trip
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("redis/admit", func(b *testing.B) { run(b, newRedisAdmission(b, c, time.Second), false) })
	b.Run("redis/admit+settle", func(b *testing.B) { run(b, newRedisAdmission(b, c, time.Second), true) })
	b.Run("redis/admit/parallel", func(b *testing.B) { runParallel(b, newRedisAdmission(b, c, time.Second)) })
}
