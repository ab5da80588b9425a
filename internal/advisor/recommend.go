package advisor

import (
	"fmt"
	"slices"
	"strings"
)

// The decision path (docs/advisor.md has it with examples). In order:
//
//  1. Hard facts narrow the kinds: a custom model can only be self-hosted
//     (instances or serverless); network isolation and edge deployment
//     need instances of your own.
//  2. Options that cannot serve the volume are left out: a derived fleet
//     past max_instances, and batch when there is any latency target.
//  3. A strict latency target (at most StrictLatencyMS) picks dedicated
//     instances (provisioned capacity if no instances option is given).
//  4. Otherwise, with a hard fact, the cheapest self-hosted option wins.
//  5. Otherwise spiky traffic, built-in guardrails or many-model
//     experimentation pick the cheapest per-token option.
//  6. Otherwise volume decides: the cheapest option at this volume, with
//     the break-even against the other family as the reason.
//
// Whatever the path, the recommendation says at which volumes, below and
// above today's, another option of those it chose among becomes cheaper.

// spiky reports whether the traffic is spiky: the fact, or a peak hour at
// SpikyPeakToAverage × the mean or more.
func (m *model) spiky() bool {
	return m.traffic.SpikyTraffic || m.peakToAverage().Cmp(SpikyPeakToAverage) >= 0
}

func ofKind(opts []*option, kinds ...string) []*option {
	var out []*option
	for _, o := range opts {
		if slices.Contains(kinds, o.Kind) {
			out = append(out, o)
		}
	}
	return out
}

func dollars(d Dec) string { return "$" + thousands(d.Round(2)) }

func perDay(d Dec) string { return thousands(d.Round(0)) + " requests/day" }

// decide runs the decision path at volume x.
func (m *model) decide(x Dec) Recommendation {
	t := m.traffic
	var reasons []string
	kindsLeft := slices.Clone(kinds)
	restrict := func(keep ...string) {
		kindsLeft = slices.DeleteFunc(kindsLeft, func(k string) bool { return !slices.Contains(keep, k) })
	}
	forced := false
	if t.CustomModel {
		reasons = append(reasons, "custom model: per-token APIs serve only their own models, so it must be self-hosted (instances or serverless)")
		restrict(Instances, Serverless)
		forced = true
	}
	if t.NetworkIsolation {
		reasons = append(reasons, "network isolation required: instances of your own keep requests and weights inside your network")
		restrict(Instances)
		forced = true
	}
	if t.EdgeDeployment {
		reasons = append(reasons, "edge deployment: the model must run on your own hardware near its users")
		restrict(Instances)
		forced = true
	}
	var allowed, feasible []*option
	for _, o := range m.options {
		if over := m.overCapacity(o, x); over != "" {
			reasons = append(reasons, fmt.Sprintf("%s is left out: %s", o.Name, over))
			continue
		}
		if o.Kind == Batch && t.LatencyTargetMS > 0 {
			reasons = append(reasons, fmt.Sprintf("%s is left out: batch results take up to 24 hours, which no latency target allows", o.Name))
			continue
		}
		feasible = append(feasible, o)
		if slices.Contains(kindsLeft, o.Kind) {
			allowed = append(allowed, o)
		}
	}

	strict := t.LatencyTargetMS > 0 && t.LatencyTargetMS <= StrictLatencyMS
	volumeDecides := false
	var pool []*option
	switch {
	case strict:
		reasons = append(reasons, fmt.Sprintf("strict latency target (%d ms, at most %d): dedicated instances hold it; a shared per-token API does not promise it and serverless cold starts break it",
			t.LatencyTargetMS, StrictLatencyMS))
		if pool = ofKind(allowed, Instances); len(pool) == 0 {
			if pool = ofKind(allowed, Provisioned); len(pool) > 0 {
				reasons = append(reasons, "no instances option was given; provisioned capacity also reserves throughput")
			} else {
				reasons = append(reasons, "no dedicated option was given; add an instances option to price one")
			}
		}
	case forced:
		pool = allowed
	case t.GuardrailsNeeded || t.ManyModels || m.spiky():
		if m.spiky() {
			reasons = append(reasons, fmt.Sprintf("spiky traffic (peak hour %s× the mean): a fleet sized for the peak idles in the troughs, per-token billing follows the load",
				m.peakToAverage().Round(2)))
		}
		if t.GuardrailsNeeded {
			reasons = append(reasons, "built-in guardrails needed: managed per-token APIs provide them")
		}
		if t.ManyModels {
			reasons = append(reasons, "many models to compare: per-token APIs try each model without hosting it")
		}
		if pool = ofKind(allowed, OnDemand, Batch, Observed); len(pool) == 0 {
			reasons = append(reasons, "no per-token option was given, so the cheapest of the others")
			pool = allowed
		}
	default:
		pool = allowed
		volumeDecides = true
	}
	if len(pool) == 0 {
		reasons = append(reasons, fmt.Sprintf("none of the options given fits (kinds allowed: %s): add one of those kinds to price it", strings.Join(kindsLeft, ", ")))
		return Recommendation{Reasons: reasons}
	}
	r := cheapest(pool, x)
	rec := Recommendation{Option: r.Name, Kind: r.Kind, MonthlyUSD: r.fn.at(x).Number(2)}
	if volumeDecides {
		reasons = append(reasons, m.volumeReason(r, allowed, x))
	} else {
		if len(pool) > 1 {
			reasons = append(reasons, fmt.Sprintf("%s is the cheapest of %s at %s (%s a month)", r.Name, strings.Join(sortedNames(pool), ", "), perDay(x), dollars(r.fn.at(x))))
		}
		if best := cheapest(feasible, x); best != r {
			reasons = append(reasons, fmt.Sprintf("on cost alone %s would win: %s a month against %s", best.Name, dollars(best.fn.at(x)), dollars(r.fn.at(x))))
		}
	}
	rec.FlipsBelow, rec.FlipsAbove = m.flips(r, pool, x)
	if f := rec.FlipsAbove; f != nil {
		reasons = append(reasons, fmt.Sprintf("the answer flips to %s above %s", f.To, perDay(IntDec(f.RequestsPerDay))))
	}
	if f := rec.FlipsBelow; f != nil {
		reasons = append(reasons, fmt.Sprintf("the answer flips to %s below %s", f.To, perDay(IntDec(f.RequestsPerDay))))
	}
	if rec.FlipsAbove == nil && rec.FlipsBelow == nil && len(pool) > 1 {
		reasons = append(reasons, "no other option it was chosen among becomes cheaper at any volume searched")
	}
	rec.Reasons = reasons
	return rec
}

