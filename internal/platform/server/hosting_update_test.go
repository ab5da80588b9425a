package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
)

// events returns an endpoint's history as one string, a line an event.
func (j *junction) events(name string) string {
	j.t.Helper()
	var out struct{ Events []hosting.Event }
	j.admin("GET", "/api/v1/endpoints/"+name+"/events", nil, http.StatusOK, &out)
	var b strings.Builder
	for _, e := range out.Events {
		b.WriteString(e.Message + "\n")
	}
	return b.String()
}

// waitEvent polls an endpoint's history until a line contains want.
func (j *junction) waitEvent(name, want string, within time.Duration) {
	j.t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(j.events(name), want) {
		if time.Now().After(deadline) {
			j.t.Fatalf("endpoint %s: no event %q after %s; events:\n%s", name, want, within, j.events(name))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pids lists the process ids of an endpoint's instances on config.
func pids(ep *hosting.Endpoint, config string) map[int]bool {
	out := map[int]bool{}
	for _, v := range ep.Variants {
		if v.Config == config {
			for _, in := range v.Instances {
				out[in.PID] = true
			}
		}
	}
	return out
}

// onOldFleet starts an endpoint "ep" on config "v1" (model "m", one
// instance) and returns its description once InService.
func onOldFleet(t *testing.T, j *junction) *hosting.Endpoint {
	t.Helper()
	j.model("m", demoArtifact(t), "byoc", nil)
	j.endpointConfig("v1", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge"})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "v1"}, http.StatusCreated, nil)
	return j.waitEndpoint("ep", 30*time.Second, inService)
}

// rolledBack is an endpoint back in service on config v1 after a failed
// update.
func rolledBack(e *hosting.Endpoint) bool {
	return inService(e) && e.Config == "v1" && e.FailureReason != ""
}

// sameFleet fails unless the old fleet's processes served throughout.
func sameFleet(t *testing.T, before, after *hosting.Endpoint) {
	t.Helper()
	was, now := pids(before, "v1"), pids(after, "v1")
	if len(now) != len(was) {
		t.Fatalf("old fleet %v, now %v", was, now)
	}
	for pid := range now {
		if !was[pid] || !processAlive(pid) {
			t.Fatalf("the old fleet was replaced or stopped: before %v, after %v", was, now)
		}
	}
	for _, v := range after.Variants {
		if v.Config != "v1" {
			t.Fatalf("the new fleet still runs: %+v", after.Variants)
		}
	}
}

func TestUpdateWhoseNewFleetCannotStartRollsBack(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	before := onOldFleet(t, j)
	j.admin("POST", "/api/v1/models", hosting.Model{Name: "broken", Artifact: "file://" + demoArtifact(t),
		Server: hosting.Server{Type: "byoc", Command: "/nonexistent/model-server"}}, http.StatusCreated, nil)
	j.endpointConfig("v2", hosting.Variant{Name: "primary", Model: "broken", InstanceType: "ml.g6.xlarge"})
	j.admin("PUT", "/api/v1/endpoints/ep", map[string]any{"config": "v2"}, http.StatusAccepted, nil)

	after := j.waitEndpoint("ep", 30*time.Second, rolledBack)
	if !strings.Contains(after.FailureReason, "did not start") || !strings.Contains(after.FailureReason, "/nonexistent/model-server") {
		t.Fatalf("failure reason %q should say the new fleet did not start and why", after.FailureReason)
	}
	sameFleet(t, before, after)
	if status, _, b := j.invoke("ep", `{"inputs":"hello"}`); status != 200 {
		t.Fatalf("after rollback: %d %s", status, b)
	}
}

func TestTerminationWaitKeepsTheOldFleetToTakeTrafficBack(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	before := onOldFleet(t, j)
	j.model("bad", demoArtifact(t), "byoc", map[string]string{modelserver.EnvFailRate: "1"})
	j.endpointConfig("v2", hosting.Variant{Name: "primary", Model: "bad", InstanceType: "ml.g6.xlarge"})

	l := startLoad(j, "ep", 2)
	// Every call goes to the new fleet at once and the shift is done at
	// once (wait_seconds 0); only termination_wait_seconds keeps the old
	// fleet up while the alarms watch.
	j.admin("PUT", "/api/v1/endpoints/ep", map[string]any{"config": "v2", "deployment": map[string]any{
		"type": "all_at_once", "wait_seconds": 0, "termination_wait_seconds": 60,
		"alarms": map[string]any{"max_error_rate": 0.5, "min_invocations": 5}}}, http.StatusAccepted, nil)
	after := j.waitEndpoint("ep", 30*time.Second, rolledBack)
	l.finish()
	if !strings.Contains(after.FailureReason, "error rate") {
		t.Fatalf("failure reason %q", after.FailureReason)
	}
	sameFleet(t, before, after)
	if status, _, b := j.invoke("ep", `{"inputs":"hello"}`); status != 200 {
		t.Fatalf("after rollback: %d %s", status, b)
	}
}

func TestRestartDuringAnUpdateResumesIt(t *testing.T) {
	dir := t.TempDir()
	j := startHosted(t, dir, "", "")
	before := onOldFleet(t, j)
	j.endpointConfig("v2", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g5.xlarge"})
	j.admin("PUT", "/api/v1/endpoints/ep", map[string]any{"config": "v2", "deployment": map[string]any{
		"type": "canary", "canary_percent": 10, "wait_seconds": 600}}, http.StatusAccepted, nil)
	j.waitEvent("ep", "shifted 10%", 30*time.Second)
	j.stop()

	// The next Junction serves on the old config first, then converges
	// on the spec: the update starts again.
	j2 := startHosted(t, dir, "", "")
	after := j2.waitEndpoint("ep", 30*time.Second, func(e *hosting.Endpoint) bool {
		return e.Status == hosting.StatusUpdating && e.PendingConfig == "v2" && len(e.Variants) == 2
	})
	if after.Config != "v1" || after.Generation != before.Generation+1 || after.ObservedGeneration != before.Generation {
		t.Fatalf("after the restart: %+v", after)
	}
	j2.waitEvent("ep", "interrupted by a restart", 10*time.Second)
	j2.waitEvent("ep", "shifted 10%", 30*time.Second)
	if status, _, b := j2.invoke("ep", `{"inputs":"hello"}`); status != 200 {
		t.Fatalf("after the restart: %d %s", status, b)
	}
}

// canaryOn starts an update of ep to config v2, whose variant "candidate"
// runs model, with a long canary bake; it returns once the canary takes
// traffic.
func canaryOn(j *junction, model string, alarms map[string]any) {
	j.t.Helper()
	j.endpointConfig("v2", hosting.Variant{Name: "candidate", Model: model, InstanceType: "ml.g6.xlarge"})
	j.admin("PUT", "/api/v1/endpoints/ep", map[string]any{"config": "v2", "deployment": map[string]any{
		"type": "canary", "canary_percent": 50, "wait_seconds": 600, "alarms": alarms}}, http.StatusAccepted, nil)
	j.waitEvent("ep", "shifted 50%", 30*time.Second)
}

func TestContainer4xxDoesNotCountAgainstTheAlarms(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	onOldFleet(t, j)
	canaryOn(j, "m", map[string]any{"max_error_rate": 0.1, "min_invocations": 5})

	// Ten calls the container refuses as the caller's fault: 424 with the
	// container's 400, and the canary keeps baking.
	for i := range 10 {
		status, _, b := j.invoke("ep", `{"inputs":"x"}`, "X-Amzn-SageMaker-Target-Variant", "candidate",
			"X-Amzn-SageMaker-Custom-Attributes", "fault=error;status=400")
		if status != http.StatusFailedDependency || !strings.Contains(string(b), `"OriginalStatusCode":400`) {
			t.Fatalf("call %d: %d %s", i, status, b)
		}
	}
	// Two server errors: 2 of 12 is above the 10% alarm — had the 4xx
	// counted, the alarm would have tripped at the fifth call.
	for range 2 {
		if status, _, b := j.invoke("ep", `{"inputs":"x"}`, "X-Amzn-SageMaker-Target-Variant", "candidate",
			"X-Amzn-SageMaker-Custom-Attributes", "fault=error"); status != http.StatusFailedDependency {
			t.Fatalf("server error: %d %s", status, b)
		}
	}
	after := j.waitEndpoint("ep", 30*time.Second, rolledBack)
	if !strings.Contains(after.FailureReason, "(2 of 12)") {
		t.Fatalf("failure reason %q: want the alarm to count 2 errors of 12 calls", after.FailureReason)
	}
}

func TestP99AlarmRollsBackASlowCanary(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	onOldFleet(t, j)
	j.model("slow", demoArtifact(t), "byoc", map[string]string{modelserver.EnvDelay: "300ms"})
	canaryOn(j, "slow", map[string]any{"max_p99_ms": 150, "min_invocations": 5})

	for i := range 5 {
		if status, _, b := j.invoke("ep", `{"inputs":"x"}`, "X-Amzn-SageMaker-Target-Variant", "candidate"); status != 200 {
			t.Fatalf("call %d: %d %s", i, status, b)
		}
	}
	after := j.waitEndpoint("ep", 30*time.Second, rolledBack)
	if !strings.Contains(after.FailureReason, "p99 latency") || !strings.Contains(after.FailureReason, "above 150 ms") {
		t.Fatalf("failure reason %q", after.FailureReason)
	}
}
