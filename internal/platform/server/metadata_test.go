package server_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// pricedPair starts Junction with a cheap-but-slow deployment and a
// fast-but-dear one, a route over both, and routing rules.
func pricedPair(t *testing.T, rules string) (*junction, *fakeopenai.Server, *fakeopenai.Server) {
	t.Helper()
	slow := &fakeopenai.Server{Reply: "cheap", Record: true, Fault: func(*fakeopenai.Request) fakeopenai.Fault {
		return fakeopenai.Fault{Delay: 60 * time.Millisecond}
	}}
	fast := &fakeopenai.Server{Reply: "dear", Record: true}
	up := httptest.NewServer(fast)
	t.Cleanup(up.Close)
	j := startWith(t, slow,
		fmt.Sprintf(`  - {name: fastprov, type: openai, base_url: "%s/v1"}`, up.URL),
		`  - {name: cheap, provider: openai, upstream_model: small, price: {input_per_1k: 0.0001, output_per_1k: 0.0002}}
  - {name: dear, provider: fastprov, upstream_model: large, price: {input_per_1k: 0.01, output_per_1k: 0.03}}
routes:
  - {name: chat, deployments: [{model: cheap}, {model: dear}], strategy: weighted}
  - {name: premium-only, deployments: [{model: dear}]}
`+rules)
	return j, slow, fast
}

func ask(t *testing.T, j *junction, model string, hdr ...string) (string, map[string]string) {
	t.Helper()
	status, h, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`, hdr...)
	if status != 200 {
		t.Fatalf("%d %s", status, b)
	}
	return h.Get("X-Junction-Deployment"), map[string]string{"reason": h.Get("X-Junction-Route-Reason"), "route": h.Get("X-Junction-Route")}
}

func TestCostTierAndLatencyBudget(t *testing.T) {
	j, _, _ := pricedPair(t, "")
	for i := 0; i < 5; i++ {
		if d, r := ask(t, j, "chat", "X-Junction-Cost-Tier", "economy"); d != "cheap" || !strings.Contains(r["reason"], "economy") {
			t.Fatalf("economy went to %s (%s)", d, r["reason"])
		}
	}
	// Both deployments measured now (the premium tier picks the fastest,
	// and deployments with no measurement are tried first).
	for i := 0; i < 4; i++ {
		ask(t, j, "chat", "X-Junction-Cost-Tier", "premium")
	}
	if d, _ := ask(t, j, "chat", "X-Junction-Cost-Tier", "premium"); d != "dear" {
		t.Fatalf("premium went to %s, want the fast deployment", d)
	}
	// A 30 ms budget excludes the 60 ms deployment; a 2 s budget fits both
	// and the cheaper wins.
	if d, r := ask(t, j, "chat", "X-Junction-Max-Latency-Ms", "30"); d != "dear" || !strings.Contains(r["reason"], "p90 within 30ms") {
		t.Fatalf("30ms budget went to %s (%s)", d, r["reason"])
	}
	if d, _ := ask(t, j, "chat", "X-Junction-Max-Latency-Ms", "2000"); d != "cheap" {
		t.Fatalf("2s budget went to %s", d)
	}
	// The same through the body's metadata.
	status, h, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"chat","metadata":{"cost_tier":"economy"},"messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 || h.Get("X-Junction-Deployment") != "cheap" {
		t.Fatalf("body metadata: %d %v %s", status, h, b)
	}
	status, _, b = j.do("POST", "/v1/chat/completions", adminKey, `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`, "X-Junction-Cost-Tier", "cheapest")
	if status != 400 || !strings.Contains(string(b), "X-Junction-Cost-Tier") {
		t.Fatalf("bad tier: %d %s", status, b)
	}
}

func TestRoutingRules(t *testing.T) {
	j, slow, _ := pricedPair(t, `rules:
  - {name: search-premium, when: {model: chat, tags: {team: search}}, route: premium-only}
  - {name: long-prompts, when: {model: chat, min_input_tokens: 200}, route: dear}
  - {name: economy-cheap, when: {cost_tier: economy}, route: cheap}
`)
	_, secret := j.createKey("search", map[string]string{"team": "search"})
	status, h, _ := j.do("POST", "/v1/chat/completions", secret, `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 || h.Get("X-Junction-Route") != "premium-only" || !strings.Contains(h.Get("X-Junction-Route-Reason"), "rule search-premium") {
		t.Fatalf("tag rule: %d %v", status, h)
	}
	long := strings.Repeat("word ", 400)
	status, h, _ = j.do("POST", "/v1/chat/completions", adminKey, `{"model":"chat","messages":[{"role":"user","content":"`+long+`"}]}`)
	if status != 200 || h.Get("X-Junction-Deployment") != "dear" || !strings.Contains(h.Get("X-Junction-Route-Reason"), "rule long-prompts") {
		t.Fatalf("token rule: %v", h)
	}
	if d, r := ask(t, j, "dear", "X-Junction-Cost-Tier", "economy"); d != "cheap" || !strings.Contains(r["reason"], "rule economy-cheap") {
		t.Fatalf("tier rule: %s %v", d, r)
	}
	// A model preference names where to go when it exists.
	if d, r := ask(t, j, "chat", "X-Junction-Model-Preference", "dear"); d != "dear" || !strings.Contains(r["reason"], "model preference dear") {
		t.Fatalf("preference: %s %v", d, r)
	}
	// Junction's routing keys are not forwarded in the body's metadata.
	slow.Record = true
	j.do("POST", "/v1/chat/completions", adminKey, `{"model":"cheap","metadata":{"cost_tier":"standard","app":"faq"},"messages":[{"role":"user","content":"hi"}]}`)
	reqs := slow.Requests()
	last := reqs[len(reqs)-1]
	if md, _ := last.Body["metadata"].(map[string]any); md["app"] != "faq" || md["cost_tier"] != nil {
		t.Fatalf("metadata forwarded as %v", last.Body["metadata"])
	}
	recs := j.records(5)
	if recs[4].Route != "premium-only" || recs[4].Deployment != "dear" {
		t.Fatalf("ledger %+v", recs[4])
	}
}
