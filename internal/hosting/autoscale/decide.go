package autoscale

import (
	"fmt"
	"math"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
)

// How a variant's policies are combined, as Application Auto Scaling
// does: each policy (target tracking, each step policy) proposes a count
// when it would act and is not cooling down. When any proposes more
// instances than the variant has, the largest such count wins; otherwise,
// when any proposes fewer, the largest of those wins. A count outside
// [min_capacity, max_capacity] is brought into range first.

// proposal is one policy's wish.
type proposal struct {
	to  int
	why string
}

// decide says what a variant's count should become, if anything.
func (s *Scaler) decide(t *track, l hosting.VariantLoad, p *Policy, now time.Time) (action, bool) {
	a := action{endpoint: l.Endpoint, variant: l.Variant, from: l.Desired, t: t, now: now}
	if l.Serverless != nil {
		return s.decideServerless(t, l, a, now)
	}
	if p == nil || !l.Settled {
		return a, false
	}
	switch {
	case l.Desired < p.MinCapacity:
		a.to, a.message = p.MinCapacity, fmt.Sprintf("below min_capacity %d", p.MinCapacity)
		return a, true
	case l.Desired > p.MaxCapacity:
		a.to, a.message = p.MaxCapacity, fmt.Sprintf("above max_capacity %d", p.MaxCapacity)
		return a, true
	}
	instances := l.Ready
	if instances == 0 {
		instances = l.Desired
	}
	perInstance := func(total float64) float64 {
		if instances > 0 {
			return total / float64(instances)
		}
		return total
	}
	clamp := func(n int) int { return max(p.MinCapacity, min(p.MaxCapacity, n)) }
	var out, in []proposal
	propose := func(to int, why string, outCooldown, inCooldown time.Duration, noScaleIn bool) {
		switch {
		case to > l.Desired && !t.coolingOut(outCooldown, now):
			out = append(out, proposal{to, why + ": scale-out"})
		case to < l.Desired && !noScaleIn && !t.coolingIn(inCooldown, now):
			in = append(in, proposal{to, why + ": scale-in"})
		}
	}
	if tt := p.TargetTracking; tt != nil {
		if total, ok := t.total(tt.Metric); ok {
			per := perInstance(total)
			t.metricName, t.metric, t.perInst, t.target = tt.Metric, total, per, tt.TargetValue
			want := clamp(int(math.Ceil(total/tt.TargetValue - 1e-9)))
			why := fmt.Sprintf("%s %.2f per instance (%.2f over %d instance(s), %s window), target %g",
				tt.Metric, per, total, instances, s.opts.Window, tt.TargetValue)
			propose(want, why, cooldown(tt.ScaleOutCooldown), cooldown(tt.ScaleInCooldown), tt.DisableScaleIn)
		}
	}
	for i := range p.StepScaling {
		sp := &p.StepScaling[i]
		stat := sp.Statistic
		if stat == "" {
			stat = Average
		}
		total, ok := t.statistic(sp.Metric, stat)
		if !ok {
			continue
		}
		per := perInstance(total)
		if !sp.breached(per) {
			continue
		}
		adj, ok := sp.step(per - sp.Threshold)
		if !ok {
			continue
		}
		why := fmt.Sprintf("step policy %s: %s %s %.2f per instance (%s window), alarm %s %g, step %s %+d",
			sp.Name, sp.Metric, stat, per, s.opts.Window, sp.Comparison, sp.Threshold, sp.AdjustmentType, adj)
		c := cooldown(sp.Cooldown)
		propose(clamp(sp.apply(l.Desired, adj)), why, c, c, false)
	}
	pick := func(ps []proposal) (action, bool) {
		best := ps[0]
		for _, q := range ps[1:] {
			if q.to > best.to {
				best = q
			}
		}
		a.to, a.message = best.to, best.why
		return a, true
	}
	if len(out) > 0 {
		return pick(out)
	}
	if len(in) > 0 {
		return pick(in)
	}
	return a, false
}

// coolingOut reports whether a scale-out happened within d.
func (t *track) coolingOut(d time.Duration, now time.Time) bool {
	return !t.lastOut.IsZero() && now.Sub(t.lastOut) < d
}

// coolingIn reports whether any scaling activity happened within d.
func (t *track) coolingIn(d time.Duration, now time.Time) bool {
	last := t.lastIn
	if t.lastOut.After(last) {
		last = t.lastOut
	}
	return !last.IsZero() && now.Sub(last) < d
}

// decideServerless takes a serverless variant idle for ServerlessIdle to
// zero instances, or one with provisioned concurrency. Calls that find it
// at zero are held while hosting starts one.
func (s *Scaler) decideServerless(t *track, l hosting.VariantLoad, a action, now time.Time) (action, bool) {
	n := len(t.samples)
	if l.InFlight+l.Held > 0 || (n >= 2 && t.samples[n-1].invocations != t.samples[n-2].invocations) {
		t.lastBusy = now
	}
	floor := 0
	if l.Serverless.ProvisionedConcurrency > 0 {
		floor = 1
	}
	if !l.Settled || l.Desired <= floor || now.Sub(t.lastBusy) < s.opts.ServerlessIdle {
		return a, false
	}
	a.to, a.message = floor, fmt.Sprintf("serverless: no call for %s (idle period %s): scale-in", now.Sub(t.lastBusy).Round(time.Second), s.opts.ServerlessIdle)
	return a, true
}
