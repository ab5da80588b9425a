package ratelimit

import (
	"context"
	"errors"
	"math/rand/v2"
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

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 5, 21, 12, 0, 0, 0, time.UTC)}
}

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

// backends returns a memory limiter (on a clock that does not move), a
// Redis limiter and a Redis Cluster limiter, each with a prefix of its
// own, for tests that hold for all three.
func backends(t *testing.T) map[string]Limiter {
	return map[string]Limiter{
		"memory":  NewMemory(newFakeClock().Now),
		"redis":   NewRedis(newRedisClient(t), testPrefix(t)),
		"cluster": NewRedis(newClusterClient(t), testPrefix(t)),
	}
}

func admit(t *testing.T, l Limiter, limits []Limit, tokens int64) (Decision, *Ticket) {
	t.Helper()
	d, tk, err := l.Admit(context.Background(), limits, tokens)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed != (tk != nil) {
		t.Fatalf("Allowed=%v but ticket %v", d.Allowed, tk)
	}
	return d, tk
}

// admitN admits the same request until it is refused, at most max times, and
// returns how many were allowed and the refusal.
func admitN(t *testing.T, l Limiter, limits []Limit, tokens int64, max int) (int, Decision) {
	t.Helper()
	for i := range max {
		d, _ := admit(t, l, limits, tokens)
		if !d.Allowed {
			return i, d
		}
	}
	return max, Decision{Allowed: true}
}

