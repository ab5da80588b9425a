package autoscale

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Adjustment types of a step scaling policy (AdjustmentType).
const (
	// ChangeInCapacity adds the step's adjustment to the instance count.
	ChangeInCapacity = "ChangeInCapacity"
	// PercentChangeInCapacity adds that percentage of the count.
	PercentChangeInCapacity = "PercentChangeInCapacity"
	// ExactCapacity sets the count to the adjustment.
	ExactCapacity = "ExactCapacity"
)

// Comparison operators of a step policy's alarm, as CloudWatch names them.
const (
	GreaterThanOrEqualToThreshold = "GreaterThanOrEqualToThreshold"
	GreaterThanThreshold          = "GreaterThanThreshold"
	LessThanThreshold             = "LessThanThreshold"
	LessThanOrEqualToThreshold    = "LessThanOrEqualToThreshold"
)

// Statistics an alarm takes of its metric over the window
// (MetricAggregationType).
const (
	Average = "Average"
	Minimum = "Minimum"
	Maximum = "Maximum"
)

// StepScaling is SageMaker's StepScalingPolicyConfiguration together
// with the alarm that sets it off. In AWS the alarm is CloudWatch's; here
// it is part of the policy: while the metric's statistic over the window,
// per instance, compares to Threshold as Comparison says, the step whose
// interval holds (metric - threshold) adjusts the count.
type StepScaling struct {
	// Name tells a variant's step policies apart in events.
	Name string `json:"name"`
	// Metric is one of the metric constants, per instance (at zero
	// instances, the variant's total).
	Metric string `json:"metric"`
	// Statistic is Average (default), Minimum or Maximum of the samples
	// in the window.
	Statistic string `json:"statistic,omitempty"`
	// Comparison and Threshold are the alarm's condition.
	Comparison string  `json:"comparison"`
	Threshold  float64 `json:"threshold"`
	// AdjustmentType is ChangeInCapacity, PercentChangeInCapacity or
	// ExactCapacity.
	AdjustmentType string `json:"adjustment_type"`
	// StepAdjustments map the breach (metric - threshold) to an
	// adjustment; their intervals may not overlap.
	StepAdjustments []StepAdjustment `json:"step_adjustments"`
	// MinAdjustmentMagnitude is the fewest instances a
	// PercentChangeInCapacity step changes.
	MinAdjustmentMagnitude int `json:"min_adjustment_magnitude,omitempty"`
	// Cooldown is the seconds after a scaling activity before this policy
	// acts again (default 300): after a scale-out before it scales out,
	// after any activity before it scales in.
	Cooldown *float64 `json:"cooldown,omitempty"`
}

// StepAdjustment is one step: for a breach from LowerBound (nil: no lower
// bound) to UpperBound (nil: none), change the count by
// ScalingAdjustment. Above the threshold the lower bound is inclusive and
// the upper one exclusive; below it, the other way round, as in AWS.
type StepAdjustment struct {
	LowerBound        *float64 `json:"metric_interval_lower_bound,omitempty"`
	UpperBound        *float64 `json:"metric_interval_upper_bound,omitempty"`
	ScalingAdjustment int      `json:"scaling_adjustment"`
}

