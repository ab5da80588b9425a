package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/autoscale"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
)

// A scheduled action raises a variant's bounds at its time and the count
// follows; then a step policy's alarm (calls in flight per instance) adds
// an instance under load, with no request failed. The scaling activities
// tell the story, newest first, each Successful once its instances are
// ready; the policy as stored has the bounds the action set.
func TestScheduledActionAndStepScaling(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", scalingHosting)
	j.model("m", demoArtifact(t), "byoc", map[string]string{modelserver.EnvDelay: "50ms"})
	j.endpointConfig("c", hosting.Variant{Name: "v", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 1})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c"}, http.StatusCreated, nil)
	j.waitEndpoint("ep", 30*time.Second, inService)

	path := "/api/v1/endpoints/ep/variants/v/scaling"
	st, _, b := j.do("PUT", path, adminKey, `{"max_capacity":2,"scheduled_actions":[{"name":"peak","schedule":"cron(0 8 * * * *)","min_capacity":1}],
		"step_scaling":[{"name":"s","metric":"ConcurrentRequestsPerInstance","comparison":"GreaterThanThreshold","threshold":1,"adjustment_type":"ChangeInCapacity","step_adjustments":[]}]}`)
	if st != 400 || !strings.Contains(string(b), "scheduled_actions[0].schedule: cron(0 8 * * * *): exactly one of day-of-month and day-of-week must be ?") ||
		!strings.Contains(string(b), "step_scaling[0].step_adjustments: give at least one") {
		t.Fatalf("bad schedule and step policy: %d %s", st, b)
	}

	zero := 0.0
	at := time.Now().Add(2 * time.Second).UTC().Format("2006-01-02T15:04:05")
	j.admin("PUT", path, autoscale.Policy{MinCapacity: 1, MaxCapacity: 1,
		ScheduledActions: []autoscale.ScheduledAction{{Name: "peak", Schedule: "at(" + at + ")", MinCapacity: new(2), MaxCapacity: new(3)}},
		StepScaling: []autoscale.StepScaling{{Name: "burst", Metric: autoscale.ConcurrentRequestsPerInstance, Statistic: autoscale.Maximum,
			Comparison: autoscale.GreaterThanOrEqualToThreshold, Threshold: 3, AdjustmentType: autoscale.ChangeInCapacity, Cooldown: &zero,
			StepAdjustments: []autoscale.StepAdjustment{{LowerBound: &zero, ScalingAdjustment: 1}}}},
	}, http.StatusOK, nil)
	j.waitEvent("ep", "scheduled action peak (at("+at+")", 10*time.Second)
	j.waitEndpoint("ep", 30*time.Second, func(ep *hosting.Endpoint) bool {
		return converged(ep) && ep.Variants[0].DesiredInstanceCount == 2 && ep.Variants[0].CurrentInstanceCount == 2
	})
	var stored autoscale.Policy
	j.admin("GET", path, nil, http.StatusOK, &stored)
	if stored.MinCapacity != 2 || stored.MaxCapacity != 3 {
		t.Fatalf("the policy after the action: min %d max %d, want 2 and 3", stored.MinCapacity, stored.MaxCapacity)
	}

	// Eight clients on two instances: four in flight each, past the
	// alarm's three.
	l := startLoad(j, "ep", 8)
	j.waitEndpoint("ep", 30*time.Second, func(ep *hosting.Endpoint) bool {
		return converged(ep) && ep.Variants[0].DesiredInstanceCount == 3 && ep.Variants[0].CurrentInstanceCount == 3
	})
	l.waitOK(t, 10)
	if ok, failed, errs := l.finish(); failed != 0 {
		t.Fatalf("%d of %d requests failed while scaling out: %v", failed, ok+failed, errs)
	}

	var acts struct{ Activities []autoscale.Activity }
	waitFor(t, 10*time.Second, "the step activity to succeed", func() bool {
		j.admin("GET", "/api/v1/endpoints/ep/scaling/activities?variant=v", nil, http.StatusOK, &acts)
		return len(acts.Activities) >= 2 && acts.Activities[0].StatusCode == autoscale.Successful
	})
	step, sched := acts.Activities[0], acts.Activities[1]
	if step.From != 2 || step.To != 3 || !strings.Contains(step.Cause, "step policy burst: ConcurrentRequestsPerInstance Maximum") ||
		sched.From != 1 || sched.To != 2 || sched.StatusCode != autoscale.Successful || sched.Cause != "below min_capacity 2" {
		t.Fatalf("activities: %+v", acts.Activities)
	}
	if st, _, b := j.do("GET", "/api/v1/endpoints/ep/scaling/activities?limit=0", adminKey, ""); st != 400 || !strings.Contains(string(b), "limit") {
		t.Fatalf("bad limit: %d %s", st, b)
	}
}
