package budget

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for Memory.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var may21 = time.Date(2026, 5, 21, 12, 0, 0, 0, time.UTC)

// backends returns a memory enforcer on a clock that does not move, a
// Redis enforcer and a Redis Cluster enforcer, each with a prefix of its
// own, for tests that hold for all three.
func backends(t *testing.T) map[string]Enforcer {
	return map[string]Enforcer{
		"memory":  NewMemory(newFakeClock(may21).Now),
		"redis":   NewRedis(newRedisClient(t), testPrefix(t)),
		"cluster": NewRedis(newClusterClient(t), testPrefix(t)),
	}
}

// replicas returns n Redis enforcers sharing one prefix, each with its own
// client, as n Junction replicas would be: on the one server, or on the
// cluster.
func replicas(t *testing.T, n int, cluster bool, opts ...Option) []Enforcer {
	es := make([]Enforcer, n)
	prefix := testPrefix(t)
	for i := range es {
		if cluster {
			es[i] = NewRedis(newClusterClient(t), prefix, opts...)
		} else {
			es[i] = NewRedis(newRedisClient(t), prefix, opts...)
		}
	}
	return es
}

func admit(t *testing.T, e Enforcer, budgets []Budget, worst Nanos) (Decision, *Reservation) {
	t.Helper()
	d, r, err := e.Admit(context.Background(), budgets, worst)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed != (r != nil) {
		t.Fatalf("Allowed=%v but reservation %v", d.Allowed, r)
	}
	return d, r
}

func settle(t *testing.T, e Enforcer, r *Reservation, actual Nanos) []Status {
	t.Helper()
	crossed, err := e.Settle(context.Background(), r, actual)
	if err != nil {
		t.Fatal(err)
	}
	return crossed
}

