package server_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

func TestPromptRouterPicksByDifficultyAndReportsSavings(t *testing.T) {
	j, _, _ := pricedPair(t, `  - name: smart
    type: prompt_router
    threshold: 0.7
    deployments: [{model: dear, quality: 0.9}, {model: cheap, quality: 0.45}]
`)
	easy := `{"model":"smart","messages":[{"role":"user","content":"What is the capital of France?"}]}`
	status, hdr, b := j.do("POST", "/v1/chat/completions", adminKey, easy)
	if status != 200 || hdr.Get("X-Junction-Deployment") != "cheap" || !strings.Contains(hdr.Get("X-Junction-Route-Reason"), "prompt_router: difficulty") {
		t.Fatalf("easy prompt: %d %v %s", status, hdr, b)
	}
	hard := `{"model":"smart","max_tokens":4000,"messages":[{"role":"user","content":` + jsonString(
		"Prove step by step that the integral of x^2 from 0 to 3 equals 9, then write a Go function that computes "+
			"definite integrals numerically with Simpson's rule, explain its error bound, and finally derive the "+
			"derivative of sin(x)*e^x. ```go\nfunc f(x float64) float64 { return x*x }\n```") + `}]}`
	status, hdr, b = j.do("POST", "/v1/chat/completions", adminKey, hard)
	if status != 200 || hdr.Get("X-Junction-Deployment") != "dear" {
		t.Fatalf("hard prompt: %d %v %s", status, hdr, b)
	}

	// The cheap answer's record carries what the strongest candidate would
	// have cost; the report sums the savings.
	recs := j.records(2)
	cheap := recs[1]
	if cheap.CounterfactualUSD == nil || cheap.CostUSD == nil || *cheap.CounterfactualUSD <= *cheap.CostUSD {
		t.Fatalf("counterfactual %v cost %v", cheap.CounterfactualUSD, cheap.CostUSD)
	}
	wantSaved := *cheap.CounterfactualUSD - *cheap.CostUSD
	_, _, b = j.do("GET", "/api/v1/usage?group_by=route", adminKey, "")
	var rep admin.UsageResponse
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if math.Abs(rep.Total.SavedUSD-wantSaved) > 1e-12 || rep.Total.RoutedCounterfactualUSD <= 0 {
		t.Fatalf("saved %v, want %v: %s", rep.Total.SavedUSD, wantSaved, b)
	}
	// The feedback API is wired (labels need an embeddings model: 502 here).
	if status, _, _ := j.do("GET", "/api/v1/feedback", adminKey, ""); status != 200 {
		t.Fatalf("feedback stats: %d", status)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestAdvisorUsesConfiguredPrices: a model priced in the config is priced
// the same by the advisor as by the ledger.
func TestAdvisorUsesConfiguredPrices(t *testing.T) {
	j := start(t, &fakeopenai.Server{}, "")
	// "priced" costs $1 in and $2 out per 1K tokens (server_test.go):
	// 10 requests/day × (100 × 1 + 50 × 2) / 1000 = $2 a day, $60 in 30 days.
	status, _, b := j.do("POST", "/api/v1/advisor", adminKey, `{"days":30,"traffic":{"requests_per_day":10,"avg_input_tokens":100,"avg_output_tokens":50},
		"options":[{"kind":"on_demand","model":"priced"}]}`)
	// Before the fix the advisor knew only the built-in catalog and
	// refused the model as unpriced.
	if status != 200 || !strings.Contains(string(b), `"monthly_usd": 60.00`) {
		t.Fatalf("%d %s", status, b)
	}
}
