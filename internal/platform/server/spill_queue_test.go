package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// A warm endpoint whose predicted wait (the calls ahead on its least busy
// instance, each at its recent latency) exceeds a request's latency
// budget spills the request to the route's managed model, recorded as
// spill:queue at the managed model's price; a request with room in its
// budget (or none) waits for the endpoint, and once the calls ahead are
// done the budgeted request is the endpoint's again.
func TestBusyEndpointSpillsOverBudget(t *testing.T) {
	fake := &fakeopenai.Server{Record: true}
	up := httptest.NewServer(fake)
	defer up.Close()
	j := startHosted(t, t.TempDir(), up.URL, scalingHosting+`
models:
  - {name: local-lm, provider: endpoint, upstream_model: lm}
  - {name: cloud-mini, provider: cloud, upstream_model: gpt-4o-mini}
routes:
  - {name: support, deployments: [{model: local-lm}], spill: cloud-mini, spill_wait: 30s}
`)
	j.model("lm", demoArtifact(t), "openai", map[string]string{modelserver.EnvDelay: "1s"})
	j.endpointConfig("lm-c", hosting.Variant{Name: "v", Model: "lm", InstanceType: "ml.g6.xlarge", InstanceCount: 1})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "lm", "config": "lm-c"}, http.StatusCreated, nil)
	j.waitEndpoint("lm", 30*time.Second, inService)

	ask := func(budget string) int {
		var hdr []string
		if budget != "" {
			hdr = []string{"X-Junction-Max-Latency-Ms", budget}
		}
		status, _, b := j.do("POST", "/v1/chat/completions", adminKey,
			`{"model":"support","messages":[{"role":"user","content":"the keeper climbs the stairs"}],"max_tokens":8,"temperature":0}`, hdr...)
		if status != 200 {
			t.Errorf("support: %d %s", status, b)
		}
		return len(fake.Requests())
	}
	// Idle, the endpoint answers even a tight budget: nothing is ahead.
	if n := ask("500"); n != 0 {
		t.Fatalf("an idle endpoint's request spilled: %d cloud calls", n)
	}
	// Two calls of about a second each in flight on the one instance: a
	// third would wait about two seconds.
	done := make(chan int, 2)
	for range 2 {
		go func() { done <- ask("") }()
	}
	j.waitEndpoint("lm", 10*time.Second, func(ep *hosting.Endpoint) bool {
		return len(ep.Variants[0].Instances) == 1 && ep.Variants[0].Instances[0].Outstanding == 2
	})
	if n := ask("1500"); n != 1 {
		t.Fatalf("over its budget, the request was not spilled: %d cloud calls", n)
	}
	for range 2 {
		<-done
	}
	if n := ask("1500"); n != 1 {
		t.Fatalf("with nothing ahead, the request still spilled: %d cloud calls", n)
	}

	spilled, local := 0, 0
	for _, r := range j.records(5) {
		switch {
		case r.RouteReason == "spill:queue" && r.Provider == "cloud" && r.Route == "support":
			spilled++
			in, out := float64(r.InputTokens), float64(r.OutputTokens)
			if want := in/1000*0.00015 + out/1000*0.0006; r.CostUSD == nil || *r.CostUSD < want*0.999 || *r.CostUSD > want*1.001 || want == 0 {
				t.Fatalf("spilled request's cost %v, want gpt-4o-mini's %g: %+v", r.CostUSD, want, r)
			}
		case r.Provider == "endpoint" && !strings.HasPrefix(r.RouteReason, "spill"):
			local++
		default:
			t.Fatalf("unexpected record: %+v", r)
		}
	}
	if spilled != 1 || local != 4 {
		t.Fatalf("spilled %d, local %d; want 1 and 4", spilled, local)
	}
}