// volumeReason explains a choice made on cost: the break-even against the
// cheapest option of the other family (per-token against dedicated).
func (m *model) volumeReason(r *option, allowed []*option, x Dec) string {
	dedicated := ofKind(allowed, Instances, Provisioned)
	perToken := ofKind(allowed, OnDemand, Batch, Observed)
	var other []*option
	past := false
	switch {
	case slices.Contains(dedicated, r):
		other, past = perToken, true
	case slices.Contains(perToken, r):
		other = dedicated
	}
	if len(other) == 0 {
		return fmt.Sprintf("%s is the cheapest option at %s (%s a month)", r.Name, perDay(x), dollars(r.fn.at(x)))
	}
	o := cheapest(other, x)
	xs, above, _ := m.crossings(r.index, o.index)
	var be *Dec
	for k, c := range xs {
		if past && above[k] == r && c.Cmp(x) <= 0 {
			be = &xs[k] // the last crossing below x after which r is cheaper
		}
		if !past && above[k] == o && c.Cmp(x) > 0 && be == nil {
			be = &xs[k]
		}
	}
	cost := fmt.Sprintf("%s costs %s a month against %s for %s", r.Name, dollars(r.fn.at(x)), dollars(o.fn.at(x)), o.Name)
	switch {
	case past && be != nil:
		return fmt.Sprintf("steady volume of %s is past the break-even with %s at %s: %s", perDay(x), o.Name, perDay(IntDec(be.Ceil())), cost)
	case past:
		return fmt.Sprintf("steady volume of %s: %s is cheaper at every volume: %s", perDay(x), r.Name, cost)
	case be != nil:
		return fmt.Sprintf("volume of %s is below the break-even with %s at %s: %s", perDay(x), o.Name, perDay(IntDec(be.Ceil())), cost)
	default:
		return fmt.Sprintf("at %s per-token is cheaper, and %s never catches up: %s", perDay(x), o.Name, cost)
	}
}

// flips returns the nearest volumes below and above x at which another
// option of pool becomes cheaper than r.
func (m *model) flips(r *option, pool []*option, x Dec) (below, above *Flip) {
	var lo, hi Dec
	for _, o := range pool {
		if o == r {
			continue
		}
		xs, cheaper, _ := m.crossings(r.index, o.index)
		for k, c := range xs {
			if c.Cmp(x) > 0 && cheaper[k] == o && (above == nil || c.Cmp(hi) < 0) {
				hi, above = c, &Flip{RequestsPerDay: c.Ceil(), To: o.Name}
			}
			if c.Cmp(x) < 0 && cheaper[k] == r && (below == nil || c.Cmp(lo) > 0) {
				lo, below = c, &Flip{RequestsPerDay: c.Ceil(), To: o.Name}
			}
		}
	}
	return below, above
}