func status(t *testing.T, e Enforcer, b Budget) Status {
	t.Helper()
	s, err := e.Status(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRefusalSaysWhichBudget(t *testing.T) {
	for name, e := range backends(t) {
		t.Run(name, func(t *testing.T) {
			key := Budget{Scope: "key:a", Period: Daily, Limit: 10 * Dollar}
			team := Budget{Scope: "team:ml", Period: Monthly, Limit: 5 * Dollar}
			both := []Budget{key, team}
			_, r1 := admit(t, e, both, 2*Dollar)
			admit(t, e, both, 2*Dollar)
			d, _ := admit(t, e, both, 2*Dollar)
			if d.Allowed || d.Refused.Budget != team || d.Refused.Spent != 0 || d.Refused.Reserved != 4*Dollar {
				t.Fatalf("third $2 under a $5 team budget with $4 reserved: %+v", d)
			}
			s := d.Refused
			if !s.ResetsAt.Equal(Monthly.End(s.PeriodStart)) || s.PeriodStart.After(time.Now()) && name != "memory" {
				t.Errorf("period %v to %v", s.PeriodStart, s.ResetsAt)
			}
			for _, want := range []string{"hard monthly budget for team:ml", "limit $5.00", "spent $0.00", "$4.00 reserved", s.ResetsAt.Format(time.RFC3339)} {
				if !strings.Contains(s.Message(), want) {
					t.Errorf("message %q lacks %q", s.Message(), want)
				}
			}
			// Settling below the worst case frees the difference: $1 spent
			// and $2 reserved leave room for $2.
			settle(t, e, r1, Dollar)
			if d, _ := admit(t, e, both, 2*Dollar); !d.Allowed {
				t.Fatalf("after settling $1 of $2: %+v", d)
			}
			if s := status(t, e, team); s.Spent != Dollar || s.Reserved != 4*Dollar {
				t.Errorf("team status %+v, want $1 spent and $4 reserved", s)
			}
			// Nothing was reserved on the key by the refused request.
			if s := status(t, e, key); s.Reserved != 4*Dollar || s.Spent != Dollar {
				t.Errorf("key status %+v, want $1 spent and $4 reserved", s)
			}
		})
	}
}

// hammer admits and settles from many goroutines spread over the enforcers
// (replicas): each admitted request reserves worst and settles a random cost
// in [0, worst]. It returns the sum of the settled costs and the count of
// refusals.
func hammer(t *testing.T, es []Enforcer, goroutines, each int, budgets []Budget, worst Nanos) (settled Nanos, refused int64) {
	t.Helper()
	var wg sync.WaitGroup
	var sum, ref atomic.Int64
	for g := range goroutines {
		wg.Go(func() {
			e := es[g%len(es)]
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range each {
				d, r, err := e.Admit(context.Background(), budgets, worst)
				if err != nil {
					t.Error(err)
					return
				}
				if !d.Allowed {
					ref.Add(1)
					continue
				}
				cost := Nanos(rng.Int64N(int64(worst) + 1))
				if _, err := e.Settle(context.Background(), r, cost); err != nil {
					t.Error(err)
					return
				}
				sum.Add(int64(cost))
			}
		})
	}
	wg.Wait()
	return Nanos(sum.Load()), ref.Load()
}

func TestNeverOvershootsUnderConcurrency(t *testing.T) {
	budgets := []Budget{
		{Scope: "key:hot", Period: Daily, Limit: Dollar},
		{Scope: "team:hot", Period: Monthly, Limit: 3 * Dollar / 2},
		{Scope: "team:hot", Period: Daily, Limit: Dollar / 2, Soft: true}, // never refuses
	}
	worst := USD(0.007)
	check := func(t *testing.T, es []Enforcer) {
		settled, refused := hammer(t, es, 300, 20, budgets, worst)
		if settled > Dollar {
			t.Fatalf("settled %s under a $1.00 hard budget", settled)
		}
		if refused == 0 || settled < Dollar/2 {
			t.Fatalf("settled %s with %d refusals: the budget was not put under pressure", settled, refused)
		}
		for _, b := range budgets {
			if s := status(t, es[0], b); s.Spent != settled || s.Reserved != 0 {
				t.Errorf("%s %s: spent %s reserved %s, want spent %s (the sum of settled costs) and nothing reserved",
					b.Scope, b.Period, s.Spent, s.Reserved, settled)
			}
		}
	}
	t.Run("memory", func(t *testing.T) {
		check(t, []Enforcer{NewMemory(newFakeClock(may21).Now)})
	})
	t.Run("redis", func(t *testing.T) { check(t, replicas(t, 4, false)) })
	t.Run("cluster", func(t *testing.T) { check(t, replicas(t, 3, true)) })
}

func TestSoftBudgetCrossesOnce(t *testing.T) {
	for name, e := range backends(t) {
		t.Run(name, func(t *testing.T) {
			alert := Budget{Scope: "team:s", Period: Monthly, Limit: Dollar, Soft: true}
			stop := Budget{Scope: "team:s", Period: Monthly, Limit: 2 * Dollar}
			both := []Budget{alert, stop}
			var crossed [][]Status
			for range 5 {
				d, r := admit(t, e, both, 2*Dollar/5)
				if !d.Allowed {
					t.Fatalf("refused at %+v", d.Refused)
				}
				crossed = append(crossed, settle(t, e, r, 2*Dollar/5)) // $0.40 each
			}
			// Spend: 0.40, 0.80, 1.20 (soft crossed), 1.60, 2.00 (hard
			// reached).
			for i, c := range crossed {
				switch {
				case i == 2:
					if len(c) != 1 || c[0].Budget != alert || c[0].Spent != 6*Dollar/5 {
						t.Errorf("settle %d: %+v, want the soft budget crossed at $1.20", i, c)
					}
				case i == 4:
					if len(c) != 1 || c[0].Budget != stop || c[0].Spent != 2*Dollar {
						t.Errorf("settle %d: %+v, want the hard budget reached at $2.00", i, c)
					}
				case len(c) != 0:
					t.Errorf("settle %d reported %+v again", i, c)
				}
			}
			// The hard budget now refuses; the soft one never did.
			if d, _ := admit(t, e, both, 1); d.Allowed || d.Refused.Budget != stop {
				t.Errorf("past the hard limit: %+v", d)
			}
			if d, _ := admit(t, e, []Budget{alert}, Dollar); !d.Allowed {
				t.Errorf("soft alone refused: %+v", d)
			}
		})
	}
}

func TestSoftCrossingOnceAcrossReplicas(t *testing.T) {
	t.Run("redis", func(t *testing.T) { testSoftCrossingOnce(t, replicas(t, 4, false)) })
	t.Run("cluster", func(t *testing.T) { testSoftCrossingOnce(t, replicas(t, 3, true)) })
}

func testSoftCrossingOnce(t *testing.T, es []Enforcer) {
	alert := Budget{Scope: "team:r", Period: Daily, Limit: Dollar, Soft: true}
	var crossings atomic.Int64
	var wg sync.WaitGroup
	for g := range 100 {
		wg.Go(func() {
			e := es[g%len(es)]
			for range 10 {
				_, r, err := e.Admit(context.Background(), []Budget{alert}, Dollar/100)
				if err != nil {
					t.Error(err)
					return
				}
				c, err := e.Settle(context.Background(), r, Dollar/100)
				if err != nil {
					t.Error(err)
					return
				}
				crossings.Add(int64(len(c)))
			}
		})
	}
	wg.Wait()
	if n := crossings.Load(); n != 1 {
		t.Errorf("1000 settles of $0.01 past a $1 soft budget on %d replicas: %d crossings, want 1", len(es), n)
	}
}

func TestMemoryNewPeriod(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 5, 31, 23, 59, 0, 0, time.UTC))
	m := NewMemory(clock.Now)
	day := Budget{Scope: "key:p", Period: Daily, Limit: Dollar}
	month := Budget{Scope: "key:p", Period: Monthly, Limit: Dollar, Soft: true}
	_, r := admit(t, m, []Budget{day, month}, Dollar)
	if c := settle(t, m, r, Dollar); len(c) != 2 {
		t.Fatalf("crossed %+v, want both", c)
	}
	if d, _ := admit(t, m, []Budget{day}, 1); d.Allowed || !d.Refused.ResetsAt.Equal(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("spent day: %+v", d)
	}
	clock.Advance(time.Minute) // midnight, 1 June: both periods start over
	d, r := admit(t, m, []Budget{day, month}, Dollar)
	if !d.Allowed {
		t.Fatalf("new day: %+v", d)
	}
	if c := settle(t, m, r, Dollar); len(c) != 2 || !c[0].PeriodStart.Equal(clock.Now()) {
		t.Errorf("crossings in the new periods: %+v", c)
	}
}

