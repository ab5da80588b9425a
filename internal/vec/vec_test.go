package vec

import (
	"math"
	"testing"
)

// TestDot: the unrolled sum equals the plain one, for lengths on and off
// the unrolling's multiple of eight.
func TestDot(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 17, 1536} {
		a, b := make([]float32, n), make([]float32, n+3) // b may be longer
		var want float64
		for i := range a {
			a[i], b[i] = float32(i%5)-2, float32(i%3)+0.5
			want += float64(a[i]) * float64(b[i])
		}
		if got := Dot(a, b); math.Abs(float64(got)-want) > 1e-3 {
			t.Errorf("n=%d: %v, want %v", n, got, want)
		}
	}
}

// TestNormalize: a vector becomes unit length; zeros and infinities are
// refused.
func TestNormalize(t *testing.T) {
	v := []float32{3, 4}
	if !Normalize(v) || math.Abs(float64(v[0])-0.6) > 1e-6 || math.Abs(float64(Dot(v, v))-1) > 1e-6 {
		t.Fatalf("normalized %v", v)
	}
	if Normalize([]float32{0, 0}) || Normalize([]float32{float32(math.Inf(1))}) {
		t.Fatal("a zero or infinite vector was normalized")
	}
}
