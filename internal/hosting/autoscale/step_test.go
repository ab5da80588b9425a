package autoscale

import (
	"context"
	"strings"
	"testing"
	"time"
)

func bound(v float64) *float64 { return &v }

// The step covering a breach, with AWS's inclusive and exclusive ends.
func TestStepIntervals(t *testing.T) {
	out := StepScaling{Comparison: GreaterThanOrEqualToThreshold, Threshold: 4, AdjustmentType: ChangeInCapacity, StepAdjustments: []StepAdjustment{
		{LowerBound: bound(0), UpperBound: bound(2), ScalingAdjustment: 1},
		{LowerBound: bound(2), ScalingAdjustment: 3},
	}}
	for _, c := range []struct {
		metric float64
		adj    int
		ok     bool
	}{{3.9, 0, false}, {4, 1, true}, {5.9, 1, true}, {6, 3, true}, {100, 3, true}} {
		if !out.breached(c.metric) {
			if c.ok {
				t.Errorf("%g: alarm not breached", c.metric)
			}
			continue
		}
		adj, ok := out.step(c.metric - out.Threshold)
		if ok != c.ok || adj != c.adj {
			t.Errorf("metric %g: step %d %v, want %d %v", c.metric, adj, ok, c.adj, c.ok)
		}
	}
	in := StepScaling{Comparison: LessThanOrEqualToThreshold, Threshold: 1, AdjustmentType: ChangeInCapacity, StepAdjustments: []StepAdjustment{
		{UpperBound: bound(-0.5), ScalingAdjustment: -2},
		{LowerBound: bound(-0.5), UpperBound: bound(0), ScalingAdjustment: -1},
	}}
	for metric, want := range map[float64]int{1: -1, 0.5: -2, 0.6: -1, 0: -2} {
		if adj, ok := in.step(metric - in.Threshold); !ok || adj != want {
			t.Errorf("scale-in at %g: %d %v, want %d", metric, adj, ok, want)
		}
	}
}

// PercentChangeInCapacity rounds as AWS does, with a minimum magnitude.
func TestStepPercent(t *testing.T) {
	s := StepScaling{AdjustmentType: PercentChangeInCapacity}
	for _, c := range []struct{ cur, adj, min, want int }{
		{4, 10, 0, 5},   // 0.4 rounds up to 1
		{10, 27, 0, 12}, // 2.7 truncates to 2
		{4, -10, 0, 3},  // -0.4 becomes -1
		{10, -27, 0, 8}, // -2.7 truncates to -2
		{10, 10, 3, 13}, // 1, raised to the minimum magnitude 3
		{10, -10, 3, 7}, // -1, to -3
		{0, 100, 2, 0},  // nothing to take a percentage of
		{3, 200, 0, 9},  // doubles twice over
	} {
		s.MinAdjustmentMagnitude = c.min
		if got := s.apply(c.cur, c.adj); got != c.want {
			t.Errorf("%d%% of %d (min %d): %d, want %d", c.adj, c.cur, c.min, got, c.want)
		}
	}
	e := StepScaling{AdjustmentType: ExactCapacity}
	if got := e.apply(5, 2); got != 2 {
		t.Errorf("ExactCapacity 2 from 5: %d", got)
	}
}

func TestStepValidation(t *testing.T) {
	p := Policy{MaxCapacity: 4, StepScaling: []StepScaling{
		{Name: "out", Metric: "CPU", Statistic: "p99", Comparison: "Above", Threshold: -1, AdjustmentType: "More",
			MinAdjustmentMagnitude: 2, StepAdjustments: []StepAdjustment{
				{LowerBound: bound(0), UpperBound: bound(5), ScalingAdjustment: 1},
				{LowerBound: bound(3), ScalingAdjustment: 2},
				{LowerBound: bound(9), UpperBound: bound(8)},
			}},
		{Name: "out", Metric: ConcurrentRequestsPerInstance, Comparison: GreaterThanThreshold, AdjustmentType: ChangeInCapacity},
		{Name: "exact", Metric: ConcurrentRequestsPerInstance, Comparison: GreaterThanThreshold, AdjustmentType: ExactCapacity,
			StepAdjustments: []StepAdjustment{{ScalingAdjustment: -1}}},
	}}
	err := p.Validate()
	for _, want := range []string{
		`step_scaling[0].metric: "CPU" must be one of`,
		`step_scaling[0].statistic: "p99"`,
		`step_scaling[0].comparison: "Above"`,
		"step_scaling[0].threshold: -1",
		`step_scaling[0].adjustment_type: "More"`,
		"step_scaling[0].min_adjustment_magnitude: 2 is only for PercentChangeInCapacity",
		"step_scaling[0].step_adjustments[1]: its interval overlaps that of step_adjustments[0]",
		"step_scaling[0].step_adjustments[2]: metric_interval_upper_bound 8 must be above the lower bound 9",
		`step_scaling[1].name: "out" is also the name of step_scaling[0]`,
		"step_scaling[1].step_adjustments: give at least one",
		"step_scaling[2].step_adjustments[0].scaling_adjustment: -1 must be an instance count",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nwant %q", err, want)
		}
	}
}

