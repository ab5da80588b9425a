package advisor

import "sort"

// Break-even: the volumes at which the cheaper of two options changes.
//
// When both cost functions are affine (per-token, serverless, fixed fleets,
// fixed model units), the difference d(x) = a(x) − b(x) = Δα + Δβ·x is one
// line and crosses zero once, at x = −Δα/Δβ, or never (parallel lines, or
// a crossing at or below zero volume).
//
// When either is a step function (capacity derived from the load), the
// search runs over (0, hi]. Each cost lies between two parallel lines (its
// envelope: a fleet runs between v and v + 1 + min instances an hour, v
// being the load over the capacity); where the slopes differ, past the
// volume at which the envelopes of the two options part, the cheaper can
// no longer change, and hi is that volume. With equal slopes hi is
// searchFactor × today's volume. A capacity limit (max_instances) lowers
// hi, and so does the cap on jumps examined. Every volume where either
// function jumps is collected; between two such volumes both functions
// are affine, so d is a line there and its zero is solved exactly. The
// cheaper option can also change at a jump itself (d changes sign across
// the jump with no zero in between). Every change is reported, in order:
// step functions can cross a line many times.

const (
	// searchFactor bounds the search for step functions: break-even is
	// looked for up to this multiple of the scenario's volume.
	searchFactor = 100
	// maxSteps bounds the jumps examined per option; past it the search
	// stops early and says so.
	maxSteps = 20000
	// maxCrossings bounds the crossings reported per pair.
	maxCrossings = 1000
)

// crossing is a volume at which the cheaper of (a, b) changes; bAbove
// says b is the cheaper one just above it.
type crossing struct {
	at     Dec
	bAbove bool
}

// search is the outcome of comparing two options across volumes.
type search struct {
	crossings []crossing
	// bounded says the search stopped at searchedTo (step functions or a
	// capacity limit); otherwise it covered every volume above zero.
	bounded    bool
	searchedTo Dec
}

func affine(f costFunc) bool {
	_, isLinear := f.(linear)
	_, isFlat := f.(flat)
	return isLinear || isFlat
}

// compare finds where the cheaper of a and b changes; today is the
// scenario's volume.
func compare(a, b costFunc, today Dec) search {
	if affine(a) && affine(b) {
		zero, one := IntDec(0), IntDec(1)
		dAlpha := a.at(zero).Sub(b.at(zero))
		dBeta := a.at(one).Sub(b.at(one)).Sub(dAlpha)
		if dBeta.Sign() == 0 {
			return search{}
		}
		x := dAlpha.Quo(dBeta).Mul(IntDec(-1))
		if x.Sign() <= 0 {
			return search{}
		}
		// Above x, d has the sign of Δβ: positive means a costs more.
		return search{crossings: []crossing{{at: x, bAbove: dBeta.Sign() > 0}}}
	}

	// Beyond the volume where the two envelopes part for good, d keeps
	// one sign: search up to there when the slopes differ, else up to
	// searchFactor × today.
	hi, proved := today.MulInt(searchFactor), false
	aLo, aHi, aSlope := a.envelope()
	bLo, bHi, bSlope := b.envelope()
	if dSlope := aSlope.Sub(bSlope); dSlope.Sign() != 0 {
		r1 := bHi.Sub(aLo).Quo(dSlope)
		r2 := bLo.Sub(aHi).Quo(dSlope)
		if r2.Cmp(r1) > 0 {
			r1 = r2
		}
		if r1.Sign() < 0 {
			r1 = IntDec(0)
		}
		hi, proved = r1.Add(IntDec(1)), true
	}
	if hi.Sign() <= 0 {
		hi = IntDec(1_000_000)
	}
	for _, f := range []costFunc{a, b} {
		if lim, ok := f.limit(); ok && lim.Cmp(hi) < 0 {
			hi, proved = lim, false
		}
	}
	sa, ta := a.steps(hi, maxSteps)
	sb, tb := b.steps(hi, maxSteps)
	if ta || tb {
		proved = false
		// Search only as far as both step lists are complete.
		if ta && len(sa) > 0 && sa[len(sa)-1].Cmp(hi) < 0 {
			hi = sa[len(sa)-1]
		}
		if tb && len(sb) > 0 && sb[len(sb)-1].Cmp(hi) < 0 {
			hi = sb[len(sb)-1]
		}
	}
	points := append(append([]Dec{IntDec(0)}, sa...), sb...)
	points = append(points, hi)
	sortDecs(points)
	points = uniq(points)

	out := search{bounded: !proved, searchedTo: hi}
	cur := 0      // sign of d before the current point, 0 until known
	var zero *Dec // where d became 0, while it stays 0
	visit := func(s int, at Dec) {
		if s == 0 {
			if zero == nil {
				z := at
				zero = &z
			}
			return
		}
		if cur != 0 && s != cur && len(out.crossings) < maxCrossings {
			x := at
			if zero != nil {
				x = *zero
			}
			out.crossings = append(out.crossings, crossing{at: x, bAbove: s > 0})
		}
		cur, zero = s, nil
	}
	slope := a.slope().Sub(b.slope())
	for i := 1; i < len(points); i++ {
		l, r := points[i-1], points[i]
		if l.Cmp(hi) >= 0 {
			break
		}
		// d is affine on (l, r], with the slopes the costs have between
		// jumps.
		dr := a.at(r).Sub(b.at(r))
		dl := dr.Sub(slope.Mul(r.Sub(l))) // the limit of d from the right of l
		visit(dl.Sign(), l)
		if dl.Sign() != 0 && dr.Sign() != 0 && dl.Sign() != dr.Sign() {
			root := l.Sub(dl.Quo(slope))
			visit(dr.Sign(), root)
		}
		visit(dr.Sign(), r)
	}
	return out
}

func sortDecs(xs []Dec) { sort.Slice(xs, func(i, j int) bool { return xs[i].Cmp(xs[j]) < 0 }) }