// validate reports the policy's problems, each prefixed with at.
func (s *StepScaling) validate(at string) []string {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, at+"."+fmt.Sprintf(format, args...)) }
	if !actionName.MatchString(s.Name) {
		add("name: %q must be 1 to 256 letters, digits, '.', '_' or '-'", s.Name)
	}
	if !slices.Contains(metrics, s.Metric) {
		add("metric: %q must be one of %s", s.Metric, strings.Join(metrics, ", "))
	}
	if s.Statistic != "" && !slices.Contains([]string{Average, Minimum, Maximum}, s.Statistic) {
		add("statistic: %q must be Average, Minimum or Maximum", s.Statistic)
	}
	comparisons := []string{GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold}
	if !slices.Contains(comparisons, s.Comparison) {
		add("comparison: %q must be one of %s", s.Comparison, strings.Join(comparisons, ", "))
	}
	if math.IsNaN(s.Threshold) || math.IsInf(s.Threshold, 0) || s.Threshold < 0 {
		add("threshold: %g must be a number from 0 up", s.Threshold)
	}
	if !slices.Contains([]string{ChangeInCapacity, PercentChangeInCapacity, ExactCapacity}, s.AdjustmentType) {
		add("adjustment_type: %q must be ChangeInCapacity, PercentChangeInCapacity or ExactCapacity", s.AdjustmentType)
	}
	if s.MinAdjustmentMagnitude != 0 && (s.AdjustmentType != PercentChangeInCapacity || s.MinAdjustmentMagnitude < 0) {
		add("min_adjustment_magnitude: %d is only for PercentChangeInCapacity, and must be above 0", s.MinAdjustmentMagnitude)
	}
	if s.Cooldown != nil && (*s.Cooldown < 0 || *s.Cooldown > 86400) {
		add("cooldown: %g must be from 0 to 86400 seconds", *s.Cooldown)
	}
	if len(s.StepAdjustments) == 0 {
		add("step_adjustments: give at least one")
	}
	for i, st := range s.StepAdjustments {
		if s.AdjustmentType == ExactCapacity && (st.ScalingAdjustment < 0 || st.ScalingAdjustment > 64) {
			add("step_adjustments[%d].scaling_adjustment: %d must be an instance count from 0 to 64 for ExactCapacity", i, st.ScalingAdjustment)
		}
		if st.LowerBound == nil && st.UpperBound == nil && len(s.StepAdjustments) > 1 {
			add("step_adjustments[%d]: only a lone step may leave out both bounds", i)
		}
		if st.LowerBound != nil && st.UpperBound != nil && *st.UpperBound <= *st.LowerBound {
			add("step_adjustments[%d]: metric_interval_upper_bound %g must be above the lower bound %g", i, *st.UpperBound, *st.LowerBound)
		}
		for j := range i {
			if overlap(s.StepAdjustments[j], st) {
				add("step_adjustments[%d]: its interval overlaps that of step_adjustments[%d]", i, j)
			}
		}
	}
	return errs
}

// overlap reports whether two steps' intervals share more than a bound.
func overlap(a, b StepAdjustment) bool {
	lo := func(s StepAdjustment) float64 {
		if s.LowerBound == nil {
			return math.Inf(-1)
		}
		return *s.LowerBound
	}
	hi := func(s StepAdjustment) float64 {
		if s.UpperBound == nil {
			return math.Inf(1)
		}
		return *s.UpperBound
	}
	return lo(a) < hi(b) && lo(b) < hi(a)
}

// breached reports whether the alarm holds for a metric value.
func (s *StepScaling) breached(v float64) bool {
	switch s.Comparison {
	case GreaterThanOrEqualToThreshold:
		return v >= s.Threshold
	case GreaterThanThreshold:
		return v > s.Threshold
	case LessThanThreshold:
		return v < s.Threshold
	case LessThanOrEqualToThreshold:
		return v <= s.Threshold
	}
	return false
}

// step returns the adjustment for a breach of the alarm by delta
// (metric - threshold), and false when no step covers it.
func (s *StepScaling) step(delta float64) (int, bool) {
	above := delta >= 0 && (s.Comparison == GreaterThanOrEqualToThreshold || s.Comparison == GreaterThanThreshold)
	for _, st := range s.StepAdjustments {
		lo, hi := math.Inf(-1), math.Inf(1)
		if st.LowerBound != nil {
			lo = *st.LowerBound
		}
		if st.UpperBound != nil {
			hi = *st.UpperBound
		}
		if above && lo <= delta && delta < hi || !above && lo < delta && delta <= hi {
			return st.ScalingAdjustment, true
		}
	}
	return 0, false
}

// apply returns the count an adjustment asks for from current, before
// the policy's min and max.
func (s *StepScaling) apply(current, adj int) int {
	switch s.AdjustmentType {
	case ExactCapacity:
		return adj
	case PercentChangeInCapacity:
		change := float64(current) * float64(adj) / 100
		// AWS rounds a fraction away from zero below one instance and
		// toward zero above it.
		var n int
		switch {
		case change > 0 && change < 1:
			n = 1
		case change < 0 && change > -1:
			n = -1
		default:
			n = int(change) // truncates toward zero
		}
		if m := s.MinAdjustmentMagnitude; m > 0 && n != 0 && abs(n) < m {
			n = m * sign(n)
		}
		return current + n
	}
	return current + adj
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func sign(n int) int {
	if n < 0 {
		return -1
	}
	return 1
}
