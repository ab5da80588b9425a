package advisor

import (
	"sort"
)

// costFunc is an option's cost over the month as a function of the
// volume x in requests per day. Per-token and serverless options are
// lines through zero, fixed fleets and fixed model units are flat, and
// capacity derived from the load is a step function: it jumps where one
// more instance (or model unit) is needed, and is flat or a line between
// jumps.
type costFunc interface {
	// at returns the monthly cost at x requests/day.
	at(x Dec) Dec
	// steps returns, ascending, the volumes in (0, hi] where the cost
	// jumps, at most maxSteps of them; truncated says there were more.
	// The cost is affine on every (step_k, step_k+1].
	steps(hi Dec, maxSteps int) (xs []Dec, truncated bool)
	// limit returns the most requests/day the option can serve, when
	// bounded.
	limit() (Dec, bool)
	// envelope returns two parallel lines that hold the cost between
	// them at every volume up to the limit: lo + slope·x ≤ at(x) ≤ hi +
	// slope·x. Break-even searches use it to know where to stop.
	envelope() (lo, hi, slope Dec)
	// slope is the cost's slope between two jumps.
	slope() Dec
}

// linear costs perRequest for every request: x × perRequest × days.
type linear struct{ perRequest, days Dec }

func (l linear) at(x Dec) Dec               { return x.Mul(l.perRequest).Mul(l.days) }
func (linear) steps(Dec, int) ([]Dec, bool) { return nil, false }
func (linear) limit() (Dec, bool)           { return Dec{}, false }
func (l linear) slope() Dec                 { return l.perRequest.Mul(l.days) }
func (l linear) envelope() (Dec, Dec, Dec) {
	return IntDec(0), IntDec(0), l.perRequest.Mul(l.days)
}

// flat costs the same at any volume: a fixed fleet or fixed model units.
type flat struct{ monthly Dec }

func (f flat) at(Dec) Dec                 { return f.monthly }
func (flat) steps(Dec, int) ([]Dec, bool) { return nil, false }
func (flat) limit() (Dec, bool)           { return Dec{}, false }
func (f flat) envelope() (Dec, Dec, Dec)  { return f.monthly, f.monthly, IntDec(0) }
func (flat) slope() Dec                   { return IntDec(0) }

// fleet is an instance fleet sized hour by hour from the load: in hour h
// the rate is x × w[h] / 3600 requests per second, and the fleet runs
// clamp(⌈rate / capacity⌉, min, max) instances. Its cost is the sum of
// instance-hours over the day × the hourly price × days.
type fleet struct {
	w         []Dec // 24 hourly weights; see shape
	capacity  Dec   // requests per second per instance
	min, max  int   // max 0: unbounded
	hourly    Dec   // USD per instance-hour, after any discount
	days      Dec
	peakShare Dec // max of w
	// groups gather the hours of equal weight: n = ⌈x × perVolume⌉ for
	// each of its hours, perVolume being w / (3600 × capacity).
	groups []hourGroup
	hourOf []int // hour → index in groups
}

type hourGroup struct {
	perVolume Dec
	hours     int64
}

var secondsPerHour = IntDec(3600)

func newFleet(w []Dec, capacity Dec, lo, hi int, hourly, days, peak Dec) fleet {
	f := fleet{w: w, capacity: capacity, min: lo, max: hi, hourly: hourly, days: days, peakShare: peak, hourOf: make([]int, len(w))}
	index := map[string]int{}
	for h, wh := range w {
		i, ok := index[wh.String()]
		if !ok {
			i = len(f.groups)
			index[wh.String()] = i
			f.groups = append(f.groups, hourGroup{perVolume: wh.Quo(secondsPerHour).Quo(capacity)})
		}
		f.groups[i].hours++
		f.hourOf[h] = i
	}
	return f
}

// size is the clamped fleet size of a group at x.
func (f fleet) size(g hourGroup, x Dec) int64 {
	n := x.Mul(g.perVolume).Ceil()
	if n < int64(f.min) {
		n = int64(f.min)
	}
	if f.max > 0 && n > int64(f.max) {
		n = int64(f.max)
	}
	return n
}

// instances returns the fleet size for each hour of the day at x.
func (f fleet) instances(x Dec) []int64 {
	sizes := make([]int64, len(f.groups))
	for i, g := range f.groups {
		sizes[i] = f.size(g, x)
	}
	out := make([]int64, len(f.w))
	for h := range f.w {
		out[h] = sizes[f.hourOf[h]]
	}
	return out
}

