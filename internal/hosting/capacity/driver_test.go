package capacity

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeServer is a model server with a number of slots, each serving one
// request for service: up to slots requests in flight take service each;
// more wait in line for a slot, first come first served, so latency grows
// with concurrency once the slots are full and throughput stays at
// slots / service. failEvery > 0 fails every failEvery-th request (after
// its service time, as a server that tries and errs does).
//
// The tests run in a synctest bubble, where time.Sleep and timers use a
// fake clock that jumps ahead whenever every goroutine is waiting: the
// service times are simulated, and every figure is exact.
type fakeServer struct {
	slots     chan struct{}
	service   time.Duration
	failEvery int64
	n         atomic.Int64
}

func newFakeServer(slots int, service time.Duration) *fakeServer {
	return &fakeServer{slots: make(chan struct{}, slots), service: service}
}

func (s *fakeServer) invoke(ctx context.Context, _ []byte) error {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.slots }()
	select {
	case <-time.After(s.service):
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.failEvery > 0 && s.n.Add(1)%s.failEvery == 0 {
		return errors.New("HTTP 500: out of memory")
	}
	return nil
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// A server with 4 slots of 10 ms, measured in 1-second steps.
//
//   - Concurrency 1, 2 and 4 are served at once: 10 ms each; a worker
//     sends a request every 10 ms from 0 to 990 ms, 100 per worker and
//     second: 100, 200 and 400 req/s, the last ending at exactly 1 s.
//   - Concurrency 8: the first four requests are served at 0–10 ms, the
//     other four wait and are served at 10–20; from then on every request
//     waits one service time behind another: 20 ms. The workers of the
//     first batch send at 0, 10, 30, …, 990 (51 requests each), the others
//     at 0, 20, …, 980 (50 each): 404 requests, the last ending at
//     1,010 ms: 400 req/s again. p95 is 20 ms (400 of 404 took 20 ms).
func TestCapacityRisingLoad(t *testing.T) {
	for _, tc := range []struct {
		name      string
		target    time.Duration
		minGain   float64
		maxConc   int
		wantConc  []int
		wantBest  int
		wantRPS   float64
		wantStops string
	}{
		{"p95 passes the target", 15 * time.Millisecond, 0, 64, []int{1, 2, 4, 8}, 4, 400,
			"p95 20 ms passed the 15 ms target at concurrency 8"},
		{"throughput stops rising", 25 * time.Millisecond, 0.05, 64, []int{1, 2, 4, 8}, 4, 400,
			"throughput stopped rising at concurrency 8 (400.0 req/s against 400.0 at 4)"},
		{"the maximum concurrency is tried last", 25 * time.Millisecond, 0, 3, []int{1, 2, 3}, 3, 300,
			"reached the maximum concurrency, 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newFakeServer(4, 10*time.Millisecond)
				var progress []int
				d := &Driver{Invoke: srv.invoke, LatencyTarget: tc.target, StepDuration: time.Second,
					MaxConcurrency: tc.maxConc, MinGain: tc.minGain, Progress: func(s Step) { progress = append(progress, s.Concurrency) }}
				res, err := d.Run(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				var got []int
				for _, s := range res.Steps {
					got = append(got, s.Concurrency)
				}
				if !slices.Equal(got, tc.wantConc) || !slices.Equal(progress, tc.wantConc) {
					t.Fatalf("steps at concurrency %v, progress %v; want %v", got, progress, tc.wantConc)
				}
				if res.Best == nil || res.Best.Concurrency != tc.wantBest || !near(res.Best.RPS, tc.wantRPS) {
					t.Fatalf("best %+v, want concurrency %d at %g req/s", res.Best, tc.wantBest, tc.wantRPS)
				}
				if res.Stopped != tc.wantStops {
					t.Errorf("stopped: %q, want %q", res.Stopped, tc.wantStops)
				}
			})
		})
	}
}

// The figures of each step, as the comment of TestCapacityRisingLoad works them
// out.
func TestCapacityStepFigures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer(4, 10*time.Millisecond)
		d := &Driver{Invoke: srv.invoke, LatencyTarget: 15 * time.Millisecond, StepDuration: time.Second}
		res, err := d.Run(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := []Step{
			{Concurrency: 1, Requests: 100, Seconds: 1, RPS: 100, P50MS: 10, P95MS: 10, P99MS: 10},
			{Concurrency: 2, Requests: 200, Seconds: 1, RPS: 200, P50MS: 10, P95MS: 10, P99MS: 10},
			{Concurrency: 4, Requests: 400, Seconds: 1, RPS: 400, P50MS: 10, P95MS: 10, P99MS: 10},
			{Concurrency: 8, Requests: 404, Seconds: 1.01, RPS: 400, P50MS: 20, P95MS: 20, P99MS: 20},
		}
		if len(res.Steps) != len(want) {
			t.Fatalf("%d steps: %+v", len(res.Steps), res.Steps)
		}
		for i, w := range want {
			g := res.Steps[i]
			if g.Concurrency != w.Concurrency || g.Requests != w.Requests || g.Errors != 0 || !near(g.Seconds, w.Seconds) ||
				!near(g.RPS, w.RPS) || g.P50MS != w.P50MS || g.P95MS != w.P95MS || g.P99MS != w.P99MS {
				t.Errorf("step %d: %+v, want %+v", i, g, w)
			}
		}
	})
}

