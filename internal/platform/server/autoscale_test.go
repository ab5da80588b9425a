package server_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/autoscale"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
)

// A step load scales a variant out under its target-tracking policy and,
// once the load stops, back in, with no request failed; the events tell
// the story. The policy and the count it reached survive a restart.
func TestStepLoadScalesOutAndBackInAndPoliciesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	j := startHosted(t, dir, "", scalingHosting)
	j.model("m", demoArtifact(t), "byoc", map[string]string{modelserver.EnvDelay: "50ms"})
	j.endpointConfig("c", hosting.Variant{Name: "v", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 1})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c"}, http.StatusCreated, nil)
	j.waitEndpoint("ep", 30*time.Second, inService)

	scaled := scaleOutUnderStepLoad(t, j, "ep")

	// Restart: the policy and the count come back.
	desired := scaled.Variants[0].DesiredInstanceCount
	j.stop()
	j2 := startHosted(t, dir, "", scalingHosting)
	var got autoscale.Policy
	j2.admin("GET", "/api/v1/endpoints/ep/variants/v/scaling", nil, http.StatusOK, &got)
	if got.MaxCapacity != 3 || got.TargetTracking == nil || got.TargetTracking.TargetValue != 2 || *got.TargetTracking.ScaleInCooldown != 3 {
		t.Fatalf("policy after restart: %+v", got)
	}
	back := j2.waitEndpoint("ep", 30*time.Second, inService)
	if got := back.Variants[0].DesiredInstanceCount; got != desired {
		// With no load the scaler may already have scaled in (an idle
		// variant's first scale-in can go straight to min_capacity), but
		// only from the count that survived the restart.
		if !strings.Contains(j2.events("ep"), fmt.Sprintf("scale-in: instances %d -> ", desired)) {
			t.Fatalf("desired after restart %d, before %d, and no scale-in from %d: %s", got, desired, desired, j2.events("ep"))
		}
	}

	scaleInWhenIdle(t, j2, "ep")
}

// Scaling policies are checked field by field, for a variant that
// exists; one can be read back, listed and removed.
func TestScalingPolicyAPI(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", scalingHosting)
	j.model("m", demoArtifact(t), "byoc", nil)
	j.endpointConfig("c", hosting.Variant{Name: "v", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 1})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c"}, http.StatusCreated, nil)

	path := "/api/v1/endpoints/ep/variants/v/scaling"
	st, _, b := j.do("PUT", path, adminKey, `{"min_capacity":5,"max_capacity":2,"target_tracking":{"metric":"CPU","target_value":0}}`)
	if st != 400 || !strings.Contains(string(b), "max_capacity: 2 must not be below min_capacity") ||
		!strings.Contains(string(b), `metric: \"CPU\" must be one of`) || !strings.Contains(string(b), "target_value: 0 must be above 0") {
		t.Fatalf("bad policy: %d %s", st, b)
	}
	if st, _, b := j.do("PUT", path, adminKey, `{"max_capacity":2,"cooldown":1}`); st != 400 || !strings.Contains(string(b), "cooldown") {
		t.Fatalf("unknown field: %d %s", st, b)
	}
	if st, _, b := j.do("PUT", "/api/v1/endpoints/ep/variants/nope/scaling", adminKey, `{"max_capacity":2}`); st != 404 || !strings.Contains(string(b), "its variants are v") {
		t.Fatalf("unknown variant: %d %s", st, b)
	}
	if st, _, b := j.do("GET", "/api/v1/endpoints/nope/variants/v/scaling", adminKey, ""); st != 404 {
		t.Fatalf("unknown endpoint: %d %s", st, b)
	}
	if st, _, b := j.do("GET", path, adminKey, ""); st != 404 || !strings.Contains(string(b), "no scaling policy") {
		t.Fatalf("no policy yet: %d %s", st, b)
	}
	j.admin("PUT", path, map[string]any{"min_capacity": 0, "max_capacity": 4}, http.StatusOK, nil)
	var list struct{ Policies []autoscale.Policy }
	j.admin("GET", "/api/v1/endpoints/ep/scaling", nil, http.StatusOK, &list)
	if len(list.Policies) != 1 || list.Policies[0].Variant != "v" || list.Policies[0].MaxCapacity != 4 || list.Policies[0].MinCapacity != 0 {
		t.Fatalf("list: %+v", list)
	}
	j.admin("DELETE", path, nil, http.StatusNoContent, nil)
	if st, _, _ := j.do("DELETE", path, adminKey, ""); st != 404 {
		t.Fatalf("second delete: %d", st)
	}
}

