package router

import (
	"fmt"
	"math/rand/v2"

	"github.com/junctionhq/junction/internal/router/balance"
)

// Member is a deployment in a route, with its weight there.
type Member struct {
	D      *Deployment
	Weight int
}

// Balancer picks a member of a route. skip[i] excludes member i (already
// tried, or cooling down). It returns -1 when every member is skipped.
// Implementations must not allocate: Pick is on every request's path.
type Balancer interface {
	Pick(members []Member, skip []bool) int
	// Name is the strategy's config name.
	Name() string
}

// IntN returns a random int in [0, n); tests replace it with a seeded one.
type IntN func(n int) int

// NewBalancer returns the strategy named in config.
func NewBalancer(name string, intN IntN) (Balancer, error) {
	if intN == nil {
		intN = rand.IntN
	}
	switch name {
	case "", "weighted":
		return Weighted{intN}, nil
	case "least_outstanding":
		return LeastOutstanding{intN}, nil
	case "lowest_latency":
		return LowestLatency{intN}, nil
	case "lowest_cost":
		return LowestCost{intN}, nil
	}
	return nil, fmt.Errorf("unknown strategy %q", name)
}

// Weighted picks at random in proportion to weight.
type Weighted struct{ intN IntN }

// Name implements Balancer.
func (Weighted) Name() string { return "weighted" }

// Pick implements Balancer. When every free member weighs zero, the
// first free one is picked.
func (b Weighted) Pick(ms []Member, skip []bool) int {
	i := balance.Weighted(len(ms), func(i int) int {
		if skip[i] {
			return 0
		}
		return ms[i].Weight
	}, b.intN)
	if i < 0 {
		return firstFree(skip)
	}
	return i
}

// LeastOutstanding picks the member with the fewest calls in flight; ties
// go to a random one of them, so equal members share the load.
type LeastOutstanding struct{ intN IntN }

// Name implements Balancer.
func (LeastOutstanding) Name() string { return "least_outstanding" }

// Pick implements Balancer.
func (b LeastOutstanding) Pick(ms []Member, skip []bool) int {
	return pickMin(ms, skip, b.intN, func(d *Deployment) float64 { return float64(d.Outstanding()) })
}

// LowestLatency picks the member with the lowest decaying average latency
// (time to first token where known, for streaming workloads). Members with
// no observations yet are tried first, so every member gets measured.
type LowestLatency struct{ intN IntN }

// Name implements Balancer.
func (LowestLatency) Name() string { return "lowest_latency" }

// Pick implements Balancer.
func (b LowestLatency) Pick(ms []Member, skip []bool) int {
	return pickMin(ms, skip, b.intN, func(d *Deployment) float64 { return d.Latency() })
}

// LowestCost picks the member with the lowest per-token price; unpriced
// members come last.
type LowestCost struct{ intN IntN }

// Name implements Balancer.
func (LowestCost) Name() string { return "lowest_cost" }

// Pick implements Balancer.
func (b LowestCost) Pick(ms []Member, skip []bool) int {
	return pickMin(ms, skip, b.intN, (*Deployment).unitPrice)
}

// pickMin returns the free member with the smallest score, ties broken
// at random (balance.Least).
func pickMin(ms []Member, skip []bool, intN IntN, score func(*Deployment) float64) int {
	return balance.Least(len(ms), func(i int) bool { return !skip[i] }, func(i int) float64 { return score(ms[i].D) }, intN)
}

func firstFree(skip []bool) int {
	for i, s := range skip {
		if !s {
			return i
		}
	}
	return -1
}
