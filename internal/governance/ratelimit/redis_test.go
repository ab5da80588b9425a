package ratelimit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// replicas returns n Redis limiters sharing one prefix, each with its own
// client (its own connection pool), as n Junction replicas would be: on
// the one server, or on the cluster.
func replicas(t *testing.T, n int, cluster bool, opts ...Option) []Limiter {
	ls := make([]Limiter, n)
	prefix := testPrefix(t)
	for i := range ls {
		if cluster {
			ls[i] = NewRedis(newClusterClient(t), prefix, opts...)
		} else {
			ls[i] = NewRedis(newRedisClient(t), prefix, opts...)
		}
	}
	return ls
}

func TestRedisGlobalAcrossReplicas(t *testing.T) {
	t.Run("redis", func(t *testing.T) { testGlobalAcrossReplicas(t, replicas(t, 4, false), false) })
	t.Run("cluster", func(t *testing.T) { testGlobalAcrossReplicas(t, replicas(t, 3, true), true) })
}

func testGlobalAcrossReplicas(t *testing.T, ls []Limiter, cluster bool) {
	// RPM: 400 goroutines over the replicas, 3200 attempts, one key.
	key := []Limit{{Scope: "key:global", RPM: 777}}
	if got, _ := hammer(t, ls, 400, 8, func(int) []Limit { return key }, func(int) int64 { return 1 }); got != 777 {
		t.Errorf("RPM 777 over %d replicas: allowed %d", len(ls), got)
	}
	// TPM with uneven requests: the charged total never passes the limit,
	// and a refusal leaves less room than the request asked.
	tpm := []Limit{{Scope: "key:tokens", TPM: 50_000}}
	_, charged := hammer(t, ls, 400, 8, func(int) []Limit { return tpm }, func(g int) int64 { return int64(10 + g%90) })
	if charged > 50_000 || charged < 50_000-99 {
		t.Errorf("TPM 50000 over %d replicas: charged %d", len(ls), charged)
	}
	// Several limits at once: key RPM, team TPM and a model RPM shared by
	// two teams.
	limits := func(g int) []Limit {
		team := []string{"team:a", "team:b"}[g%2]
		return []Limit{{Scope: "key:" + team, RPM: 400}, {Scope: team, TPM: 3000}, {Scope: "model:m", RPM: 500}}
	}
	got, _ := hammer(t, ls, 400, 8, limits, func(int) int64 { return 10 })
	if got > 500 {
		t.Fatalf("key+team+model over %d replicas: allowed %d, more than the model's 500", len(ls), got)
	}
	// Each team may charge 3000 tokens, 300 requests of 10: 600 in all,
	// capped by the model at 500. On the cluster, what the give-backs
	// refused for a moment is there to take.
	if cluster {
		topUp(t, ls[0], 500-got, limits, 10, func(int) { got++ })
	}
	if got != 500 {
		t.Errorf("key+team+model over %d replicas: allowed %d, want 500", len(ls), got)
	}
}

func TestRedisWindowRollsOver(t *testing.T) {
	l := NewRedis(newRedisClient(t), testPrefix(t), WithWindow(time.Second))
	lim := []Limit{{Scope: "key:roll", RPM: 3}}
	start := time.Now()
	if n, _ := admitN(t, l, lim, 0, 3); n != 3 {
		t.Fatalf("%d allowed, want 3", n)
	}
	d, _ := admit(t, l, lim, 0)
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > time.Second+time.Second/Buckets {
		t.Fatalf("fourth: %+v; want a refusal for at most the window and one bucket", d)
	}
	refused := time.Now()
	// Poll until the window frees up; it must not before RetryAfter.
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		d2, _ := admit(t, l, lim, 0)
		if d2.Allowed {
			if waited := time.Since(refused); waited < d.RetryAfter-20*time.Millisecond {
				t.Errorf("admitted after %v, before RetryAfter %v", waited, d.RetryAfter)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("window never rolled over")
		}
		<-tick.C
	}
	if time.Since(start) < time.Second-20*time.Millisecond {
		t.Errorf("a fourth request got in %v after the first three, inside a 1s window", time.Since(start))
	}
}

