package ratelimit

import (
	"context"
	"fmt"
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

// TestSliceCoversAWindowAfterItsLastRequest takes a slice of a whole
// limit on one replica, admits most of it near the end of the slice's
// life, and then, just after a window has passed since the slice was
// taken, tries the whole limit again on another replica. Within one
// window of the late requests at most the limit may be admitted: the
// slice must count until a window after its life ends, not after it was
// taken.
func TestSliceCoversAWindowAfterItsLastRequest(t *testing.T) {
	const window = 2 * time.Second
	rs := slicedReplicas(t, 2, false, 1, window/2, WithWindow(window))
	global := []Limit{{Scope: "global", RPM: 10}}
	start := time.Now()
	var times []time.Duration
	admitAt := func(r slicedReplica, at time.Duration, n int) {
		time.Sleep(time.Until(start.Add(at))) // time must pass: the scenario is about when
		for range n {
			now := time.Since(start)
			if d, _ := r.admit(t, nil, global, 0); d.Allowed {
				times = append(times, now)
			}
		}
	}
	admitAt(rs[0], 0, 1)                        // takes a slice of all 10
	admitAt(rs[0], window*4/10, 9)              // from the slice, late in its life
	admitAt(rs[1], window+window/20, 10)        // a window after the slice was taken
	if len(times) < 10 || times[9] > window/2 { // the scenario needs the late nine in the slice's life
		t.Fatalf("admitted at %v: the first ten were not admitted in the slice's life", times)
	}
	for i, at := range times {
		n := 0
		for _, b := range times[i:] {
			if b < at+window {
				n++
			}
		}
		if n > 10 {
			t.Fatalf("%d admitted in the window from %v under an RPM of 10 (admitted at %v)", n, at, times)
		}
	}
}
