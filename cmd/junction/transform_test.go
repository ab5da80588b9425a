package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/jobs/batch/transform"
	"github.com/junctionhq/junction/internal/testkit/junctiontest"
)

// TestCLIRunsATransformJob deploys the reference model with "junction
// demo", runs a batch transform job over a file:// input with "jobs
// transform create" and follows it with "jobs watch"; "jobs transform
// describe" and "list" show it, its .out holds an answer per line, and
// the instance time of its transient endpoint is in "usage", as the job's
// cost.
func TestCLIRunsATransformJob(t *testing.T) {
	j := junctiontest.Start(t, junctiontest.Options{Config: `
auth: {admin_key: "` + adminKey + `"}
log: {level: warn}
ledger: {flush_interval: 5ms}
hosting: {health_interval: 100ms, stop_grace: 3s, meter_interval: 100ms}
batch: {poll_interval: 20ms}
`})
	dir := t.TempDir()
	cli(t, j.URL, "", "demo", "--dir", filepath.Join(dir, "model"))
	texts := []string{"the site is down again", "I was charged twice", "how do I reset my password", "the app is slow", "thanks!"}
	os.MkdirAll(filepath.Join(dir, "in"), 0o755)
	os.WriteFile(filepath.Join(dir, "in", "texts.txt"), []byte(strings.Join(texts, "\n")+"\n"), 0o644)
	spec := filepath.Join(dir, "job.json")
	os.WriteFile(spec, []byte(fmt.Sprintf(`{"TransformJobName": "nightly", "ModelName": "demo", "BatchStrategy": "SingleRecord",
		"TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "file://%s/in/"}},
			"ContentType": "text/plain", "SplitType": "Line"},
		"TransformOutput": {"S3OutputPath": "file://%s/out/", "AssembleWith": "Line"},
		"TransformResources": {"InstanceType": "ml.g6.xlarge", "InstanceCount": 1}}`, dir, dir)), 0o644)

	if out := cli(t, j.URL, "", "jobs", "transform", "create", "-f", spec); !strings.Contains(out, "transform-job/nightly") {
		t.Fatalf("create printed %q", out)
	}
	out := cli(t, j.URL, "", "jobs", "watch", "nightly", "--every", "20ms")
	if last := out[strings.LastIndex(out, "\r")+1:]; !strings.Contains(last, "100.0% 5/5  completed") {
		t.Fatalf("watch ended on %q", last)
	}
	if out := cli(t, j.URL, "", "jobs", "transform", "describe", "nightly"); !strings.Contains(out, "Completed") ||
		!strings.Contains(out, "5 total, 5 done, 0 failed, 0 pending") {
		t.Fatalf("describe:\n%s", out)
	}
	if out := cli(t, j.URL, "", "jobs", "transform", "list", "--status", "Completed"); !strings.Contains(out, "nightly") {
		t.Fatalf("list:\n%s", out)
	}
	if out := cliFails(t, j.URL, adminKey, "jobs", "transform", "describe", "never"); !strings.Contains(out, `Could not find transform job "never"`) {
		t.Fatalf("describe a job never made: %s", out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "out", "texts.txt.out"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != len(texts) || !strings.Contains(lines[0], `"label":"outage"`) || !strings.Contains(lines[1], `"label":"billing"`) {
		t.Fatalf("texts.txt.out:\n%s", data)
	}

	var usage admin.UsageResponse
	endpoint := transform.EndpointName("nightly")
	junctiontest.Eventually(t, "the job's instance time in usage", func() bool {
		decode(t, cli(t, j.URL, "", "usage", "--since", "1h", "--json"), &usage)
		for _, h := range usage.Hosting {
			if h.Endpoint == endpoint && h.InstanceHours > 0 && h.CostUSD > 0 {
				return true
			}
		}
		return false
	})
}
