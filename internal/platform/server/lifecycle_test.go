package server_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/testkit/fakeupstream"
)

// TestEveryCallIsRecordedOnce sends one call of every kind and checks that
// each produced exactly one ledger record under its own request id — plus
// one ".N" record per earlier attempt that cost tokens — and as many
// observations in junction_requests_total as records. SageMaker-runtime
// invocations of a hosted endpoint (plain, streamed, refused by a rate
// limit, refused as invalid) are calls like the rest: one record each,
// and one observation each in junction_requests_total{surface="sagemaker"}
// and in junction_sagemaker_invocations_total. After each call, the
// metrics have counted exactly as many calls as the ledger holds records.
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
  budgets: [{scope: "tag:app=capped", period: daily, limit_usd: 0.000001, mode: hard}]
  rate_limits: [{scope: "tag:app=throttled", rpm: 1}]
hosting: {health_interval: 100ms, meter_interval: 1h, invocation_timeout: 5s}`)
	j.model("m", demoArtifact(t), "byoc", nil)
	j.endpointConfig("c", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge"})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c"}, http.StatusCreated, nil)
	j.waitEndpoint("ep", 30*time.Second, inService)
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
	invoke := func(op string, hdr ...string) func() string {
		return func() string {
			_, h, _ := j.do("POST", "/endpoints/ep/"+op, adminKey, `{"inputs":"hello"}`, hdr...)
			return h.Get("X-Request-Id")
		}
	}
	invocations := []struct {
		name     string
		send     func() string
		status   int
		deployed string // the variant the record names
	}{
		{"invocation", invoke("invocations", "X-Junction-Tags", "app=throttled"), 200, "primary"},
		{"invocation, streamed", invoke("invocations-response-stream"), 200, "primary"},
		{"invocation refused by a rate limit", invoke("invocations", "X-Junction-Tags", "app=throttled"), 429, ""},
		{"invocation of an unknown variant", invoke("invocations", "X-Amzn-SageMaker-Target-Variant", "nope"), 400, ""},
	}
	// observed polls junction_requests_total until it has counted n calls
	// in all, and fails the kind that left it short or over.
	observed := func(kind string, n int) {
		t.Helper()
		got := 0
		for deadline := time.Now().Add(5 * time.Second); ; {
			_, _, m := j.do("GET", "/metrics", "", "")
			got = 0
			for _, line := range strings.Split(string(m), "\n") {
				if strings.HasPrefix(line, "junction_requests_total{") {
					v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
					got += int(v)
				}
			}
			if got >= n || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if got != n {
			t.Errorf("%s: junction_requests_total counts %d calls after it, want %d (one per record)", kind, got, n)
		}
	}
	total := 0
	for _, k := range invocations {
		id := k.send()
		total++
		n := 0
		for _, r := range j.records(total) {
			if r.RequestID != id {
				continue
			}
			n++
			if r.Surface != "sagemaker" || r.Model != "ep" || r.Status != k.status || r.Deployment != k.deployed {
				t.Errorf("%s: recorded %s %s %d variant %q, want sagemaker ep %d variant %q", k.name, r.Surface, r.Model, r.Status, r.Deployment,
					k.status, k.deployed)
			}
		}
		if n != 1 {
			t.Errorf("%s: %d records under request id %q, want 1", k.name, n, id)
		}
		observed(k.name, total)
	}
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
		observed(k.name, total)
	}
	// The metrics saw each record once.
	_, _, m := j.do("GET", "/metrics", adminKey, "")
	seen := map[string]int{}
	invoked := 0
	for _, line := range strings.Split(string(m), "\n") {
		if strings.HasPrefix(line, "junction_sagemaker_invocations_total{") {
			n, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			invoked += int(n)
		}
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
		if r.Surface == "sagemaker" && r.Deployment == "" {
			// No variant took it: the endpoint asked for is no label.
			r.Model = ""
		}
		want[r.Model]++
	}
	if invoked != len(invocations) {
		t.Errorf("%d observations in junction_sagemaker_invocations_total, want %d", invoked, len(invocations))
	}
	for model, n := range want {
		if seen[model] != n {
			t.Errorf("model %s: %d observations in junction_requests_total, %d ledger records", model, seen[model], n)
		}
	}
}