func TestRedisSettleAfterWindow(t *testing.T) {
	c := newRedisClient(t)
	l := NewRedis(c, testPrefix(t), WithWindow(100*time.Millisecond))
	lim := []Limit{{Scope: "key:late", TPM: 100}}
	_, tk := admit(t, l, lim, 50)
	// Wait until the charge has left the window.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if d, _ := admit(t, l, lim, 0); d.Tokens.Remaining == 100 {
			break // the zero-token probes charge no tokens
		}
		if time.Now().After(deadline) {
			t.Fatal("charge never left the window")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not synchronising
	}
	if err := l.Settle(context.Background(), tk, 80); err != nil {
		t.Fatal(err)
	}
	if d, _ := admit(t, l, lim, 71); d.Allowed || d.Tokens.Remaining != 70 {
		t.Fatalf("%+v; want the 30 extra tokens charged at settle time", d)
	}
}

func TestRedisOneRoundTrip(t *testing.T) {
	c := newRedisClient(t)
	var trips roundTrips
	c.AddHook(&trips)
	l := NewRedis(c, testPrefix(t))
	ctx := context.Background()
	lim := []Limit{{Scope: "key:rt", RPM: 1000, TPM: 1e6}, {Scope: "team:rt", TPM: 1e6}, {Scope: "model:rt", RPM: 1000}}
	// Warm up: the first call loads the scripts (EVALSHA, then EVAL).
	_, tk, _ := l.Admit(ctx, lim, 10)
	_ = l.Settle(ctx, tk, 5)
	_, tk, _ = l.Admit(ctx, lim, 10)
	_ = l.Cancel(ctx, tk)

	trips.N.Store(0)
	const n = 50
	for range n {
		_, tk, err := l.Admit(ctx, lim, 100)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Settle(ctx, tk, 40); err != nil {
			t.Fatal(err)
		}
	}
	if got := trips.N.Load(); got != 2*n {
		t.Errorf("%d admissions and settles took %d round trips, want %d", n, got, 2*n)
	}
}

func TestRedisQueue(t *testing.T) {
	c := newRedisClient(t)
	var trips roundTrips
	c.AddHook(&trips)
	l := NewRedis(c, testPrefix(t))
	ctx := context.Background()
	lim := []Limit{{Scope: "key:q", RPM: 2}}
	_ = c.ScriptFlush(ctx).Err() // Result must cope with a server without the script

	trips.N.Store(0)
	for i := range 3 {
		pipe := c.Pipeline()
		p := l.Queue(ctx, pipe, lim, 1)
		_, _ = pipe.Exec(ctx)
		d, tk, err := p.Result()
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != (i < 2) || (tk != nil) != d.Allowed {
			t.Fatalf("queued admission %d: %+v", i, d)
		}
	}
	// One pipeline each, plus one EVAL after the flush.
	if got := trips.N.Load(); got != 4 {
		t.Errorf("3 queued admissions took %d round trips, want 4", got)
	}
}

func TestRedisKeysExpire(t *testing.T) {
	c := newRedisClient(t)
	prefix := testPrefix(t)
	l := NewRedis(c, prefix, WithWindow(time.Second))
	admit(t, l, []Limit{{Scope: "key:ttl", RPM: 5, TPM: 100}}, 10)
	k := "{" + prefix + ":key:ttl}:rl"
	ttl, err := c.PTTL(context.Background(), k).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= time.Second/2 || ttl > time.Second+2*time.Second/Buckets {
		t.Errorf("%s: TTL %v, want the window and at most two buckets", k, ttl)
	}
}