// hammer admits from many goroutines spread over the limiters (replicas) and
// returns how many admissions were allowed and the tokens they charged.
func hammer(t *testing.T, ls []Limiter, goroutines, each int, limits func(g int) []Limit, tokens func(g int) int64) (allowed, charged int64) {
	t.Helper()
	var wg sync.WaitGroup
	var allowedN, chargedN atomic.Int64
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			l := ls[g%len(ls)]
			for range each {
				tok := tokens(g)
				d, _, err := l.Admit(context.Background(), limits(g), tok)
				if err != nil {
					errs <- err
					return
				}
				if d.Allowed {
					allowedN.Add(1)
					chargedN.Add(tok)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return allowedN.Load(), chargedN.Load()
}

// topUp admits one request of the given tokens at a time, cycling through limits(i), until
// want more were admitted or every kind of request was refused twice in a
// row, and calls admitted(i) for each admission. On a cluster, each
// scope's slot admits apart and a refusal elsewhere gives back what it
// took: meanwhile a concurrent request may be refused for a charge that
// is then given back. Nothing is lost: what a concurrent load left, one
// request at a time takes, and a test checks the total.
func topUp(t *testing.T, l Limiter, want int64, limits func(i int) []Limit, tokens int64, admitted func(i int)) {
	t.Helper()
	refusedInARow := 0
	for i := 0; want > 0 && refusedInARow < 4; i++ {
		if d, _ := admit(t, l, limits(i), tokens); d.Allowed {
			admitted(i)
			want--
			refusedInARow = 0
		} else {
			refusedInARow++
		}
	}
}

func TestExactUnderConcurrency(t *testing.T) {
	for name, l := range backends(t) {
		t.Run(name, func(t *testing.T) {
			rpm := []Limit{{Scope: "key:rpm", RPM: 1000}}
			got, _ := hammer(t, []Limiter{l}, 300, 8, func(int) []Limit { return rpm }, func(int) int64 { return 1 })
			if got != 1000 {
				t.Errorf("RPM 1000 under 2400 concurrent admissions: allowed %d", got)
			}
			tpm := []Limit{{Scope: "key:tpm", TPM: 10_000}}
			got, charged := hammer(t, []Limiter{l}, 300, 8, func(int) []Limit { return tpm }, func(int) int64 { return 7 })
			if got != 10_000/7 || charged > 10_000 {
				t.Errorf("TPM 10000 at 7 tokens a request: allowed %d charging %d, want %d", got, charged, 10_000/7)
			}
		})
	}
}

func TestAllOrNothing(t *testing.T) {
	for name, l := range backends(t) {
		t.Run(name, func(t *testing.T) {
			key := Limit{Scope: "key:a", RPM: 10, TPM: 1000}
			team := Limit{Scope: "team:ml", RPM: 5}
			n, d := admitN(t, l, []Limit{key, team}, 10, 100)
			if n != 5 || d.Limit != team || d.TooLarge || d.RetryAfter <= 0 {
				t.Fatalf("key+team: %d allowed, refusal %+v; want 5 then a refusal by the team", n, d)
			}
			// The refused admission charged nothing to the key: it still has
			// exactly 5 requests left.
			if n, _ := admitN(t, l, []Limit{key}, 10, 100); n != 5 {
				t.Errorf("key alone after the team refused: %d allowed, want 5", n)
			}

			// The same with tokens: the model limit refuses, the key keeps
			// its tokens.
			key2 := Limit{Scope: "key:b", TPM: 100}
			model := Limit{Scope: "model:m", TPM: 60}
			if n, d := admitN(t, l, []Limit{key2, model}, 20, 100); n != 3 || d.Limit != model {
				t.Fatalf("key+model: %d allowed, refusal %+v; want 3 then a refusal by the model", n, d)
			}
			if n, _ := admitN(t, l, []Limit{key2}, 20, 100); n != 2 {
				t.Errorf("key alone after the model refused: %d allowed, want 2", n)
			}
		})
	}
}

func TestAllOrNothingUnderConcurrency(t *testing.T) {
	for name, l := range backends(t) {
		t.Run(name, func(t *testing.T) {
			// Two keys of one team: each key may do 60, the team 100.
			team := Limit{Scope: "team:x", RPM: 100}
			keys := []Limit{{Scope: "key:1", RPM: 60}, {Scope: "key:2", RPM: 60}}
			var perKey [2]atomic.Int64
			var wg sync.WaitGroup
			for g := range 200 {
				wg.Go(func() {
					for range 5 {
						d, _, err := l.Admit(context.Background(), []Limit{keys[g%2], team}, 1)
						if err != nil {
							t.Error(err)
							return
						}
						if d.Allowed {
							perKey[g%2].Add(1)
						}
					}
				})
			}
			wg.Wait()
			a, b := perKey[0].Load(), perKey[1].Load()
			if a+b > 100 || a > 60 || b > 60 || (name != "cluster" && a+b != 100) {
				t.Fatalf("allowed %d + %d; want 100 in all and at most 60 each", a, b)
			}
			topUp(t, l, 100-(a+b), func(i int) []Limit { return []Limit{keys[i%2], team} }, 1, func(i int) { perKey[i%2].Add(1) })
			a, b = perKey[0].Load(), perKey[1].Load()
			if a+b != 100 || a > 60 || b > 60 {
				t.Fatalf("allowed %d + %d; want 100 in all and at most 60 each", a, b)
			}
			// Refusals by the team charged nothing to the keys.
			for i, k := range keys {
				if n, _ := admitN(t, l, []Limit{k}, 1, 100); int64(n) != 60-perKey[i].Load() {
					t.Errorf("%s: %d left, want %d", k.Scope, n, 60-perKey[i].Load())
				}
			}
		})
	}
}

func TestSettle(t *testing.T) {
	for name, l := range backends(t) {
		t.Run(name, func(t *testing.T) {
			lim := []Limit{{Scope: "key:s", TPM: 1000}}
			_, t1 := admit(t, l, lim, 600)
			if d, _ := admit(t, l, lim, 500); d.Allowed || d.Tokens.Remaining != 400 {
				t.Fatalf("500 more over 600 of 1000: %+v", d)
			}
			// Refund: the request used 100 of its 600.
			if err := l.Settle(context.Background(), t1, 100); err != nil {
				t.Fatal(err)
			}
			d, t2 := admit(t, l, lim, 500)
			if !d.Allowed || d.Tokens.Remaining != 400 {
				t.Fatalf("500 after the refund: %+v", d)
			}
			// Extra charge: the second used 1000, twice its estimate; the
			// window now holds 1100 of 1000 and refuses even 1 token.
			if err := l.Settle(context.Background(), t2, 1000); err != nil {
				t.Fatal(err)
			}
			if d, _ := admit(t, l, lim, 1); d.Allowed || d.Tokens.Remaining != 0 || d.RetryAfter <= 0 {
				t.Fatalf("1 token with 1100 of 1000 charged: %+v", d)
			}
			if err := l.Settle(context.Background(), t2, 1); !errors.Is(err, ErrSettled) {
				t.Errorf("second settle: %v, want ErrSettled", err)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	for name, l := range backends(t) {
		t.Run(name, func(t *testing.T) {
			lim := []Limit{{Scope: "key:c", RPM: 2, TPM: 100}}
			admit(t, l, lim, 50)
			_, tk := admit(t, l, lim, 50)
			if d, _ := admit(t, l, lim, 0); d.Allowed {
				t.Fatal("third admitted under RPM 2")
			}
			if err := l.Cancel(context.Background(), tk); err != nil {
				t.Fatal(err)
			}
			d, _ := admit(t, l, lim, 50)
			if !d.Allowed {
				t.Fatalf("after cancel: %+v", d)
			}
			if err := l.Cancel(context.Background(), tk); !errors.Is(err, ErrSettled) {
				t.Errorf("second cancel: %v, want ErrSettled", err)
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	for name, l := range backends(t) {
		t.Run(name, func(t *testing.T) {
			small := Limit{Scope: "key:t", RPM: 1}
			admit(t, l, []Limit{small}, 0) // exhausts small; TooLarge still wins
			big := Limit{Scope: "model:t", TPM: 100}
			d, _ := admit(t, l, []Limit{small, big}, 101)
			if d.Allowed || !d.TooLarge || d.Limit != big || d.RetryAfter != 0 {
				t.Fatalf("101 tokens under TPM 100: %+v", d)
			}
		})
	}
}

func TestMergeTighterWins(t *testing.T) {
	for name, l := range backends(t) {
		t.Run(name, func(t *testing.T) {
			lim := []Limit{{Scope: "key:m", RPM: 5}, {Scope: "key:m", RPM: 3, TPM: 50}, {Scope: "key:m"}}
			n, d := admitN(t, l, lim, 10, 100)
			want := Limit{Scope: "key:m", RPM: 3, TPM: 50}
			if n != 3 || d.Limit != want {
				t.Fatalf("%d allowed, refused by %+v; want 3 and %+v", n, d.Limit, want)
			}
		})
	}
}

func TestInvalid(t *testing.T) {
	for name, l := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for _, c := range []struct {
				limits []Limit
				tokens int64
			}{
				{[]Limit{{RPM: 1}}, 1},
				{[]Limit{{Scope: "k", RPM: -1}}, 1},
				{[]Limit{{Scope: "k", RPM: 1}}, -1},
			} {
				if _, _, err := l.Admit(ctx, c.limits, c.tokens); err == nil {
					t.Errorf("Admit(%+v, %d): no error", c.limits, c.tokens)
				}
			}
			d, tk, err := l.Admit(ctx, nil, 10)
			if err != nil || !d.Allowed {
				t.Fatalf("no limits: %+v %v", d, err)
			}
			if err := l.Settle(ctx, tk, 20); err != nil {
				t.Errorf("settle with no limits: %v", err)
			}
			other := NewMemory(nil)
			_, foreign, _ := other.Admit(ctx, []Limit{{Scope: "k", RPM: 1}}, 1)
			if err := l.Settle(ctx, foreign, 1); !errors.Is(err, ErrForeignTicket) {
				t.Errorf("foreign ticket: %v", err)
			}
		})
	}
}

func TestMemorySlidingWindow(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(clock.Now)
	lim := []Limit{{Scope: "key:w", RPM: 5}}
	// t=0: 3 requests; t=30s: 2 more; the window is full.
	if n, _ := admitN(t, m, lim, 0, 3); n != 3 {
		t.Fatal(n)
	}
	clock.Advance(30 * time.Second)
	if n, _ := admitN(t, m, lim, 0, 2); n != 2 {
		t.Fatal(n)
	}
	clock.Advance(15 * time.Second)
	d, _ := admit(t, m, lim, 0)
	if d.Allowed || d.RetryAfter != 15*time.Second || d.Requests.Remaining != 0 || d.Requests.Reset != 15*time.Second {
		t.Fatalf("t=45s: %+v; want a refusal for 15s", d)
	}
	// t=60s: the three from t=0 age out, the two from t=30s do not.
	clock.Advance(15 * time.Second)
	n, d := admitN(t, m, lim, 0, 10)
	if n != 3 || d.RetryAfter != 30*time.Second {
		t.Fatalf("t=60s: %d allowed, then %+v; want 3 and a wait of 30s", n, d)
	}
}

func TestMemoryRetryAfterTokens(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(clock.Now)
	lim := []Limit{{Scope: "key:rt", TPM: 100}}
	for _, tok := range []int64{40, 30, 30} { // at 0s, 10s, 20s
		if d, _ := admit(t, m, lim, tok); !d.Allowed {
			t.Fatal(d)
		}
		clock.Advance(10 * time.Second)
	}
	// At 30s, 60 tokens need the 40 (age out at 60s) and a 30 (at 70s).
	d, _ := admit(t, m, lim, 60)
	if d.Allowed || d.RetryAfter != 40*time.Second {
		t.Fatalf("%+v; want a wait of 40s", d)
	}
	clock.Advance(40 * time.Second)
	if d, _ := admit(t, m, lim, 60); !d.Allowed {
		t.Fatalf("after the wait: %+v", d)
	}
}

// TestMemoryWindowProperty drives random traffic on a fake clock and checks
// the definition: in every window at most RPM requests and TPM tokens were
// admitted, and every refusal happened because one more would have broken
// that.
func TestMemoryWindowProperty(t *testing.T) {
	const rpm, tpm, window = 20, 500, time.Minute
	clock := newFakeClock()
	m := NewMemory(clock.Now)
	lim := []Limit{{Scope: "key:p", RPM: rpm, TPM: tpm}}
	type event struct {
		at     time.Time
		tokens int64
	}
	var admitted []event
	inWindow := func(at time.Time) (n, tokens int64) {
		for _, e := range admitted {
			if e.at.After(at.Add(-window)) {
				n++
				tokens += e.tokens
			}
		}
		return n, tokens
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		clock.Advance(time.Duration(rng.IntN(4000)) * time.Millisecond)
		tok := int64(rng.IntN(60))
		now := clock.Now()
		n, used := inWindow(now)
		d, _ := admit(t, m, lim, tok)
		fits := n+1 <= rpm && used+tok <= tpm
		if d.Allowed != fits {
			t.Fatalf("at %v with %d requests and %d tokens in the window, %d more tokens: allowed=%v", now, n, used, tok, d.Allowed)
		}
		if d.Allowed {
			admitted = append(admitted, event{now, tok})
		}
	}
	if len(admitted) < 1000 {
		t.Fatalf("only %d admitted: the test exercises too little", len(admitted))
	}
}

func TestMemorySettleAfterWindow(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(clock.Now)
	lim := []Limit{{Scope: "key:late", TPM: 100}}
	_, tk := admit(t, m, lim, 50)
	clock.Advance(2 * time.Minute) // a long stream: its charge left the window
	if err := m.Settle(context.Background(), tk, 80); err != nil {
		t.Fatal(err)
	}
	// The 30 extra tokens are charged now; 70 remain.
	if d, _ := admit(t, m, lim, 71); d.Allowed || d.Tokens.Remaining != 70 {
		t.Fatalf("%+v; want a refusal with 70 remaining", d)
	}
}

func TestMemoryForgetsIdleScopes(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(clock.Now)
	for i := range 100 {
		admit(t, m, []Limit{{Scope: "key:" + string(rune('a'+i%26)) + string(rune('a'+i/26)), RPM: 1}}, 0)
	}
	clock.Advance(2 * time.Minute)
	admit(t, m, []Limit{{Scope: "key:live", RPM: 1}}, 0)
	m.mu.Lock()
	n := len(m.logs)
	m.mu.Unlock()
	if n != 1 {
		t.Errorf("%d scopes kept after their windows emptied, want 1", n)
	}
}
