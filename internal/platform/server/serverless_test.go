package server_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
)

// scalingHosting is hosting with fast autoscaling timings for the tests.
const scalingHosting = "hosting: {health_interval: 100ms, stop_grace: 3s, meter_interval: 100ms, invocation_timeout: 30s, " +
	"cold_start: {max_wait: 25s}, autoscale: {interval: 100ms, window: 1s, serverless_idle: 1s}}\n"

// countEvents counts the events of an endpoint that contain s.
func (j *junction) countEvents(endpoint, s string) int {
	return strings.Count(j.events(endpoint), s)
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A serverless endpoint at zero with a 2 s cold start: 50 concurrent first
// requests are all held and answered, by exactly one instance started for
// them; requests past max_concurrency get 429 ThrottlingException; idle,
// it goes back to zero; its compute is billed per GB-second.
func TestServerlessColdStartHoldsThrottlesAndScalesToZero(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", scalingHosting)
	j.model("m", demoArtifact(t), "byoc", map[string]string{modelserver.EnvStartupDelay: "2s"})
	j.endpointConfig("c", hosting.Variant{Name: "v", Model: "m",
		Serverless: &hosting.ServerlessConfig{MemorySizeMB: 2048, MaxConcurrency: 50}})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "sl", "config": "c"}, http.StatusCreated, nil)
	ep := j.waitEndpoint("sl", 30*time.Second, inService)
	if v := ep.Variants[0]; v.DesiredInstanceCount != 0 || len(v.Instances) != 0 {
		t.Fatalf("a serverless endpoint starts with no instance: %+v", v)
	}

	// 50 at once, each of which, once running, takes 2 s more: the room
	// for the requests past max_concurrency to find all 50 admitted.
	const first = 50
	statuses := make(chan int, first)
	var wg sync.WaitGroup
	for range first {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _, b := j.invoke("sl", `{"inputs":"my parcel never arrived"}`, "X-Amzn-SageMaker-Custom-Attributes", "delay_ms=2000")
			if st != 200 {
				t.Errorf("held request: %d %s", st, b)
			}
			statuses <- st
		}()
	}
	admitted := `junction_hosting_serverless_concurrency{endpoint="sl",variant="v"}`
	waitFor(t, 20*time.Second, "50 requests admitted", func() bool { return j.metric(admitted) == first })
	for range 5 {
		st, hdr, b := j.invoke("sl", `{"inputs":"one more"}`)
		if st != http.StatusTooManyRequests || hdr.Get("X-Amzn-Errortype") != hosting.ErrThrottling || !strings.Contains(string(b), "maximum concurrency of 50") {
			t.Fatalf("past max_concurrency: %d %s %s", st, hdr.Get("X-Amzn-Errortype"), b)
		}
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for st := range statuses {
		if st == 200 {
			ok++
		}
	}
	if ok != first {
		t.Fatalf("%d of %d held requests succeeded", ok, first)
	}
	if n := j.countEvents("sl", "cold start"); n != 1 {
		t.Fatalf("%d cold starts asked for, want 1: %s", n, j.events("sl"))
	}
	ep = j.waitEndpoint("sl", 10*time.Second, converged)
	if v := ep.Variants[0]; len(v.Instances) != 1 {
		t.Fatalf("one start for all of them, but %d instances: %+v", len(v.Instances), v)
	}

	// Idle past serverless_idle, it scales back to zero, drained first.
	j.waitEndpoint("sl", 20*time.Second, func(ep *hosting.Endpoint) bool {
		return converged(ep) && ep.Variants[0].DesiredInstanceCount == 0 && len(ep.Variants[0].Instances) == 0
	})
	if j.countEvents("sl", "serverless: no call") != 1 {
		t.Fatalf("no scale-in event: %s", j.events("sl"))
	}

	// Billed per GB-second of processing: 50 calls of over 2 s at 2 GB,
	// at the catalog's $0.00002 per GB-second; no instance-hours.
	var usage struct {
		Hosting []hosting.HostingRow `json:"hosting"`
	}
	waitFor(t, 10*time.Second, "serverless usage metered", func() bool {
		j.admin("GET", "/api/v1/usage?group_by=surface", nil, http.StatusOK, &usage)
		return len(usage.Hosting) == 1 && usage.Hosting[0].InstanceHours*3600 >= first*2
	})
	h := usage.Hosting[0]
	if h.InstanceType != "serverless-2048mb" || h.Unpriced {
		t.Fatalf("serverless usage: %+v", h)
	}
	if want := h.InstanceHours * 3600 * 2 * 0.00002; h.CostUSD < want*0.999 || h.CostUSD > want*1.001 {
		t.Fatalf("cost %g for %g s of processing at 2 GB, want %g", h.CostUSD, h.InstanceHours*3600, want)
	}
}
