package server_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/fakeupstream"
)

// TestEveryCallIsRecordedOnce sends one call of every kind and checks that
// each produced exactly one ledger record under its own request id — plus
// one ".N" record per earlier attempt that cost tokens — and as many
// observations in junction_requests_total as records.
func TestEveryCallIsRecordedOnce(t *testing.T) {
	fake := &fakeupstream.Server{}
	j := startFaulty(t, fake, `  - {name: plain, provider: faulty, upstream_model: ok}
  - {name: streamed, provider: faulty, upstream_model: ok}
  - {name: down, provider: faulty, upstream_model: "503"}
  - {name: spare, provider: faulty, upstream_model: spare-model}
  - {name: cut, provider: faulty, upstream_model: "cut-after-3"}
  - {name: guarded, provider: faulty, upstream_model: ok, guardrail: words}
  - {name: costly, provider: faulty, upstream_model: ok, price: {input_per_1k: 1000, output_per_1k: 1000}}
  - {name: mute, provider: faulty, upstream_model: "no-answer"}`, `routes:
  - {name: failover, deployments: [{model: down}], fallbacks: [spare]}
  - {name: midstream, deployments: [{model: cut}], fallbacks: [spare]}
  - {name: cascade, type: cascade, deployments: [{model: plain}, {model: spare}], checks: [non_empty]}
router: {retry_backoff: 1ms, failure_threshold: 100}
guardrails:
  - id: words
    name: words
    blocked_input_messaging: "Blocked."
    blocked_outputs_messaging: "Blocked."
    word_policy: {words: [{text: "forbidden"}]}
governance:
  budgets: [{scope: "tag:app=capped", period: daily, limit_usd: 0.000001, mode: hard}]`)
	body := func(model string, stream bool, text string) string {
		return `{"model":"` + model + `","stream":` + strconv.FormatBool(stream) + `,"messages":[{"role":"user","content":"` + text + `"}]}`
	}
	type kind struct {
		name, model string
		send        func()
		status      int // of the record under the request's own id
		attempts    int // ".N" records expected
	}
	post := func(model string, stream bool, text string, hdr ...string) func() {
		return func() { j.do("POST", "/v1/chat/completions", adminKey, body(model, stream, text), hdr...) }
	}
	kinds := []kind{
		{"plain", "plain", post("plain", false, "hi"), 200, 0},
		{"stream", "streamed", post("streamed", true, "hi"), 200, 0},
		{"failover before any answer", "failover", post("failover", false, "hi"), 200, 0},
		{"failover mid-stream", "midstream", post("midstream", true, "hi"), 200, 1},
		{"cascade", "cascade", post("cascade", false, "hi"), 200, 0},
		{"guardrail block", "guarded", post("guarded", false, "this is forbidden"), 200, 0},
		{"guardrail block, streamed", "guarded", post("guarded", true, "this is forbidden"), 200, 0},
		{"budget refusal", "costly", post("costly", false, "hi", "X-Junction-Tags", "app=capped"), 429, 0},
		{"unknown model", "nope", post("nope", false, "hi"), 404, 0},
		{"client hangs up", "mute", func() {
			ctx, cancel := context.WithCancel(context.Background())
			before := fake.Count("no-answer")
			go func() {
				for fake.Count("no-answer") == before {
					time.Sleep(time.Millisecond)
				}
				cancel()
			}()
			req, _ := http.NewRequestWithContext(ctx, "POST", j.url+"/v1/chat/completions", strings.NewReader(body("mute", false, "hi")))
			req.Header.Set("Authorization", "Bearer "+adminKey)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}, 499, 0},
	}
	total := 0
	for _, k := range kinds {
		k.send()
		total += 1 + k.attempts
		recs := j.records(total)
		var own, extra int
		for _, r := range recs {
			if r.Model != k.model || r.Time.IsZero() {
				continue
			}
			if strings.Contains(r.RequestID, ".") {
				extra++
				continue
			}
			own++
			if own == 1 && r.Status != k.status && k.model != "guarded" {
				t.Errorf("%s: recorded status %d, want %d", k.name, r.Status, k.status)
			}
		}
		wantOwn := 1
		if k.model == "guarded" && k.name == "guardrail block, streamed" {
			wantOwn = 2 // both guardrail calls name the same model
		}
		if own != wantOwn || extra != k.attempts {
			t.Errorf("%s: %d records under the request id (want %d) and %d attempt records (want %d)", k.name, own, wantOwn, extra, k.attempts)
		}
	}
	// The metrics saw each record once.
	_, _, m := j.do("GET", "/metrics", adminKey, "")
	seen := map[string]int{}
	for _, line := range strings.Split(string(m), "\n") {
		if !strings.HasPrefix(line, "junction_requests_total{") {
			continue
		}
		i := strings.Index(line, `model="`)
		model := line[i+7:]
		model = model[:strings.IndexByte(model, '"')]
		n, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		seen[model] += int(n)
	}
	want := map[string]int{}
	for _, r := range j.records(total) {
		want[r.Model]++
	}
	for model, n := range want {
		if seen[model] != n {
			t.Errorf("model %s: %d observations in junction_requests_total, %d ledger records", model, seen[model], n)
		}
	}
}
