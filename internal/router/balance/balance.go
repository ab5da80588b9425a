// Package balance holds the load-balancing picks that Junction's router
// and its hosting share: a weighted random pick and a least-score pick
// with random tie-breaking. The router picks among a route's deployments
// with them (by weight, calls in flight, latency or price), hosting among
// an endpoint's production variants (by weight) and a variant's instances
// (by calls in flight). The picks work over indexes, with the caller's own
// functions for weights, scores and eligibility, so that each caller keeps
// its types and nothing is allocated: a pick is on every request's path.
//
// What is eligible (healthy, ready, not yet tried, not draining) and what
// a score means are the caller's; this package only chooses.
package balance

// Number is a weight: whole for the router's routes, fractional for
// SageMaker's variant weights.
type Number interface {
	~int | ~int64 | ~float64
}

// Weighted picks one of n candidates at random in proportion to
// weight(i). Candidates weighing zero or less (those the caller rules
// out) are never picked. draw(total) returns a random number in [0,
// total). It returns -1 when no candidate weighs anything.
func Weighted[W Number](n int, weight func(i int) W, draw func(total W) W) int {
	var total W
	for i := range n {
		if w := weight(i); w > 0 {
			total += w
		}
	}
	if total <= 0 {
		return -1
	}
	r := draw(total)
	last := -1
	for i := range n {
		w := weight(i)
		if w <= 0 {
			continue
		}
		if r < w {
			return i
		}
		r -= w
		last = i
	}
	// Weights moved between the passes, or fractions did not add up
	// exactly: the last candidate with weight takes the rest.
	return last
}

// Least picks, among the n candidates that ok accepts, the one with the
// smallest score. Ties are broken uniformly at random with one draw of
// intN (count the ties, then take the r-th), so that equal candidates
// share the load; a constant score therefore picks uniformly at random.
// It returns -1 when ok accepts none.
func Least(n int, ok func(i int) bool, score func(i int) float64, intN func(n int) int) int {
	best, bestScore, ties := -1, 0.0, 0
	for i := range n {
		if !ok(i) {
			continue
		}
		s := score(i)
		switch {
		case best < 0 || s < bestScore:
			best, bestScore, ties = i, s, 1
		case s == bestScore:
			ties++
		}
	}
	if ties <= 1 {
		return best
	}
	r := intN(ties)
	for i := best; i < n; i++ {
		if ok(i) && score(i) == bestScore {
			if r == 0 {
				return i
			}
			r--
		}
	}
	return best // scores moved between the passes; the first minimum will do
}