// Scale-in protection: the autoscaler scales in while each instance holds
// a long request; the instance leaving drains first, so neither request is
// cut.
func TestScaleInDoesNotCutLongRequests(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", scalingHosting)
	// A server that stops at once on SIGTERM, cutting what it holds: only
	// Junction's drain keeps the requests whole.
	j.admin("POST", "/api/v1/models", hosting.Model{Name: "m", Artifact: "file://" + demoArtifact(t),
		Server: hosting.Server{Type: "byoc", Command: "junction", Args: []string{"model-server", "--shutdown-timeout", "1ms"},
			Env: map[string]string{modelserver.EnvFaults: "1"}, StartupTimeoutSeconds: 30}}, http.StatusCreated, nil)
	j.endpointConfig("c", hosting.Variant{Name: "v", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 2})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c"}, http.StatusCreated, nil)
	j.waitEndpoint("ep", 30*time.Second, inService)

	// Least outstanding puts one long request on each instance.
	done := make(chan string, 2)
	for range 2 {
		go func() {
			st, _, b := j.invoke("ep", `{"inputs":"a slow one"}`, "X-Amzn-SageMaker-Custom-Attributes", "delay_ms=3000")
			done <- fmt.Sprintf("%d %s", st, b)
		}()
	}
	inFlight := func(ep *hosting.Endpoint) bool {
		n := int64(0)
		for _, in := range ep.Variants[0].Instances {
			if in.Outstanding != 1 {
				return false
			}
			n += in.Outstanding
		}
		return n == 2
	}
	j.waitEndpoint("ep", 10*time.Second, inFlight)
	// Two in flight against a target of 10 per instance: one instance is
	// enough, and scale-in may start at once.
	zero := 0.0
	j.admin("PUT", "/api/v1/endpoints/ep/variants/v/scaling", autoscale.Policy{MinCapacity: 1, MaxCapacity: 2,
		TargetTracking: &autoscale.TargetTracking{Metric: autoscale.ConcurrentRequestsPerInstance, TargetValue: 10, ScaleInCooldown: &zero}},
		http.StatusOK, nil)
	j.waitEvent("ep", "scale-in: instances 2 -> 1", 10*time.Second)
	for range 2 {
		if got := <-done; !strings.HasPrefix(got, "200 ") {
			t.Fatalf("a long request was cut by scale-in: %s", got)
		}
	}
	j.waitEndpoint("ep", 20*time.Second, func(ep *hosting.Endpoint) bool { return converged(ep) && len(ep.Variants[0].Instances) == 1 })
}

// scaleOutUnderStepLoad puts a target-tracking policy (two concurrent
// requests per instance, one to three instances) on variant v of an
// endpoint of one instance whose model answers in 50 ms, and a step load
// of six clients: the variant scales out to three with no request
// failed, and the events say why. It is run on both runtimes.
func scaleOutUnderStepLoad(t *testing.T, j *junction, endpoint string) *hosting.Endpoint {
	t.Helper()
	out, in := 1.0, 3.0
	policy := autoscale.Policy{MinCapacity: 1, MaxCapacity: 3, TargetTracking: &autoscale.TargetTracking{
		Metric: autoscale.ConcurrentRequestsPerInstance, TargetValue: 2, ScaleOutCooldown: &out, ScaleInCooldown: &in}}
	j.admin("PUT", "/api/v1/endpoints/"+endpoint+"/variants/v/scaling", policy, http.StatusOK, nil)

	// Six clients, each request 50 ms: about six in flight, three
	// instances' worth at two each.
	l := startLoad(j, endpoint, 6)
	scaled := j.waitEndpoint(endpoint, 60*time.Second, func(ep *hosting.Endpoint) bool {
		return converged(ep) && ep.Variants[0].DesiredInstanceCount == 3 && ep.Variants[0].CurrentInstanceCount == 3
	})
	l.waitOK(t, 20)
	ok, failed, errs := l.finish()
	if failed != 0 {
		t.Fatalf("%d of %d requests failed while scaling out: %v", failed, ok+failed, errs)
	}
	if ev := j.events(endpoint); !strings.Contains(ev, "ConcurrentRequestsPerInstance") || !strings.Contains(ev, "scale-out: instances 1 -> ") {
		t.Fatalf("no scale-out event: %s", ev)
	}
	return scaled
}

// scaleInWhenIdle: under a trickle well below the target, the variant
// scaled out by scaleOutUnderStepLoad scales back in to one instance,
// draining first, with no request failed.
func scaleInWhenIdle(t *testing.T, j *junction, endpoint string) {
	t.Helper()
	l := startLoad(j, endpoint, 1)
	j.waitEndpoint(endpoint, 60*time.Second, func(ep *hosting.Endpoint) bool {
		return converged(ep) && ep.Variants[0].DesiredInstanceCount == 1 && len(ep.Variants[0].Instances) == 1
	})
	l.waitOK(t, 5)
	if ok, failed, errs := l.finish(); failed != 0 {
		t.Fatalf("%d of %d requests failed while scaling in: %v", failed, ok+failed, errs)
	}
	// One step (3 -> 1) when the idle window is clean; on a loaded machine
	// the trickle can make it two steps, or a step out and back.
	if ev := j.events(endpoint); !regexp.MustCompile(`scale-in: instances [23] -> 1`).MatchString(ev) {
		t.Fatalf("no scale-in event: %s", ev)
	}
}
