package server_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/autoscale"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
	"github.com/junctionhq/junction/internal/testkit/s3test"
)

// An async endpoint whose policy allows zero instances goes to zero while
// its queue is empty, comes back from zero when requests queue (the
// backlog is the only load an endpoint with no instance can show), serves
// the whole backlog, and returns to zero once it is drained. Nothing
// queued while it was at zero fails.
func TestAsyncScalesFromZeroOnBacklogAndBackToZero(t *testing.T) {
	bucket := s3test.Bucket(t)
	j := startHosted(t, t.TempDir(), "", scalingHosting+s3YAML(t)+"async: {lease_ttl: 2s}\n")
	j.model("slow", demoArtifact(t), "byoc", map[string]string{modelserver.EnvDelay: "200ms"})
	ai := &hosting.AsyncInference{OutputPath: "s3://" + bucket + "/out", MaxConcurrentInvocationsPerInstance: 2}
	j.admin("POST", "/api/v1/endpoint-configs", hosting.EndpointConfig{Name: "slow-c", AsyncInference: ai,
		Variants: []hosting.Variant{{Name: "a", Model: "slow", InstanceType: "ml.g6.xlarge"}}}, http.StatusCreated, nil)
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "slow", "config": "slow-c"}, http.StatusCreated, nil)
	j.waitEndpoint("slow", 60*time.Second, inService)

	// Two requests per instance is the target: a backlog of six asks for
	// three instances, capped at two.
	zero := 0.0
	j.admin("PUT", "/api/v1/endpoints/slow/variants/a/scaling", autoscale.Policy{MinCapacity: 0, MaxCapacity: 2,
		TargetTracking: &autoscale.TargetTracking{Metric: autoscale.BacklogPerInstance, TargetValue: 2,
			ScaleOutCooldown: &zero, ScaleInCooldown: &zero}}, http.StatusOK, nil)
	atZero := func(ep *hosting.Endpoint) bool {
		return converged(ep) && ep.Variants[0].DesiredInstanceCount == 0 && len(ep.Variants[0].Instances) == 0
	}
	j.waitEndpoint("slow", 30*time.Second, atZero)

	sm := j.sagemakerClient()
	var outputs []string
	for i := range 6 {
		out, err := sm.InvokeEndpointAsync(context.Background(), &sagemakerruntime.InvokeEndpointAsyncInput{
			EndpointName: aws.String("slow"), ContentType: aws.String("application/json"),
			Body: fmt.Appendf(nil, `{"inputs": "queued at zero %d"}`, i)})
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, aws.ToString(out.OutputLocation))
	}
	j.waitEndpoint("slow", 30*time.Second, func(ep *hosting.Endpoint) bool {
		return ep.Variants[0].DesiredInstanceCount > 0
	})
	for _, o := range outputs {
		waitObject(t, o)
	}
	var stats struct {
		Queued, Running, Succeeded, Failed int
	}
	// An output object lands just before its request is marked
	// succeeded: poll for the count.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		j.admin("GET", "/api/v1/endpoints/slow/async", nil, http.StatusOK, &stats)
		if stats.Succeeded+stats.Failed == len(outputs) || time.Now().After(deadline) {
			break
		}
	}
	if stats.Succeeded != len(outputs) || stats.Failed != 0 {
		t.Fatalf("queue after the backlog drained: %+v, want %d succeeded", stats, len(outputs))
	}
	j.waitEndpoint("slow", 30*time.Second, atZero)

	events := j.events("slow")
	for _, want := range []string{
		`BacklogPerInstance [0-9.]+ per instance .*scale-out: instances 0 -> [12]`,
		`scale-in: instances [12] -> 0`,
	} {
		if !regexp.MustCompile(want).MatchString(events) {
			t.Errorf("no event matching %q in:\n%s", want, events)
		}
	}
}
