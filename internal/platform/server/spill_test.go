package server_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// A route names a managed model as the spill target of its self-hosted
// endpoint: while the endpoint is cold the managed model answers (and the
// ledger says spill:cold-start, priced as the managed model), the first
// such request starts an instance, and once it is ready the endpoint
// answers again.
func TestColdEndpointSpillsToManagedModel(t *testing.T) {
	fake := &fakeopenai.Server{Record: true}
	up := httptest.NewServer(fake)
	defer up.Close()
	// An idle second scales a serverless variant to zero; here the warm
	// phase must not meet that on a loaded machine.
	hostingCfg := strings.Replace(scalingHosting, "serverless_idle: 1s", "serverless_idle: 2m", 1)
	j := startHosted(t, t.TempDir(), up.URL, hostingCfg+`
models:
  - {name: local-lm, provider: endpoint, upstream_model: lm}
  - {name: cloud-mini, provider: cloud, upstream_model: gpt-4o-mini}
routes:
  - {name: support, deployments: [{model: local-lm}], spill: cloud-mini}
`)
	j.model("lm", demoArtifact(t), "openai", map[string]string{modelserver.EnvStartupDelay: "2s"})
	j.endpointConfig("lm-c", hosting.Variant{Name: "v", Model: "lm", Serverless: &hosting.ServerlessConfig{MemorySizeMB: 1024, MaxConcurrency: 10}})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "lm", "config": "lm-c"}, http.StatusCreated, nil)
	j.waitEndpoint("lm", 30*time.Second, inService)

	ask := func() string {
		t.Helper()
		status, _, b := j.do("POST", "/v1/chat/completions", adminKey,
			`{"model":"support","messages":[{"role":"user","content":"the keeper climbs the stairs"}],"max_tokens":8,"temperature":0}`)
		if status != 200 {
			t.Fatalf("support: %d %s", status, b)
		}
		return string(b)
	}
	// Cold: the managed model answers at once, and a start is asked for.
	ask()
	if n := len(fake.Requests()); n != 1 {
		t.Fatalf("the cold endpoint's request did not spill: %d cloud calls", n)
	}
	j.waitEndpoint("lm", 30*time.Second, func(ep *hosting.Endpoint) bool { return converged(ep) && ep.Variants[0].CurrentInstanceCount == 1 })
	if n := j.countEvents("lm", "cold start"); n != 1 {
		t.Fatalf("%d cold starts asked for: %s", n, j.events("lm"))
	}
	// Warm: the endpoint answers, the managed model is not called.
	for range 3 {
		ask()
	}
	if n := len(fake.Requests()); n != 1 {
		t.Fatalf("warm endpoint, yet %d cloud calls", n)
	}

	recs := j.records(4)
	spilled, local := 0, 0
	for _, r := range recs {
		switch {
		case r.RouteReason == "spill:cold-start" && r.Provider == "cloud" && r.Route == "support":
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
	if spilled != 1 || local != 3 {
		t.Fatalf("spilled %d, local %d: %s", spilled, local, fmt.Sprint(recs))
	}
}
