// Package autoscale sizes self-hosted endpoints from their traffic, in
// the terms of SageMaker's Application Auto Scaling: each variant may have
// a scaling policy (a scalable target, min and max capacity, a
// target-tracking rule on one metric, step scaling policies and scheduled
// actions), stored with its endpoint; a Scaler on the replica that holds
// the hosting lease samples the variants' load, decides, and asks for a
// new instance count through the endpoint's spec, as the REST API does,
// recording each change as a scaling activity. The reconciler does the rest: new instances take
// traffic once ready, surplus ones drain before they stop. The Scaler also
// takes idle serverless variants to zero.
//
// It is not the invocation path: holding calls while a variant is cold
// is hosting's (hosting/hold.go).
package autoscale

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Metrics a target-tracking policy can follow, per instance.
const (
	// InvocationsPerInstance is invocations per minute per instance
	// (SageMakerVariantInvocationsPerInstance).
	InvocationsPerInstance = "InvocationsPerInstance"
	// ConcurrentRequestsPerInstance is calls in flight per instance,
	// held ones included (the high-resolution concurrency metric).
	ConcurrentRequestsPerInstance = "ConcurrentRequestsPerInstance"
	// TokensPerSecondPerInstance is output tokens per second per
	// instance, for OpenAI-compatible servers.
	TokensPerSecondPerInstance = "TokensPerSecondPerInstance"
	// BacklogPerInstance is queued work per instance, from a Source
	// registered for it (asynchronous endpoints).
	BacklogPerInstance = "BacklogPerInstance"
)

// metrics lists the metric names a policy may name.
var metrics = []string{InvocationsPerInstance, ConcurrentRequestsPerInstance, TokensPerSecondPerInstance, BacklogPerInstance}

// DefaultCooldown is SageMaker's default scale-out and scale-in cooldown.
const DefaultCooldown = 300

// Policy is a variant's scalable target and its target-tracking rule.
type Policy struct {
	Endpoint string `json:"endpoint"`
	Variant  string `json:"variant"`
	// MinCapacity and MaxCapacity bound the instance count; min may be 0
	// (calls that find no instance are held while one starts).
	MinCapacity int `json:"min_capacity"`
	MaxCapacity int `json:"max_capacity"`
	// TargetTracking keeps a metric per instance near a target.
	TargetTracking *TargetTracking `json:"target_tracking,omitempty"`
	// StepScaling policies change the count by steps while their alarm
	// holds (step.go).
	StepScaling []StepScaling `json:"step_scaling,omitempty"`
	// ScheduledActions change MinCapacity and MaxCapacity at set times
	// (schedule.go).
	ScheduledActions []ScheduledAction `json:"scheduled_actions,omitempty"`
	// UpdatedAt is when the policy was last written, by the API or by a
	// scheduled action; actions due after it have yet to run.
	UpdatedAt time.Time `json:"updated_at"`
}

// TargetTracking is SageMaker's TargetTrackingScalingPolicyConfiguration.
type TargetTracking struct {
	// Metric is one of the metric constants.
	Metric string `json:"metric"`
	// TargetValue is the metric's value per instance to keep.
	TargetValue float64 `json:"target_value"`
	// ScaleOutCooldown and ScaleInCooldown are seconds after a scaling
	// activity before the next scale-out, or scale-in (default 300).
	ScaleOutCooldown *float64 `json:"scale_out_cooldown,omitempty"`
	ScaleInCooldown  *float64 `json:"scale_in_cooldown,omitempty"`
	// DisableScaleIn lets the policy add instances only.
	DisableScaleIn bool `json:"disable_scale_in,omitempty"`
}

// Validate reports every problem with a policy, each with its field.
func (p *Policy) Validate() error {
	var errs []string
	if p.MinCapacity < 0 || p.MinCapacity > 64 {
		errs = append(errs, fmt.Sprintf("min_capacity: %d must be between 0 and 64", p.MinCapacity))
	}
	if p.MaxCapacity < 1 || p.MaxCapacity > 64 {
		errs = append(errs, fmt.Sprintf("max_capacity: %d must be between 1 and 64", p.MaxCapacity))
	}
	if p.MaxCapacity < p.MinCapacity {
		errs = append(errs, fmt.Sprintf("max_capacity: %d must not be below min_capacity (%d)", p.MaxCapacity, p.MinCapacity))
	}
	if t := p.TargetTracking; t != nil {
		if !slices.Contains(metrics, t.Metric) {
			errs = append(errs, fmt.Sprintf("target_tracking.metric: %q must be one of %s", t.Metric, strings.Join(metrics, ", ")))
		}
		if !(t.TargetValue > 0) || math.IsInf(t.TargetValue, 0) {
			errs = append(errs, fmt.Sprintf("target_tracking.target_value: %g must be above 0", t.TargetValue))
		}
		for name, c := range map[string]*float64{"scale_out_cooldown": t.ScaleOutCooldown, "scale_in_cooldown": t.ScaleInCooldown} {
			if c != nil && (*c < 0 || *c > 86400) {
				errs = append(errs, fmt.Sprintf("target_tracking.%s: %g must be from 0 to 86400 seconds", name, *c))
			}
		}
	}
	names := map[string]string{}
	for i := range p.StepScaling {
		at := fmt.Sprintf("step_scaling[%d]", i)
		errs = append(errs, p.StepScaling[i].validate(at)...)
		errs = append(errs, unique(names, "step_scaling", p.StepScaling[i].Name, at)...)
	}
	names = map[string]string{}
	for i := range p.ScheduledActions {
		at := fmt.Sprintf("scheduled_actions[%d]", i)
		errs = append(errs, p.ScheduledActions[i].validate(at)...)
		errs = append(errs, unique(names, "scheduled_actions", p.ScheduledActions[i].Name, at)...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// cooldown is a cooldown's duration, SageMaker's default when unset.
func cooldown(c *float64) time.Duration {
	if c == nil {
		return DefaultCooldown * time.Second
	}
	return time.Duration(*c * float64(time.Second))
}

// unique notes name in seen and reports it when an earlier entry of list
// had it.
func unique(seen map[string]string, list, name, at string) []string {
	if first, dup := seen[name]; dup && name != "" {
		return []string{fmt.Sprintf("%s.name: %q is also the name of %s; names in %s must differ", at, name, first, list)}
	}
	seen[name] = at
	return nil
}