func TestMemoryLeaseExpires(t *testing.T) {
	clock := newFakeClock(may21)
	m := NewMemory(clock.Now, WithLease(time.Minute))
	b := []Budget{{Scope: "key:l", Period: Daily, Limit: Dollar}}
	_, crashed := admit(t, m, b, Dollar) // never settles in time
	if d, _ := admit(t, m, b, 1); d.Allowed {
		t.Fatal("admitted while the budget was fully reserved")
	}
	clock.Advance(59 * time.Second)
	if d, _ := admit(t, m, b, 1); d.Allowed {
		t.Fatal("lease released early")
	}
	clock.Advance(time.Second)
	d, r := admit(t, m, b, Dollar/2)
	if !d.Allowed {
		t.Fatalf("after the lease: %+v", d)
	}
	// A request that settles after its lease is still charged in full, and
	// releases nothing it no longer holds.
	settle(t, m, crashed, Dollar/4)
	if s := status(t, m, b[0]); s.Spent != Dollar/4 || s.Reserved != Dollar/2 {
		t.Errorf("status %+v, want $0.25 spent and $0.50 reserved", s)
	}
	settle(t, m, r, 0)
	if s := status(t, m, b[0]); s.Spent != Dollar/4 || s.Reserved != 0 {
		t.Errorf("status %+v, want $0.25 spent and nothing reserved", s)
	}
}

