package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// limitedUpstream is a fake provider with a rate limit: more than limit
// requests in flight are answered 429 (every other one with Retry-After),
// and every eleventh request that gets through is answered 500. It counts
// every call.
type limitedUpstream struct {
	fake     *fakeopenai.Server
	limit    int64
	inflight atomic.Int64
	calls    atomic.Int64
	got429   atomic.Int64
	got500   atomic.Int64
}

func (u *limitedUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := u.calls.Add(1)
	if u.inflight.Add(1) > u.limit {
		u.inflight.Add(-1)
		if u.got429.Add(1)%2 == 0 {
			w.Header().Set("Retry-After", "0")
		}
		fakeopenai.WriteError(w, http.StatusTooManyRequests, "Rate limit reached for requests", "requests", "rate_limit_exceeded")
		return
	}
	defer u.inflight.Add(-1)
	if n%11 == 0 {
		u.got500.Add(1)
		fakeopenai.WriteError(w, http.StatusInternalServerError, "The server had an error while processing your request.", "server_error", "")
		return
	}
	u.fake.ServeHTTP(w, r)
}

// jobView is what GET /api/v1/jobs/{id} answers.
type jobView struct {
	ID                        string
	Status                    string
	Total, Completed, Failed  int64
	Pending, Retries          int64
	RatePerSecond, ETASeconds float64
	InputTokens, OutputTokens int64
}

func (j *junction) job(id string) jobView {
	j.t.Helper()
	status, _, b := j.do("GET", "/api/v1/jobs/"+id, adminKey, "")
	var v jobView
	if status != 200 || json.Unmarshal(b, &v) != nil {
		j.t.Fatalf("describe job: %d %s", status, b)
	}
	return v
}

// TestBatchOf2000UnderRateLimitAndFaults runs a 2,000-record batch against
// a provider that rate-limits (429s) and fails (500s): every record ends
// exactly once in the output or the error file, and the provider's calls
// minus the retries Junction counted equal the records.
func TestBatchOf2000UnderRateLimitAndFaults(t *testing.T) {
	up := &limitedUpstream{fake: &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault {
		return fakeopenai.Fault{Delay: time.Millisecond}
	}}, limit: 6}
	srv := httptest.NewServer(up)
	defer srv.Close()
	dir := t.TempDir()
	j := runYAML(t, fmt.Sprintf(`
server: {addr: "127.0.0.1:0", data_dir: %q, upstream_timeout: 5s, shutdown_timeout: 5s}
auth: {admin_key: %q}
log: {level: warn}
ledger: {flush_interval: 5ms}
hosting: {disabled: true}
providers:
  - {name: limited, type: openai, base_url: "%s/v1", api_key: sk-up}
models:
  - {name: m, provider: limited, upstream_model: m1, price: {input_per_1k: 1, output_per_1k: 2}}
batch: {retry_backoff: 1ms, poll_interval: 20ms, concurrency: 16, max_attempts: 20}
`, dir, adminKey, srv.URL), dir)
	client := j.sdk(adminKey)
	const n = 2000
	f := uploadBatch(t, client, chatLines(n, "m"))
	b, err := client.Batches.New(context.Background(), openai.BatchNewParams{InputFileID: f.ID,
		Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	if err != nil {
		t.Fatal(err)
	}
	done := waitBatch(t, client, b.ID, 3*time.Minute)
	if done.Status != openai.BatchStatusCompleted || done.RequestCounts.Total != n || done.RequestCounts.Completed+done.RequestCounts.Failed != n {
		t.Fatalf("batch %+v", done)
	}
	seen := map[string]int{}
	for _, l := range append(fileLines(t, client, done.OutputFileID), fileLines(t, client, done.ErrorFileID)...) {
		seen[l.CustomID]++
	}
	for i := range n {
		if c := seen[fmt.Sprintf("req-%d", i)]; c != 1 {
			t.Fatalf("req-%d is in the output %d times", i, c)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct custom ids in the output, want %d", len(seen), n)
	}
	v := j.job(b.ID)
	if up.got429.Load() == 0 || up.got500.Load() == 0 {
		t.Fatalf("the fake injected %d 429s and %d 500s; the test needs both", up.got429.Load(), up.got500.Load())
	}
	if calls := up.calls.Load(); calls-v.Retries != n {
		t.Fatalf("the provider got %d calls and Junction counted %d retries: %d records called, want %d", calls, v.Retries, calls-v.Retries, n)
	}
	// The records are in the metrics: the engine's counters, and the
	// gateway's requests on their own surface.
	_, _, metrics := j.do("GET", "/metrics", "", "")
	for _, want := range []string{fmt.Sprintf("junction_batch_records_completed_total %d", v.Completed),
		fmt.Sprintf("junction_batch_records_failed_total %d", v.Failed), `surface="batch"`} {
		if !strings.Contains(string(metrics), want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
	t.Logf("%d calls, %d 429s, %d 500s, %d retries, %d failed", up.calls.Load(), up.got429.Load(), up.got500.Load(), v.Retries, v.Failed)
}
