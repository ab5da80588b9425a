package budget

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slicedAdmit admits one request under budgets (on Redis) and hot (from
// slices), giving back what a refusal took.
func slicedAdmit(t *testing.T, s *Slices, budgets, hot []Budget, worst Nanos) (Decision, *Reservation) {
	t.Helper()
	ctx := context.Background()
	pipe := s.r.client.Pipeline()
	p := s.Queue(ctx, pipe, budgets, hot, worst)
	_, _ = pipe.Exec(ctx)
	d, res, err := p.Result()
	if err != nil {
		t.Error(err)
		return d, nil
	}
	if !d.Allowed {
		if b := p.GiveBack(); b != nil {
			if _, err := b.Send(ctx); err != nil {
				t.Error(err)
			}
		}
	}
	return d, res
}

// TestSlicesNeverOverspend hammers a hard global budget admitted from
// slices on three replicas, each request also under its key's budget on
// Redis, settling random costs up to the worst case: spend never passes
// the limit, the budget is used up, most requests never reach the
// budget's hash, and once the replicas release their slices nothing is
// left reserved.
func TestSlicesNeverOverspend(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		t.Run(map[bool]string{false: "redis", true: "cluster"}[cluster], func(t *testing.T) {
			es := replicas(t, 3, cluster)
			ss := make([]*Slices, len(es))
			for i, e := range es {
				ss[i] = e.(*Redis).NewSlices(0.05, time.Minute)
			}
			global := Budget{Scope: "global", Period: Monthly, Limit: 5 * Dollar}
			key := func(g int) []Budget {
				return []Budget{{Scope: "key:" + string(rune('a'+g%5)), Period: Daily, Limit: 100 * Dollar}}
			}
			worst := USD(0.007)
			var settled, admitted atomic.Int64
			var wg sync.WaitGroup
			for g := range 30 {
				wg.Go(func() {
					s := ss[g%len(ss)]
					rng := rand.New(rand.NewPCG(uint64(g), 3))
					for range 60 {
						d, res := slicedAdmit(t, s, key(g), []Budget{global}, worst)
						if !d.Allowed {
							continue
						}
						admitted.Add(1)
						cost := Nanos(rng.Int64N(int64(worst) + 1))
						if _, err := s.r.Settle(context.Background(), res, cost); err != nil {
							t.Error(err)
							return
						}
						settled.Add(int64(cost))
					}
				})
			}
			wg.Wait()
			if got := Nanos(settled.Load()); got > 5*Dollar || got < 4*Dollar {
				t.Fatalf("settled %s under a $5.00 hard budget (admitted %d)", got, admitted.Load())
			}
			var taken uint64
			for _, s := range ss {
				if err := s.Release(context.Background()); err != nil {
					t.Fatal(err)
				}
				taken += s.Taken()
			}
			if st := status(t, es[0], global); st.Spent != Nanos(settled.Load()) || st.Reserved != 0 {
				t.Errorf("global: spent %s reserved %s, want %s spent and nothing reserved", st.Spent, st.Reserved, Nanos(settled.Load()))
			}
			// A slice is $0.25, 35 requests' worst case: most requests came
			// out of a slice in hand.
			if taken*5 > uint64(admitted.Load()) {
				t.Errorf("%d slices for %d admissions", taken, admitted.Load())
			}
			t.Logf("%d admitted from %d slices, settled %s", admitted.Load(), taken, Nanos(settled.Load()))
		})
	}
}
