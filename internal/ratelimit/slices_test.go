package ratelimit

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slicedReplica is one replica admitting hot scopes from slices.
type slicedReplica struct {
	s     *Slices
	trips *roundTrips
}

// slicedReplicas returns n replicas sharing one prefix, each with its own
// client and slices.
func slicedReplicas(t *testing.T, n int, cluster bool, share float64, life time.Duration, opts ...Option) []slicedReplica {
	prefix := testPrefix(t)
	rs := make([]slicedReplica, n)
	for i := range rs {
		var trips roundTrips
		var r *Redis
		if cluster {
			c := newClusterClient(t)
			c.AddHook(&trips)
			r = NewRedis(c, prefix, opts...)
		} else {
			c := newRedisClient(t)
			c.AddHook(&trips)
			r = NewRedis(c, prefix, opts...)
		}
		rs[i] = slicedReplica{s: r.NewSlices(share, life), trips: &trips}
	}
	return rs
}

// admit admits one request under limits (on Redis) and hot (from slices),
// giving back what a refusal took.
func (r slicedReplica) admit(t *testing.T, limits, hot []Limit, tokens int64) (Decision, *Ticket) {
	t.Helper()
	ctx := context.Background()
	pipe := r.s.r.client.Pipeline()
	p := r.s.Queue(ctx, pipe, limits, hot, tokens)
	_, _ = pipe.Exec(ctx)
	d, tk, err := p.Result()
	if err != nil {
		t.Error(err)
		return d, nil
	}
	if !d.Allowed {
		if b := p.GiveBack(); b != nil {
			if err := b.Send(ctx); err != nil {
				t.Error(err)
			}
		}
	}
	return d, tk
}

// TestSlicesNeverOverAdmit hammers a global limit admitted from slices on
// three replicas, each request also under its key's limit on Redis: the
// replicas together never admit more than the limit, what their slices
// hold is not lost (one request at a time takes it all), and most
// requests never reach Redis for the global scope.
func TestSlicesNeverOverAdmit(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		t.Run(map[bool]string{false: "redis", true: "cluster"}[cluster], func(t *testing.T) {
			rs := slicedReplicas(t, 3, cluster, 0.05, time.Second)
			global := []Limit{{Scope: "global", RPM: 600, TPM: 60_000}}
			key := func(g int) []Limit { return []Limit{{Scope: fmt.Sprintf("key:%d", g%7), RPM: 1000}} }
			var admitted atomic.Int64
			var wg sync.WaitGroup
			for g := range 120 {
				wg.Go(func() {
					r := rs[g%len(rs)]
					for range 10 {
						if d, _ := r.admit(t, key(g), global, 50); d.Allowed {
							admitted.Add(1)
						}
					}
				})
			}
			wg.Wait()
			got := admitted.Load()
			if got > 600 {
				t.Fatalf("admitted %d under a global RPM of 600", got)
			}
			// TPM 60000 at 50 tokens is 1200 requests: RPM binds. What the
			// slices hold (at most 30 requests a replica) and what
			// give-backs refused for a moment, one request at a time
			// takes, on every replica in turn.
			for i, refused := 0, 0; refused < 3*len(rs) && i < 2000; i++ {
				if d, _ := rs[i%len(rs)].admit(t, key(i), global, 50); d.Allowed {
					got++
					refused = 0
				} else {
					refused++
				}
			}
			if got != 600 {
				t.Errorf("admitted %d in all, want exactly the RPM of 600", got)
			}
			var taken uint64
			var trips int64
			for _, r := range rs {
				taken += r.s.Taken()
				trips += r.trips.N.Load()
			}
			// 20 slices of 30 would do; 120 requests at once each take one
			// when the slice in hand runs out, and near the limit slices
			// shrink to what is left.
			if taken > 600/4 {
				t.Errorf("%d slices for 600 requests, slices of 30", taken)
			}
			t.Logf("%d slices, %d round trips", taken, trips)
		})
	}
}

// TestSlicesCoverEveryWindow admits steadily for several windows from
// slices on three replicas and checks the promise on the admission times:
// in every interval of one window, wherever it starts, at most RPM
// requests. A slice charged at the time it is taken, not at the end of
// its life, breaks this by up to a slice per replica.
func TestSlicesCoverEveryWindow(t *testing.T) {
	const window = 2 * time.Second
	rs := slicedReplicas(t, 3, false, 0.25, window/4, WithWindow(window))
	global := []Limit{{Scope: "global", RPM: 40}}
	var mu sync.Mutex
	var times []time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	for g := range 12 {
		wg.Go(func() {
			r := rs[g%len(rs)]
			tick := time.NewTicker(15 * time.Millisecond)
			defer tick.Stop()
			for time.Since(start) < 3*window {
				at := time.Since(start)
				if d, _ := r.admit(t, nil, global, 0); d.Allowed {
					mu.Lock()
					times = append(times, at)
					mu.Unlock()
				}
				<-tick.C
			}
		})
	}
	wg.Wait()
	slices.Sort(times)
	// Each admission is stamped before it was asked for, so an interval
	// slightly shorter than the window must hold at most RPM.
	const slack = 50 * time.Millisecond
	worst := 0
	for i, at := range times {
		n := 0
		for _, b := range times[i:] {
			if b >= at+window-slack {
				break
			}
			n++
		}
		worst = max(worst, n)
	}
	if worst > 40 {
		t.Errorf("%d admitted within one window under an RPM of 40", worst)
	}
	if len(times) < 2*40 {
		t.Errorf("%d admitted over three windows: the limit was not reached", len(times))
	}
	t.Logf("%d admitted, at most %d in a window", len(times), worst)
}
