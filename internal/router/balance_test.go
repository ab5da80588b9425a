package router

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/wire/llm"
)

func seeded(seed uint64) IntN { return rand.New(rand.NewPCG(seed, seed)).IntN }

func members(weights ...int) []Member {
	ms := make([]Member, len(weights))
	for i, w := range weights {
		ms[i] = Member{D: &Deployment{Target: &Target{Model: fmt.Sprint("m", i)}, health: &Health{FailureThreshold: 1}}, Weight: w}
	}
	return ms
}

func TestWeightedDistribution(t *testing.T) {
	ms := members(3, 1, 0, 6)
	b := Weighted{seeded(1)}
	skip := make([]bool, len(ms))
	const n = 100000
	counts := make([]int, len(ms))
	for i := 0; i < n; i++ {
		counts[b.Pick(ms, skip)]++
	}
	for i, w := range []float64{0.3, 0.1, 0, 0.6} {
		got := float64(counts[i]) / n
		// Five standard deviations of a binomial proportion.
		if tol := 5 * math.Sqrt(w*(1-w)/n); math.Abs(got-w) > tol+1e-9 {
			t.Errorf("member %d: share %.4f, want %.2f ± %.4f", i, got, w, tol)
		}
	}
	skip[3] = true
	for i := 0; i < 1000; i++ {
		if got := b.Pick(ms, skip); got == 3 || got == 2 {
			t.Fatalf("picked %d: skipped or zero-weight member", got)
		}
	}
	skip[0], skip[1] = true, true
	if got := b.Pick(ms, skip); got != 2 {
		t.Fatalf("only a zero-weight member left: got %d, want 2", got)
	}
	skip[2] = true
	if got := b.Pick(ms, skip); got != -1 {
		t.Fatalf("all skipped: got %d", got)
	}
}

func TestLeastOutstandingSpreadsTies(t *testing.T) {
	ms := members(1, 1, 1)
	ms[0].D.outstanding.Store(5)
	b := LeastOutstanding{seeded(2)}
	skip := make([]bool, 3)
	seen := map[int]int{}
	for i := 0; i < 1000; i++ {
		seen[b.Pick(ms, skip)]++
	}
	if seen[0] != 0 || seen[1] < 400 || seen[2] < 400 {
		t.Fatalf("picks %v: member 0 is busiest and ties should be shared", seen)
	}
}

func TestLowestLatencyAndCost(t *testing.T) {
	ms := members(1, 1, 1)
	for i, ms2 := range []float64{300, 80, 120} {
		ms[i].D.latencyEWMA.Store(math.Float64bits(ms2))
	}
	skip := make([]bool, 3)
	if got := (LowestLatency{seeded(3)}).Pick(ms, skip); got != 1 {
		t.Fatalf("lowest latency picked %d", got)
	}
	ms[0].D.Price = &ledger.Price{InputPer1K: 0.001, OutputPer1K: 0.002}
	ms[1].D.Price = &ledger.Price{InputPer1K: 0.01, OutputPer1K: 0.02}
	// ms[2] has no price: it comes last.
	if got := (LowestCost{seeded(3)}).Pick(ms, skip); got != 0 {
		t.Fatalf("lowest cost picked %d", got)
	}
}

func TestEWMA(t *testing.T) {
	d := &Deployment{Target: &Target{}, health: &Health{FailureThreshold: 1}}
	d.Begin()
	d.End(100e6, 0, nil)
	d.Begin()
	d.End(200e6, 0, nil)
	if got := d.Latency(); math.Abs(got-120) > 1e-9 || d.Outstanding() != 0 {
		t.Fatalf("ewma %v outstanding %d", got, d.Outstanding())
	}
}

func BenchmarkPick(b *testing.B) {
	for _, name := range []string{"weighted", "least_outstanding", "lowest_latency", "lowest_cost"} {
		for _, n := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				ws := make([]int, n)
				for i := range ws {
					ws[i] = i%5 + 1
				}
				ms := members(ws...)
				skip := make([]bool, n)
				bal, _ := NewBalancer(name, nil)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if bal.Pick(ms, skip) < 0 {
						b.Fatal("no pick")
					}
				}
			})
		}
	}
}

func TestCooldownGrowsAndEndsWhenTheDeploymentRecovers(t *testing.T) {
	d := &Deployment{Target: &Target{Model: "m"}, health: &Health{FailureThreshold: 2, Cooldown: 20 * time.Millisecond, MaxCooldown: 50 * time.Millisecond}}
	fail := llm.Errorf(502, llm.ErrUpstream, "down")
	d.Begin()
	d.End(time.Millisecond, 0, fail)
	if d.CoolingDown(time.Now().UnixNano()) {
		t.Fatal("one failure is under the threshold")
	}
	d.Begin()
	d.End(time.Millisecond, 0, fail)
	now := time.Now()
	if !d.CoolingDown(now.UnixNano()) || d.CoolingDown(now.Add(25*time.Millisecond).UnixNano()) {
		t.Fatal("second failure should start a 20ms cooldown")
	}
	d.Begin()
	d.End(time.Millisecond, 0, fail)
	if !d.CoolingDown(time.Now().Add(30 * time.Millisecond).UnixNano()) {
		t.Fatal("the cooldown should double while it keeps failing")
	}
	d.Begin()
	d.End(time.Millisecond, 0, fail)
	if d.CoolingDown(time.Now().Add(60 * time.Millisecond).UnixNano()) {
		t.Fatal("the cooldown must not pass max_cooldown")
	}
	// A 400 is the request's fault: no effect on health.
	d.Begin()
	d.End(time.Millisecond, 0, llm.Errorf(400, llm.ErrInvalidRequest, "bad"))
	// An answer ends the cooldown at once.
	d.Begin()
	d.End(time.Millisecond, 0, nil)
	if d.CoolingDown(time.Now().UnixNano()) {
		t.Fatal("a deployment that answered is still cooling down")
	}
	d.Begin()
	d.End(time.Millisecond, 0, fail)
	if d.CoolingDown(time.Now().UnixNano()) {
		t.Fatal("recovery must reset the failure count")
	}
}
