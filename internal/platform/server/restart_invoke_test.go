package server_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/testkit/junctiontest"
)

// TestInvocationsRightAfterARestartAreNeverNotFound: Junction is
// restarted (stopped, or killed with its model servers left running) on
// the data of an InService endpoint, and invoked in a loop from the
// moment it is ready. No invocation is told the endpoint does not exist:
// until it can route, an invocation gets a retryable 503 with
// Retry-After (or waits), and the endpoint is described InService only
// when an invocation right after succeeds.
func TestInvocationsRightAfterARestartAreNeverNotFound(t *testing.T) {
	for _, how := range []string{"stop", "kill"} {
		t.Run(how, func(t *testing.T) {
			p, j := startWithRefModel(t)
			j.endpointConfig("c", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 1})
			j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c"}, http.StatusCreated, nil)
			ep := j.waitEndpoint("ep", 30*time.Second, converged)
			t0 := time.Now()
			if how == "kill" {
				killOnCleanup(t, ep)
				p.Kill()
			} else {
				p.Stop()
			}

			t.Logf("%s took %s", how, time.Since(t0))
			p2 := junctiontest.Start(t, junctiontest.Options{Config: hostingYAML(""), DataDir: p.DataDir})
			j2 := childJunction(t, p2)
			t.Logf("restart took %s", time.Since(t0))
			deadline := time.Now().Add(60 * time.Second)
			served, waits := 0, 0
			for served < 20 {
				if time.Now().After(deadline) {
					t.Fatalf("the endpoint did not serve again within a minute (%d served, %d told to retry)", served, waits)
				}
				status, _, b := j2.do("GET", "/api/v1/endpoints/ep", adminKey, "")
				var e hosting.Endpoint
				if status != http.StatusOK || json.Unmarshal(b, &e) != nil {
					t.Fatalf("describe: %d %s", status, b)
				}
				code, hdr, body := j2.invoke("ep", `{"inputs":"hello"}`)
				switch {
				case code == http.StatusOK:
					served++
				case e.Status == hosting.StatusInService:
					t.Fatalf("described InService, yet an invocation right after got %d %s", code, body)
				case code == http.StatusServiceUnavailable && hdr.Get("Retry-After") != "" &&
					hdr.Get("X-Amzn-Errortype") == "ServiceUnavailable":
					waits++
				default:
					t.Fatalf("an invocation while the endpoint is %s got %d (Retry-After %q) %s; want 200, or 503 ServiceUnavailable with Retry-After",
						e.Status, code, hdr.Get("Retry-After"), body)
				}
			}
			t.Logf("%d invocations were told to retry before the endpoint served", waits)
		})
	}
}