// Step policies scale out from zero on held calls and in on idleness,
// each waiting out its cooldown; the larger of two scale-outs wins.
func TestStepScalingDecisions(t *testing.T) {
	s, f := newScaler(t, &Policy{Endpoint: "ep", Variant: "v", MinCapacity: 0, MaxCapacity: 6,
		TargetTracking: &TargetTracking{Metric: ConcurrentRequestsPerInstance, TargetValue: 10, ScaleOutCooldown: secs(0), DisableScaleIn: true},
		StepScaling: []StepScaling{
			{Name: "out", Metric: ConcurrentRequestsPerInstance, Statistic: Maximum, Comparison: GreaterThanOrEqualToThreshold, Threshold: 1,
				AdjustmentType: ChangeInCapacity, Cooldown: secs(20), StepAdjustments: []StepAdjustment{
					{LowerBound: bound(0), UpperBound: bound(3), ScalingAdjustment: 1},
					{LowerBound: bound(3), ScalingAdjustment: 2}}},
			{Name: "in", Metric: ConcurrentRequestsPerInstance, Comparison: LessThanThreshold, Threshold: 0.5,
				AdjustmentType: PercentChangeInCapacity, Cooldown: secs(30), StepAdjustments: []StepAdjustment{{UpperBound: bound(0), ScalingAdjustment: -50}}},
		}})
	ctx, now := context.Background(), time.Unix(1000, 0)
	step := func(d time.Duration) { now = now.Add(d); s.Step(ctx, now) }
	f.load.Desired, f.load.Ready, f.load.Instances = 0, 0, 0

	// Two held calls at zero: the "out" step adds one (target tracking
	// wants ceil(2/10) = 1 too).
	f.load.Held = 2
	step(time.Second)
	if len(f.asked) != 1 || f.asked[0] != 1 || !strings.Contains(f.events[0], "step policy out") && !strings.Contains(f.events[0], "target 10") {
		t.Fatalf("from zero: asked %v, events %v", f.asked, f.events)
	}
	// A burst: a maximum of 5 per instance is 4 over the threshold: +2,
	// once the out cooldown has run.
	f.load.Held, f.load.Ready, f.load.Instances, f.load.InFlight = 0, 1, 1, 5
	step(10 * time.Second)
	if len(f.asked) != 1 {
		t.Fatalf("scaled out inside the step cooldown: %v", f.asked)
	}
	step(11 * time.Second)
	if len(f.asked) != 2 || f.asked[1] != 3 || !strings.Contains(f.events[1], "step policy out: ConcurrentRequestsPerInstance Maximum 5.00") {
		t.Fatalf("burst: asked %v, events %v", f.asked, f.events)
	}
	// Idle: the "in" step halves the count once its cooldown has run;
	// target tracking has scale-in disabled and does not stand in the way.
	f.load.InFlight, f.load.Ready, f.load.Instances = 0, 3, 3
	step(11 * time.Second)
	step(11 * time.Second)
	if len(f.asked) != 2 {
		t.Fatalf("scaled inside the cooldowns: %v", f.asked)
	}
	step(9 * time.Second)
	if len(f.asked) != 3 || f.asked[2] != 2 || !strings.Contains(f.events[2], "step policy in") || !strings.Contains(f.events[2], "scale-in: instances 3 -> 2") {
		t.Fatalf("idle: asked %v, events %v", f.asked, f.events)
	}
}