// TestClusterSpreadsScopesAndGivesBack checks that scopes live in
// different slots of a Redis Cluster, on different masters, and that an
// admission one slot refuses takes back what the other slots charged: the
// key's slot admits and charges, the team's refuses, and the key must
// keep its whole allowance. Without the give-back the key loses one
// request per refusal.
func TestClusterSpreadsScopesAndGivesBack(t *testing.T) {
	c := newClusterClient(t)
	ctx := context.Background()
	l := NewRedis(c, testPrefix(t))
	// Scopes whose keys are on three different masters.
	var scopes []string
	nodes := map[string]bool{}
	for i := 0; len(scopes) < 3 && i < 100; i++ {
		s := fmt.Sprintf("team:t%d", i)
		slot, err := c.ClusterKeySlot(ctx, l.Key(s)).Result()
		if err != nil {
			t.Fatal(err)
		}
		node, err := c.MasterForKey(ctx, l.Key(s))
		if err != nil {
			t.Fatal(err)
		}
		if addr := node.Options().Addr; !nodes[addr] {
			nodes[addr] = true
			scopes = append(scopes, s)
			t.Logf("%s: slot %d on %s", s, slot, addr)
		}
	}
	if len(scopes) != 3 {
		t.Fatalf("found scopes on %d masters, want 3", len(scopes))
	}
	key, team, model := Limit{Scope: scopes[0], RPM: 5, TPM: 500}, Limit{Scope: scopes[1], RPM: 2}, Limit{Scope: scopes[2], TPM: 1000}
	all := []Limit{key, team, model}
	if n, d := admitN(t, l, all, 10, 10); n != 2 || d.Limit != team {
		t.Fatalf("%d admitted, refused by %+v; want 2 and the team", n, d.Limit)
	}
	for range 3 {
		if d, _ := admit(t, l, all, 10); d.Allowed {
			t.Fatal("admitted past the team's RPM")
		}
	}
	// Each refusal charged the key and the model on their slots and gave
	// it back: the key has 3 requests left and the model 980 tokens.
	if n, _ := admitN(t, l, []Limit{key}, 10, 10); n != 3 {
		t.Errorf("key alone after 3 refusals by the team: %d admitted, want 3 (a refusal kept its charge on the key's slot)", n)
	}
	if d, _ := admit(t, l, []Limit{model}, 980); !d.Allowed || d.Tokens.Remaining != 0 {
		t.Errorf("model after the refusals: %+v, want 20 + 980 of 1000 charged", d)
	}
	// Too large on one slot: nothing is charged anywhere.
	fresh := Limit{Scope: scopes[0] + "x", RPM: 1}
	if d, _ := admit(t, l, []Limit{fresh, {Scope: scopes[2], TPM: 10}}, 11); !d.TooLarge {
		t.Fatalf("11 tokens under TPM 10: %+v", d)
	}
	if n, _ := admitN(t, l, []Limit{fresh}, 0, 5); n != 1 {
		t.Errorf("fresh scope after a too-large refusal elsewhere: %d admitted, want 1", n)
	}
}

// TestQueueAllDecidesInOrder queues thirty admissions of two keys of one
// team in one pipeline: one script per slot group carries them all, and
// decides them in order as if each had come alone. The team's 15 admit
// the first fifteen; later ones are refused by the team and, on the
// cluster, given back on their key's slot.
func TestQueueAllDecidesInOrder(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		t.Run(map[bool]string{false: "redis", true: "cluster"}[cluster], func(t *testing.T) {
			ctx := context.Background()
			var trips roundTrips
			var l *Redis
			if cluster {
				c := newClusterClient(t)
				c.AddHook(&trips)
				l = NewRedis(c, testPrefix(t))
			} else {
				c := newRedisClient(t)
				c.AddHook(&trips)
				l = NewRedis(c, testPrefix(t))
			}
			team := Limit{Scope: "team:t", RPM: 15}
			keys := []Limit{{Scope: "key:a", RPM: 10}, {Scope: "key:b", RPM: 10}}
			ps := make([]*Pending, 30)
			for i := range ps {
				ps[i] = l.Prepare([]Limit{keys[i%2], team}, 1)
			}
			pipe := l.client.Pipeline()
			l.QueueAll(ctx, pipe, ps)
			trips.N.Store(0)
			_, _ = pipe.Exec(ctx)
			if n := trips.N.Load(); n != 1 {
				t.Errorf("30 admissions took %d round trips, want 1", n)
			}
			for i, p := range ps {
				d, _, err := p.Result()
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed != (i < 15) {
					t.Fatalf("admission %d: %+v; want the first 15 admitted", i, d)
				}
				if !d.Allowed {
					if b := p.GiveBack(); b != nil {
						if err := b.Send(ctx); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			// key:a was admitted 8 times (0, 2, ... 14): 2 left.
			if n, _ := admitN(t, l, []Limit{keys[0]}, 1, 10); n != 2 {
				t.Errorf("key:a after the batch: %d left, want 2", n)
			}
		})
	}
}
