package server_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
)

// A scale request whose client hangs up as soon as it is sent still
// completes: the change is stored before the answer and applied by the
// reconciler, not on the request's context.
func TestScaleWhoseClientHangsUpStillCompletes(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	before := onOldFleet(t, j)

	body := `{"variants":[{"variant":"primary","instance_count":3}]}`
	conn, err := net.Dial("tcp", strings.TrimPrefix(j.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT /api/v1/endpoints/ep/variants HTTP/1.1\r\nHost: junction\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		adminKey, len(body), body)
	conn.Close()

	after := j.waitEndpoint("ep", 30*time.Second, func(e *hosting.Endpoint) bool {
		return converged(e) && e.Generation == before.Generation+1 && e.Variants[0].CurrentInstanceCount == 3
	})
	if after.Variants[0].DesiredInstanceCount != 3 || len(after.Variants[0].Instances) != 3 {
		t.Fatalf("after the scale: %+v", after.Variants)
	}
	// Each instance's log, through the runtime.
	status, _, logs := j.do("GET", "/api/v1/endpoints/ep/logs?bytes=4096", adminKey, "")
	for _, in := range after.Variants[0].Instances {
		if status != 200 || !strings.Contains(string(logs), "==> "+in.ID+" <==\n=== junction") {
			t.Fatalf("logs: %d %s", status, logs)
		}
	}
}

// Two updates asked in quick succession: the second supersedes the first,
// whose fleet is stopped, and the endpoint converges on the second.
func TestConflictingUpdatesConvergeOnTheLast(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	onOldFleet(t, j)
	j.endpointConfig("v2", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g5.xlarge"})
	j.endpointConfig("v3", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.inf2.xlarge"})

	j.admin("PUT", "/api/v1/endpoints/ep", map[string]any{"config": "v2", "deployment": map[string]any{
		"type": "canary", "canary_percent": 10, "wait_seconds": 600}}, http.StatusAccepted, nil)
	var second hosting.Endpoint
	j.admin("PUT", "/api/v1/endpoints/ep", map[string]any{"config": "v3"}, http.StatusAccepted, &second)
	if second.PendingConfig != "v3" {
		t.Fatalf("the second update's answer: %+v", second)
	}
	done := j.waitEndpoint("ep", 30*time.Second, func(e *hosting.Endpoint) bool { return converged(e) && e.Config == "v3" })
	if done.Generation != second.Generation || done.FailureReason != "" || len(done.Variants) != 1 || done.Variants[0].InstanceType != "ml.inf2.xlarge" {
		t.Fatalf("after both updates: %+v", done)
	}
	// The first update's canary fleet, if it came up, is gone.
	ev := j.events("ep")
	if strings.Contains(ev, "new fleet on config v2 is ready") && !strings.Contains(ev, "update to config v2 interrupted") {
		t.Fatalf("the superseded update was not stopped; events:\n%s", ev)
	}
	if status, _, b := j.invoke("ep", `{"inputs":"hello"}`); status != 200 {
		t.Fatalf("after the updates: %d %s", status, b)
	}
}
