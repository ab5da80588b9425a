package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/testkit/junctiontest"
)

// TestDemoDeploysTheReferenceModel runs the quick start: "junction demo"
// against a running "junction serve" builds the reference model, deploys
// it as the endpoint "demo" (the server starts "junction model-server"),
// waits for InService and invokes it; a second run reuses what exists;
// the endpoint then answers "endpoints invoke" and its instance time is
// in "usage".
func TestDemoDeploysTheReferenceModel(t *testing.T) {
	j := junctiontest.Start(t, junctiontest.Options{Config: `
auth: {admin_key: "` + adminKey + `"}
log: {level: warn}
ledger: {flush_interval: 5ms}
hosting: {health_interval: 100ms, stop_grace: 3s, meter_interval: 100ms}
`})
	dir := filepath.Join(t.TempDir(), "demo-model")
	out := cli(t, j.URL, "", "demo", "--dir", dir)
	for _, want := range []string{"Built the reference model's artifact in " + dir, "Endpoint demo on 1 x ml.g6.xlarge",
		"InService (1/1 instances ready)", "Invoked it (variant primary)", `"label":"billing"`} {
		if !strings.Contains(out, want) {
			t.Errorf("demo's output has no %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "Ready in") {
			t.Log(strings.TrimSpace(line)) // the demo's own time, quoted in docs/performance.md
		}
	}
	if again := cli(t, j.URL, "", "demo", "--dir", dir); !strings.Contains(again, "Invoked it (variant primary)") {
		t.Fatalf("a second demo run did not reuse the endpoint:\n%s", again)
	}

	var eps []hosting.Endpoint
	decode(t, cli(t, j.URL, "", "endpoints", "list", "--json"), &eps)
	if len(eps) != 1 || eps[0].Name != "demo" || eps[0].Status != hosting.StatusInService {
		t.Fatalf("endpoints list after demo: %+v", eps)
	}
	var models []hosting.Model
	decode(t, cli(t, j.URL, "", "models", "list", "--json"), &models)
	if len(models) != 1 || models[0].Name != "demo" || models[0].Artifact != "file://"+dir {
		t.Fatalf("models list after demo: %+v", models)
	}

	var answer struct{ Predictions []struct{ Label string } }
	decode(t, cli(t, j.URL, "", "endpoints", "invoke", "demo", "--body", `{"inputs": "the site is down again"}`), &answer)
	if len(answer.Predictions) != 1 || answer.Predictions[0].Label != "outage" {
		t.Fatalf("endpoints invoke: %+v, want the one label outage", answer)
	}

	var usage admin.UsageResponse
	junctiontest.Eventually(t, "the demo endpoint's instance time in usage", func() bool {
		decode(t, cli(t, j.URL, "", "usage", "--since", "1h", "--json"), &usage)
		return len(usage.Hosting) > 0 && usage.Hosting[0].InstanceHours > 0
	})
	if h := usage.Hosting[0]; len(usage.Hosting) != 1 || h.Endpoint != "demo" || h.Variant != "primary" ||
		h.InstanceType != "ml.g6.xlarge" || h.CostUSD <= 0 {
		t.Fatalf("hosting usage: %+v, want one row for the demo's instance", usage.Hosting)
	}
}
