package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jobsapi "github.com/junctionhq/junction/internal/api/jobs"
	"github.com/junctionhq/junction/internal/jobs/batch"
	"github.com/junctionhq/junction/internal/testkit/junctiontest"
)

// TestCLIWatchesAJob makes a Bedrock batch job over HTTP and follows it
// with "jobs watch" to the end; "jobs list" and "jobs describe" show it,
// and "usage --group-by surface" shows its records on their own path.
func TestCLIWatchesAJob(t *testing.T) {
	j := junctiontest.Start(t, junctiontest.Options{Config: gatewayConfig(upstream(t), "batch: {poll_interval: 20ms}")})
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	var lines strings.Builder
	for i := range 20 {
		fmt.Fprintf(&lines, `{"recordId":"r%d","modelInput":{"messages":[{"role":"user","content":"hi %d"}]}}`+"\n", i, i)
	}
	os.WriteFile(in, []byte(lines.String()), 0o644)
	body := fmt.Sprintf(`{"jobName":"cli","modelId":"small","inputDataConfig":{"s3InputDataConfig":{"s3Uri":"file://%s"}},
		"outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"file://%s/out/"}}}`, in, dir)
	req, _ := http.NewRequest("POST", j.URL+"/api/v1/model-invocation-jobs", bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ JobArn string }
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	id := created.JobArn[strings.LastIndex(created.JobArn, "/")+1:]
	if resp.StatusCode != 200 || id == "" {
		t.Fatalf("create: %d %+v", resp.StatusCode, created)
	}

	out := cli(t, j.URL, "", "jobs", "watch", id, "--every", "20ms")
	last := out[strings.LastIndex(out, "\r")+1:]
	if !strings.Contains(last, "100.0% 20/20  completed") || !strings.Contains(last, "██████") {
		t.Fatalf("watch ended on %q", last)
	}
	if out := cli(t, j.URL, "", "jobs", "list"); !strings.Contains(out, id) || !strings.Contains(out, "bedrock") {
		t.Fatalf("jobs list:\n%s", out)
	}
	if out := cli(t, j.URL, "", "jobs", "describe", id); !strings.Contains(out, "20 total, 20 done, 0 failed, 0 pending") {
		t.Fatalf("jobs describe:\n%s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := cli(t, j.URL, "", "usage", "--group-by", "surface")
		if strings.Contains(out, "batch") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage by surface has no batch path:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestProgressLine(t *testing.T) {
	j := &jobsapi.Job{Status: batch.InProgress, Total: 200, Completed: 90, Failed: 10, RatePerSecond: 12.5, ETASeconds: 8}
	got := progressLine(j, 10)
	want := "█████░░░░░  50.0% 100/200  in_progress  10 failed  12.5 rec/s  ETA 8s   "
	if got != want {
		t.Fatalf("progress line\n got %q\nwant %q", got, want)
	}
}
