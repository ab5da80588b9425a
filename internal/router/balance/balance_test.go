package balance

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

// share checks that counts[i]/n is within five standard deviations of
// want[i].
func share(t *testing.T, counts []int, want []float64) {
	t.Helper()
	n := 0
	for _, c := range counts {
		n += c
	}
	for i, w := range want {
		got := float64(counts[i]) / float64(n)
		if tol := 5 * math.Sqrt(w*(1-w)/float64(n)); math.Abs(got-w) > tol+1e-9 {
			t.Errorf("candidate %d: share %.4f, want %.2f ± %.4f", i, got, w, tol)
		}
	}
}

func TestWeightedPicksInProportionAndNeverTheExcluded(t *testing.T) {
	r := seeded(1)
	ints := []int{3, 1, 0, 6, -2}
	floats := []float64{0.3, 0.1, 0, 0.6, -1}
	ci, cf := make([]int, len(ints)), make([]int, len(floats))
	for range 100000 {
		ci[Weighted(len(ints), func(i int) int { return ints[i] }, r.IntN)]++
		cf[Weighted(len(floats), func(i int) float64 { return floats[i] }, func(t float64) float64 { return r.Float64() * t })]++
	}
	share(t, ci, []float64{0.3, 0.1, 0, 0.6, 0})
	share(t, cf, []float64{0.3, 0.1, 0, 0.6, 0})
	if got := Weighted(3, func(int) int { return 0 }, r.IntN); got != -1 {
		t.Errorf("nothing weighs anything: picked %d, want -1", got)
	}
	if got := Weighted(0, func(int) float64 { return 1 }, func(t float64) float64 { return r.Float64() * t }); got != -1 {
		t.Errorf("no candidates: picked %d, want -1", got)
	}
}

func TestWeightedGivesTheRestToTheLastWhenFractionsDoNotAddUp(t *testing.T) {
	ws := []float64{0.1, 0.2, 0}
	// A draw past the total, as rounding can make one.
	if got := Weighted(len(ws), func(i int) float64 { return ws[i] }, func(t float64) float64 { return t + 1 }); got != 1 {
		t.Errorf("picked %d, want 1, the last candidate with weight", got)
	}
}

func TestLeastPicksTheSmallestAndSharesTies(t *testing.T) {
	r := seeded(2)
	scores := []float64{5, 1, 3, 1, 1}
	ok := func(i int) bool { return i != 4 } // 4 ties for least but is ruled out
	counts := make([]int, len(scores))
	for range 30000 {
		counts[Least(len(scores), ok, func(i int) float64 { return scores[i] }, r.IntN)]++
	}
	share(t, counts, []float64{0, 0.5, 0, 0.5, 0})
	// A constant score is a uniform pick among those accepted.
	counts = make([]int, len(scores))
	for range 30000 {
		counts[Least(len(scores), ok, func(int) float64 { return 0 }, r.IntN)]++
	}
	share(t, counts, []float64{0.25, 0.25, 0.25, 0.25, 0})
	if got := Least(3, func(int) bool { return false }, func(int) float64 { return 0 }, r.IntN); got != -1 {
		t.Errorf("none accepted: picked %d, want -1", got)
	}
}

func TestLeastDrawsOnlyForTies(t *testing.T) {
	draws := 0
	intN := func(int) int { draws++; return 0 }
	scores := []float64{4, 2, 3}
	if got := Least(3, func(int) bool { return true }, func(i int) float64 { return scores[i] }, intN); got != 1 || draws != 0 {
		t.Errorf("picked %d with %d draws, want 1 with none", got, draws)
	}
}

func BenchmarkWeighted(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ws := make([]int, n)
			for i := range ws {
				ws[i] = i%5 + 1
			}
			b.ReportAllocs()
			for b.Loop() {
				if Weighted(n, func(i int) int { return ws[i] }, rand.IntN) < 0 {
					b.Fatal("no pick")
				}
			}
		})
	}
}

func BenchmarkLeast(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			scores := make([]float64, n)
			for i := range scores {
				scores[i] = float64(i % 3)
			}
			b.ReportAllocs()
			for b.Loop() {
				if Least(n, func(int) bool { return true }, func(i int) float64 { return scores[i] }, rand.IntN) < 0 {
					b.Fatal("no pick")
				}
			}
		})
	}
}
