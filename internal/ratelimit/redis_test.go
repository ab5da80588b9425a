package ratelimit

import (
	"context"
	"testing"
	"time"
)

// replicas returns n Redis limiters sharing one prefix, each with its own
// client (its own connection pool), as n Junction replicas would be.
func replicas(t *testing.T, n int, opts ...Option) []Limiter {
	ls := make([]Limiter, n)
	prefix := testPrefix(t)
	for i := range ls {
		ls[i] = NewRedis(newRedisClient(t), prefix, opts...)
	}
	return ls
}

func TestRedisGlobalAcrossReplicas(t *testing.T) {
	ls := replicas(t, 4)
	// RPM: 400 goroutines over four replicas, 3200 attempts, one key.
	key := []Limit{{Scope: "key:global", RPM: 777}}
	if got, _ := hammer(t, ls, 400, 8, func(int) []Limit { return key }, func(int) int64 { return 1 }); got != 777 {
		t.Errorf("RPM 777 over 4 replicas: allowed %d", got)
	}
	// TPM with uneven requests: the charged total never passes the limit,
	// and a refusal leaves less room than the request asked.
	tpm := []Limit{{Scope: "key:tokens", TPM: 50_000}}
	_, charged := hammer(t, ls, 400, 8, func(int) []Limit { return tpm }, func(g int) int64 { return int64(10 + g%90) })
	if charged > 50_000 || charged < 50_000-99 {
		t.Errorf("TPM 50000 over 4 replicas: charged %d", charged)
	}
	// Several limits at once: key RPM, team TPM and a model RPM shared by
	// two teams.
	limits := func(g int) []Limit {
		team := []string{"team:a", "team:b"}[g%2]
		return []Limit{{Scope: "key:" + team, RPM: 400}, {Scope: team, TPM: 3000}, {Scope: "model:m", RPM: 500}}
	}
	got, _ := hammer(t, ls, 400, 8, limits, func(int) int64 { return 10 })
	// Each team may charge 3000 tokens, 300 requests of 10: 600 in all,
	// capped by the model at 500.
	if got != 500 {
		t.Errorf("key+team+model over 4 replicas: allowed %d, want 500", got)
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
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > time.Second {
		t.Fatalf("fourth: %+v; want a refusal for at most the window", d)
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
	for _, k := range []string{"{" + prefix + "}:rl:l:key:ttl", "{" + prefix + "}:rl:c:key:ttl"} {
		ttl, err := c.PTTL(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > 2*time.Second {
			t.Errorf("%s: TTL %v, want at most the window and a second", k, ttl)
		}
	}
}
