// Package vec holds the arithmetic on embedding vectors that Junction's
// nearest-neighbour searches share (the prompt router's feedback, the
// response cache's semantic mode): unit scaling and the inner product,
// which on unit vectors is the cosine similarity. It is not a vector
// index.
package vec

import "math"

// Dot is the inner product of a and b[:len(a)], in eight independent sums
// so that the multiplications overlap.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	for len(a) >= 8 && len(b) >= 8 {
		s0 += a[0] * b[0]
		s1 += a[1] * b[1]
		s2 += a[2] * b[2]
		s3 += a[3] * b[3]
		s4 += a[4] * b[4]
		s5 += a[5] * b[5]
		s6 += a[6] * b[6]
		s7 += a[7] * b[7]
		a, b = a[8:], b[8:]
	}
	for i := range a {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3) + (s4 + s5) + (s6 + s7)
}

// Normalize scales v to unit length in place; it reports false for a
// zero (or non-finite) vector.
func Normalize(v []float32) bool {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if n == 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return false
	}
	inv := float32(1 / math.Sqrt(n))
	for i := range v {
		v[i] *= inv
	}
	return true
}
