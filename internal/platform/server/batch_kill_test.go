package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
	"github.com/junctionhq/junction/internal/testkit/junctiontest"
)

// TestBatchResumesAfterKill9 kills `junction serve` with SIGKILL in the
// middle of a 2,000-record batch and starts it again on the same data:
// the batch resumes where it was and ends with every record in its output
// exactly once.
func TestBatchResumesAfterKill9(t *testing.T) {
	var calls atomic.Int64
	up := httptest.NewServer(&fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault {
		calls.Add(1)
		return fakeopenai.Fault{Delay: 2 * time.Millisecond}
	}})
	defer up.Close()
	yaml := fmt.Sprintf(`
server: {upstream_timeout: 5s, shutdown_timeout: 10s}
auth: {admin_key: %q}
log: {level: warn}
hosting: {disabled: true}
providers:
  - {name: fake, type: openai, base_url: "%s/v1", api_key: sk-up}
models:
  - {name: m, provider: fake, upstream_model: m1}
batch: {concurrency: 4, poll_interval: 50ms, retry_backoff: 1ms}
`, adminKey, up.URL)
	first := junctiontest.Start(t, junctiontest.Options{Config: yaml})
	sdk := func(p *junctiontest.Process) openai.Client {
		return openai.NewClient(option.WithBaseURL(p.URL+"/v1/"), option.WithAPIKey(adminKey), option.WithMaxRetries(0))
	}
	const n = 2000
	client := sdk(first)
	f := uploadBatch(t, client, chatLines(n, "m"))
	b, err := client.Batches.New(context.Background(), openai.BatchNewParams{InputFileID: f.ID,
		Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := client.Batches.Get(context.Background(), b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.RequestCounts.Completed >= 300 {
			if got.Status != openai.BatchStatusInProgress {
				t.Fatalf("the batch finished before the kill (%s); make it slower", got.Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d records done in 60s", got.RequestCounts.Completed)
		}
		time.Sleep(5 * time.Millisecond)
	}
	first.Kill()
	before := calls.Load()

	again := junctiontest.Start(t, junctiontest.Options{Config: yaml, DataDir: first.DataDir})
	client = sdk(again)
	done := waitBatch(t, client, b.ID, 2*time.Minute)
	if done.Status != openai.BatchStatusCompleted || done.RequestCounts.Completed != n || done.RequestCounts.Failed != 0 {
		t.Fatalf("batch after restart %+v", done.RequestCounts)
	}
	seen := map[string]int{}
	for _, l := range fileLines(t, client, done.OutputFileID) {
		seen[l.CustomID]++
		if seen[l.CustomID] > 1 {
			t.Fatalf("%s is in the output twice", l.CustomID)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d records in the output, want %d", len(seen), n)
	}
	// The restart redid only what had not been committed: at most the
	// records in flight and those waiting for their commit.
	if redone := calls.Load() - n; redone < 0 || redone > 300 {
		t.Fatalf("%d calls in all (%d before the kill) for %d records", calls.Load(), before, n)
	}
	t.Logf("%d calls before the kill, %d in all", before, calls.Load())
}