// slope: the fleet is constant between jumps.
func (fleet) slope() Dec { return IntDec(0) }

func (f fleet) at(x Dec) Dec {
	var hours int64
	for _, g := range f.groups {
		hours += f.size(g, x) * g.hours
	}
	return IntDec(hours).Mul(f.hourly).Mul(f.days)
}

// steps: hour h needs k+1 instances just above x = k × 3600 × capacity /
// w[h]; the union over the distinct weights.
func (f fleet) steps(hi Dec, maxSteps int) ([]Dec, bool) {
	seen := map[string]bool{}
	var all []Dec
	truncated := false
	for _, w := range f.w {
		if w.Sign() <= 0 || seen[w.String()] {
			continue
		}
		seen[w.String()] = true
		xs, tr := multiples(secondsPerHour.Mul(f.capacity).Quo(w), hi, maxSteps, f.max)
		truncated = truncated || tr
		all = append(all, xs...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Cmp(all[j]) < 0 })
	all = uniq(all)
	if len(all) > maxSteps {
		all, truncated = all[:maxSteps], true
	}
	return all, truncated
}

// envelope: hour h runs between v = x·w[h]/(3600·capacity) and v + 1 +
// min instances (⌈v⌉ < v + 1, and the floor adds at most min), so the day
// runs between Σv and Σv + 24·(1 + min) instance-hours.
func (f fleet) envelope() (Dec, Dec, Dec) {
	var sum Dec
	for _, w := range f.w {
		sum = sum.Add(w)
	}
	perHour := f.hourly.Mul(f.days)
	slope := sum.Quo(secondsPerHour).Quo(f.capacity).Mul(perHour)
	return IntDec(0), IntDec(int64(24 * (1 + f.min))).Mul(perHour), slope
}

// limit is the volume at which the busiest hour needs more than max
// instances.
func (f fleet) limit() (Dec, bool) {
	if f.max <= 0 {
		return Dec{}, false
	}
	return IntDec(int64(f.max)).Mul(secondsPerHour).Mul(f.capacity).Quo(f.peakShare), true
}

// unitsForLoad buys enough model units for the peak minute's tokens:
// max(1, ⌈x × peakShare / 60 × tokensPerRequest / tokensPerMinutePerUnit⌉)
// units at perUnit each (the monthly price, prorated to days).
type unitsForLoad struct {
	peakShare, tokensPerRequest, tpmPerUnit, perUnit Dec
}

// unitVolume is the volume one model unit carries: 60 × tpm / (peakShare
// × tokens per request), since the peak minute sees x × peakShare / 60
// requests.
func (u unitsForLoad) unitVolume() Dec {
	return IntDec(60).Mul(u.tpmPerUnit).Quo(u.peakShare.Mul(u.tokensPerRequest))
}

func (u unitsForLoad) units(x Dec) int64 {
	n := x.Quo(u.unitVolume()).Ceil()
	if n < 1 {
		n = 1
	}
	return n
}

func (u unitsForLoad) at(x Dec) Dec { return IntDec(u.units(x)).Mul(u.perUnit) }

func (u unitsForLoad) steps(hi Dec, n int) ([]Dec, bool) { return multiples(u.unitVolume(), hi, n, 0) }

func (unitsForLoad) limit() (Dec, bool) { return Dec{}, false }

func (unitsForLoad) slope() Dec { return IntDec(0) }

// envelope: x/V ≤ max(1, ⌈x/V⌉) ≤ x/V + 2 units, V being unitVolume.
func (u unitsForLoad) envelope() (Dec, Dec, Dec) {
	return IntDec(0), u.perUnit.MulInt(2), u.perUnit.Quo(u.unitVolume())
}

// multiples returns k × unit for k = 1, 2, … up to hi (and below
// kMax when kMax > 0), at most n of them.
func multiples(unit, hi Dec, n, kMax int) ([]Dec, bool) {
	var xs []Dec
	for k := int64(1); ; k++ {
		if kMax > 0 && k >= int64(kMax) {
			return xs, false
		}
		x := unit.MulInt(k)
		if x.Cmp(hi) > 0 {
			return xs, false
		}
		if len(xs) == n {
			return xs, true
		}
		xs = append(xs, x)
	}
}

func uniq(xs []Dec) []Dec {
	out := xs[:0]
	for i, x := range xs {
		if i == 0 || x.Cmp(xs[i-1]) != 0 {
			out = append(out, x)
		}
	}
	return out
}