func TestRedisLeaseExpires(t *testing.T) {
	e := NewRedis(newRedisClient(t), testPrefix(t), WithLease(200*time.Millisecond))
	b := []Budget{{Scope: "key:l", Period: Daily, Limit: Dollar}}
	_, crashed := admit(t, e, b, Dollar)
	start := time.Now()
	deadline := start.Add(5 * time.Second)
	for {
		d, r := admit(t, e, b, Dollar/2)
		if d.Allowed {
			if waited := time.Since(start); waited < 150*time.Millisecond {
				t.Errorf("lease of 200ms released after %v", waited)
			}
			settle(t, e, crashed, Dollar/4)
			settle(t, e, r, Dollar/4)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("reservation never expired")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not synchronising
	}
	if s := status(t, e, b[0]); s.Spent != Dollar/2 || s.Reserved != 0 {
		t.Errorf("status %+v, want $0.50 spent and nothing reserved", s)
	}
}

func TestSeed(t *testing.T) {
	for name, e := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			now := may21
			if name != "memory" {
				now = time.Now()
			}
			b := Budget{Scope: "team:seed", Period: Monthly, Limit: 10 * Dollar}
			if ok, err := e.Seed(ctx, b.Scope, b.Period, Monthly.Start(now), 7*Dollar); !ok || err != nil {
				t.Fatalf("first seed: %v %v", ok, err)
			}
			if ok, err := e.Seed(ctx, b.Scope, b.Period, now, 7*Dollar); ok || err != nil {
				t.Fatalf("second seed of the same period: %v %v", ok, err)
			}
			if d, _ := admit(t, e, []Budget{b}, 3*Dollar+1); d.Allowed || d.Refused.Spent != 7*Dollar {
				t.Errorf("$3 and a nano over $7 seeded of $10: %+v", d)
			}
			// Another period is seeded on its own.
			daily := Budget{Scope: b.Scope, Period: Daily, Limit: Dollar}
			if ok, _ := e.Seed(ctx, b.Scope, Daily, now, 0); !ok {
				t.Error("daily seed refused")
			}
			if d, _ := admit(t, e, []Budget{daily}, Dollar); !d.Allowed {
				t.Errorf("daily: %+v", d)
			}
		})
	}
}

func TestSeedOnceAcrossReplicas(t *testing.T) {
	var applied atomic.Int64
	var wg sync.WaitGroup
	prefix := testPrefix(t)
	for range 8 {
		e := NewRedis(newRedisClient(t), prefix)
		wg.Go(func() {
			ok, err := e.Seed(context.Background(), "team:x", Daily, time.Now(), 5*Dollar)
			if err != nil {
				t.Error(err)
			}
			if ok {
				applied.Add(1)
			}
		})
	}
	wg.Wait()
	e := NewRedis(newRedisClient(t), prefix)
	s := status(t, e, Budget{Scope: "team:x", Period: Daily, Limit: 10 * Dollar})
	if applied.Load() != 1 || s.Spent != 5*Dollar {
		t.Errorf("8 replicas seeding $5: %d applied, spent %s; want 1 and $5.00", applied.Load(), s.Spent)
	}
}

func TestRedisSkewedReplicaAgrees(t *testing.T) {
	c := newRedisClient(t)
	var trips roundTrips
	c.AddHook(&trips)
	b := []Budget{{Scope: "key:skew", Period: Daily, Limit: Dollar}}
	prefix := testPrefix(t) // two replicas, a day ahead and a day behind
	for _, skew := range []time.Duration{25 * time.Hour, -25 * time.Hour} {
		e := NewRedis(c, prefix)
		e.clock = func() time.Time { return time.Now().Add(skew) }
		trips.N.Store(0)
		d, r := admit(t, e, b, Dollar/10)
		if !d.Allowed {
			t.Fatalf("skew %v: %+v", skew, d)
		}
		if got, want := r.periods[0].start, Daily.Start(time.Now()); !got.Equal(want) {
			t.Errorf("skew %v: reserved in the day starting %v, want the server's %v", skew, got, want)
		}
		// The first admission costs one retry (EVALSHA may also have to
		// load the script once); the next ones use the learnt offset.
		trips.N.Store(0)
		_, r2 := admit(t, e, b, Dollar/10)
		if trips.N.Load() != 1 {
			t.Errorf("skew %v: %d round trips once corrected, want 1", skew, trips.N.Load())
		}
		settle(t, e, r, 0)
		settle(t, e, r2, 0)
	}
}