func TestCapacityErrorsStopTheRun(t *testing.T) {
	for _, tc := range []struct {
		name         string
		maxErrorRate float64
		wantBest     bool
		wantStopped  string
	}{
		// Every tenth request fails: 10 of 100 at concurrency 1.
		{"more than allowed", 0.05, false, "10 of 100 requests failed at concurrency 1 (first: HTTP 500: out of memory)"},
		{"within bounds", 0.2, true, "p95 20 ms passed the 15 ms target at concurrency 8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newFakeServer(4, 10*time.Millisecond)
				srv.failEvery = 10
				d := &Driver{Invoke: srv.invoke, LatencyTarget: 15 * time.Millisecond, StepDuration: time.Second, MaxErrorRate: tc.maxErrorRate}
				res, err := d.Run(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if (res.Best != nil) != tc.wantBest || res.Stopped != tc.wantStopped {
					t.Fatalf("best %+v, stopped %q; want best %v, stopped %q", res.Best, res.Stopped, tc.wantBest, tc.wantStopped)
				}
				if tc.wantBest {
					// 400 requests at concurrency 4, 40 failed: 360 in 1 s.
					if b := res.Best; b.Concurrency != 4 || b.Requests != 400 || b.Errors != 40 || !near(b.RPS, 360) {
						t.Errorf("best %+v, want 360 successful req/s at concurrency 4", b)
					}
				}
			})
		})
	}
}

// A server slower than the target from the first request gives no
// capacity, and says so.
func TestCapacityNothingUnderTheTarget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer(1, 600*time.Millisecond)
		d := &Driver{Invoke: srv.invoke, LatencyTarget: 500 * time.Millisecond, StepDuration: time.Second}
		res, err := d.Run(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if res.Best != nil || len(res.Steps) != 1 || res.Stopped != "p95 600 ms passed the 500 ms target at concurrency 1" {
			t.Fatalf("%+v", res)
		}
		if _, err := res.Measurement(&Target{Endpoint: "slow", InstanceType: "ml.g6.xlarge", Instances: 1}, time.Now()); err == nil ||
			!strings.Contains(err.Error(), "no step kept p95 within 500ms") {
			t.Errorf("measurement of a run without a best step: %v", err)
		}
	})
}

// Cancelling stops the run at once; the step it cut short is left out.
func TestCapacityCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		srv := newFakeServer(4, 10*time.Millisecond)
		d := &Driver{Invoke: srv.invoke, LatencyTarget: time.Second, StepDuration: time.Second,
			Progress: func(Step) { time.AfterFunc(500*time.Millisecond, cancel) }}
		res, err := d.Run(ctx)
		if !errors.Is(err, context.Canceled) || len(res.Steps) != 1 || res.Best == nil || res.Best.Concurrency != 1 {
			t.Fatalf("err %v, result %+v", err, res)
		}
	})
}

func TestCapacityBadSettings(t *testing.T) {
	ok := func(context.Context, []byte) error { return nil }
	for _, d := range []*Driver{
		{LatencyTarget: time.Second},
		{Invoke: ok},
		{Invoke: ok, LatencyTarget: time.Second, MaxErrorRate: 1},
		{Invoke: ok, LatencyTarget: time.Second, MinGain: -0.1},
	} {
		if _, err := d.Run(t.Context()); err == nil {
			t.Errorf("%+v: no error", d)
		}
	}
}

func TestCapacityPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	twenty := hundred[:20]
	for _, tc := range []struct {
		name          string
		values        []time.Duration
		p50, p95, p99 float64
	}{
		{"none", nil, 0, 0, 0},
		{"one", ms(7), 7, 7, 7},
		// Nearest rank: the ⌈p·n/100⌉-th smallest.
		{"1..100 ms", ms(hundred...), 50, 95, 99},
		// ⌈0.95 · 20⌉ = 19, ⌈0.99 · 20⌉ = 20.
		{"1..20 ms", ms(twenty...), 10, 19, 20},
		{"fractions of a millisecond", []time.Duration{1500 * time.Microsecond, 2500 * time.Microsecond}, 1.5, 2.5, 2.5},
	} {
		if p50, p95, p99 := percentile(tc.values, 50), percentile(tc.values, 95), percentile(tc.values, 99); p50 != tc.p50 || p95 != tc.p95 || p99 != tc.p99 {
			t.Errorf("%s: p50 %g p95 %g p99 %g, want %g %g %g", tc.name, p50, p95, p99, tc.p50, tc.p95, tc.p99)
		}
	}
}
