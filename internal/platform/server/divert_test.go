package server_test

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// TestContextAndPolicyFallbacks: a request too long for the small model
// goes to the route's context fallback; a refusal goes to its policy
// fallback; neither is retried on the route's other deployments.
func TestContextAndPolicyFallbacks(t *testing.T) {
	var smallCalls atomic.Int64
	fake := &fakeopenai.Server{Record: true, ReplyFor: func(model string) string { return "answer from " + model }, Fault: func(r *fakeopenai.Request) fakeopenai.Fault {
		if r.Body["model"] != "small-v1" {
			return fakeopenai.Fault{}
		}
		smallCalls.Add(1)
		content := r.Raw
		switch {
		case strings.Contains(string(content), "LONG"):
			return fakeopenai.Fault{Status: 400, Message: "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens."}
		case strings.Contains(string(content), "TOUCHY"):
			return fakeopenai.Fault{FinishReason: "content_filter"}
		}
		return fakeopenai.Fault{}
	}}
	j := start(t, fake, `  - {name: small, provider: openai, upstream_model: small-v1, price: {input_per_1k: 0.0001, output_per_1k: 0.0001}}
  - {name: long, provider: openai, upstream_model: long-v1}
  - {name: other, provider: openai, upstream_model: other-v1}
routes:
  - {name: chat, deployments: [{model: small}], context_fallbacks: [long], policy_fallbacks: [other]}
router: {retry_backoff: 1ms}`)
	ask := func(content string) (int, string, string) {
		status, hdr, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"chat","messages":[{"role":"user","content":"`+content+`"}]}`)
		return status, hdr.Get("X-Junction-Deployment") + " | " + hdr.Get("X-Junction-Route-Reason"), string(b)
	}
	status, how, b := ask("LONG prompt")
	if status != 200 || !strings.Contains(b, "answer from long-v1") || !strings.Contains(how, "context fallback from chat") {
		t.Fatalf("context: %d %s %s", status, how, b)
	}
	status, how, b = ask("TOUCHY prompt")
	if status != 200 || !strings.Contains(b, "answer from other-v1") || !strings.Contains(how, "policy fallback from chat") {
		t.Fatalf("policy: %d %s %s", status, how, b)
	}
	status, how, _ = ask("plain prompt")
	if status != 200 || !strings.HasPrefix(how, "small") {
		t.Fatalf("plain: %d %s", status, how)
	}
	// The refused answer is in the ledger as an attempt of its own.
	recs := j.records(4)
	found := false
	for _, r := range recs {
		if strings.HasSuffix(r.RequestID, ".1") && r.Deployment == "small" {
			found = true
		}
	}
	if !found || smallCalls.Load() != 3 {
		t.Fatalf("refused attempt not recorded (%d small calls): %+v", smallCalls.Load(), recs)
	}
}