func TestRedisOneRoundTrip(t *testing.T) {
	c := newRedisClient(t)
	var trips roundTrips
	c.AddHook(&trips)
	e := NewRedis(c, testPrefix(t))
	ctx := context.Background()
	budgets := []Budget{
		{Scope: "key:rt", Period: Daily, Limit: 1000 * Dollar},
		{Scope: "team:rt", Period: Monthly, Limit: 1000 * Dollar},
	}
	_, r, _ := e.Admit(ctx, budgets, Dollar) // warm up: loads the scripts
	_, _ = e.Settle(ctx, r, 0)

	trips.N.Store(0)
	const n = 50
	for range n {
		_, r, err := e.Admit(ctx, budgets, Dollar/100)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Settle(ctx, r, Dollar/200); err != nil {
			t.Fatal(err)
		}
	}
	if got := trips.N.Load(); got != 2*n {
		t.Errorf("%d admissions and settles took %d round trips, want %d", n, got, 2*n)
	}
}

func TestInvalid(t *testing.T) {
	for name, e := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for _, c := range []struct {
				budgets []Budget
				worst   Nanos
			}{
				{[]Budget{{Period: Daily, Limit: 1}}, 1},
				{[]Budget{{Scope: "k", Limit: 1}}, 1},
				{[]Budget{{Scope: "k", Period: Daily, Limit: -1}}, 1},
				{[]Budget{{Scope: "k", Period: Daily, Limit: 1}}, -1},
			} {
				if _, _, err := e.Admit(ctx, c.budgets, c.worst); err == nil {
					t.Errorf("Admit(%+v, %d): no error", c.budgets, c.worst)
				}
			}
			d, r, err := e.Admit(ctx, nil, Dollar)
			if err != nil || !d.Allowed {
				t.Fatalf("no budgets: %+v %v", d, err)
			}
			if _, err := e.Settle(ctx, r, -1); err == nil {
				t.Error("negative cost settled")
			}
			if c, err := e.Settle(ctx, r, Dollar); err != nil || c != nil {
				t.Errorf("settle with no budgets: %v %v", c, err)
			}
			if _, err := e.Settle(ctx, r, Dollar); !errors.Is(err, ErrSettled) {
				t.Errorf("second settle: %v", err)
			}
			_, foreign, _ := NewMemory(nil).Admit(ctx, nil, 0)
			if _, err := e.Settle(ctx, foreign, 0); !errors.Is(err, ErrForeignReservation) {
				t.Errorf("foreign reservation: %v", err)
			}
			if _, err := e.Seed(ctx, "k", Period(9), may21, 0); err == nil {
				t.Error("seeded an invalid period")
			}
		})
	}
}

func TestMemoryForgetsOldPeriods(t *testing.T) {
	clock := newFakeClock(may21)
	m := NewMemory(clock.Now, WithLease(time.Minute))
	for _, s := range []string{"a", "b", "c"} {
		_, r := admit(t, m, []Budget{{Scope: s, Period: Daily, Limit: Dollar}}, 1)
		settle(t, m, r, 1)
	}
	clock.Advance(13 * time.Hour) // past midnight and the lease
	admit(t, m, []Budget{{Scope: "d", Period: Daily, Limit: Dollar}}, 1)
	m.mu.Lock()
	n := len(m.counters)
	m.mu.Unlock()
	if n != 1 {
		t.Errorf("%d counters kept, want only the live one", n)
	}
}

func TestRedisKeysExpire(t *testing.T) {
	c := newRedisClient(t)
	e := NewRedis(c, testPrefix(t), WithLease(time.Minute))
	ctx := context.Background()
	b := Budget{Scope: "key:ttl", Period: Daily, Limit: Dollar}
	_, r := admit(t, e, []Budget{b}, Dollar/10)
	h := e.key(r.periods[0])
	// The hash outlives the period by the lease and a day, not more.
	want := time.Until(r.periods[0].end.Add(time.Minute + 24*time.Hour))
	checkTTL := func(key string) {
		t.Helper()
		ttl, err := c.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > want+2*time.Second || ttl < want-time.Minute {
			t.Errorf("%s: TTL %v, want about %v", key, ttl, want)
		}
	}
	checkTTL(h)
	// A settle that finds its counter gone (flushed, say) recreates it
	// with an expiry.
	if err := c.Del(ctx, h).Err(); err != nil {
		t.Fatal(err)
	}
	settle(t, e, r, Dollar/20)
	checkTTL(h)
	if s := status(t, e, b); s.Spent != Dollar/20 || s.Reserved != 0 {
		t.Errorf("status %+v", s)
	}
}

// TestRedisStoresExactIntegers reserves an amount with sixteen
// significant digits: the scripts write it back as that integer, not in
// a shorter or exponent form (Lua's own number format keeps 14 digits),
// and read it back exactly.
func TestRedisStoresExactIntegers(t *testing.T) {
	c := newRedisClient(t)
	e := NewRedis(c, testPrefix(t), WithLease(time.Minute))
	const amount = Nanos(1_234_567_890_123_457) // about $1.2 million
	b := Budget{Scope: "key:big", Period: Monthly, Limit: 5 * amount}
	d, r := admit(t, e, []Budget{b}, amount)
	if !d.Allowed {
		t.Fatalf("refused: %+v", d)
	}
	got, err := c.HGet(context.Background(), e.key(r.periods[0]), "r").Result()
	if err != nil {
		t.Fatal(err)
	}
	if got != "1234567890123457" {
		t.Errorf("reserved stored as %q, want 1234567890123457", got)
	}
	if s := status(t, e, b); s.Reserved != amount {
		t.Errorf("status %+v, want %d reserved", s, amount)
	}
}

// TestQueueAllDecidesInOrder queues twenty admissions of two keys of one
// team in one pipeline: one script per slot group carries them all and
// decides them in order. The team's $1 covers the first ten; the others
// are refused and, on the cluster, released on their key's slot.
func TestQueueAllDecidesInOrder(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		t.Run(map[bool]string{false: "redis", true: "cluster"}[cluster], func(t *testing.T) {
			ctx := context.Background()
			e := replicas(t, 1, cluster)[0].(*Redis)
			team := Budget{Scope: "team:t", Period: Monthly, Limit: Dollar}
			keys := []Budget{{Scope: "key:a", Period: Daily, Limit: 10 * Dollar}, {Scope: "key:b", Period: Daily, Limit: 10 * Dollar}}
			ps := make([]*Pending, 20)
			for i := range ps {
				ps[i] = e.Prepare([]Budget{keys[i%2], team}, Dollar/10)
			}
			pipe := e.client.Pipeline()
			e.QueueAll(ctx, pipe, ps)
			_, _ = pipe.Exec(ctx)
			for i, p := range ps {
				d, _, err := p.Result()
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed != (i < 10) || !d.Allowed && d.Refused.Budget != team {
					t.Fatalf("admission %d: %+v; want the first 10 admitted, then refusals by the team", i, d)
				}
				if !d.Allowed {
					if b := p.GiveBack(); b != nil {
						if _, err := b.Send(ctx); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			if s := status(t, e, team); s.Reserved != Dollar {
				t.Errorf("team reserves %s, want $1.00", s.Reserved)
			}
			if s := status(t, e, keys[0]); s.Reserved != Dollar/2 {
				t.Errorf("key:a reserves %s, want $0.50 (five admitted)", s.Reserved)
			}
		})
	}
}
