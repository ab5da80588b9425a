package server_test

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// TestHardBudgetSendsItsMaxTokens checks what docs/governance.md promises:
// under a hard budget a request that names no max_tokens is sent upstream
// with governance.default_max_tokens, so that the output its reservation
// assumed is the most it can get; plain and streamed alike. Under a soft
// budget the request goes as the client sent it.
func TestHardBudgetSendsItsMaxTokens(t *testing.T) {
	fake := &fakeopenai.Server{Record: true}
	j := startGov(t, fake, t.TempDir(), `
default_max_tokens: 300
budgets: [{scope: "model:priced", period: daily, limit_usd: 100, mode: hard}, {scope: "model:other", period: daily, limit_usd: 100, mode: soft}]`)
	msg := `"messages":[{"role":"user","content":"hi"}]`
	for _, body := range []string{`{"model":"priced",` + msg + `}`, `{"model":"priced","stream":true,` + msg + `}`, `{"model":"other",` + msg + `}`} {
		j.mustDo(200, "POST", "/v1/chat/completions", adminKey, body)
	}
	reqs := fake.Requests()
	if len(reqs) != 3 {
		t.Fatalf("upstream saw %d requests, want 3", len(reqs))
	}
	for i, want := range []any{float64(300), float64(300), nil} {
		got := reqs[i].Body["max_tokens"]
		if got == nil {
			got = reqs[i].Body["max_completion_tokens"]
		}
		if got != want {
			t.Errorf("request %d (%s, stream %v) went upstream with max_tokens %v, want %v", i, reqs[i].Body["model"], reqs[i].Body["stream"], got, want)
		}
	}
}

// TestWorstCasePricing checks the worst case a hard budget reserves, in
// the refusal that quotes it ("may cost up to"): the "hi" request with
// max_tokens 20 is bounded at 18 input and 20 output tokens.
//
//   - a plain model at $1 / $2 per 1K: 18 × $0.001 + 20 × $0.002 = $0.058;
//   - a model on an Anthropic provider, which bills prompt-cache writes:
//     input at the cache-write price, 1.25 × $1 by default ($0.0625), or
//     its configured cache_write_per_1k ($3.75: $0.1075);
//   - a cascade of two $1 / $2 steps with a $1 / $2 judge between them:
//     both steps ($0.058 each) and the judge, whose prompt holds the
//     question, the answer and a 512-token frame and which answers in 8
//     tokens (550 × $0.001 + 8 × $0.002 = $0.566): $0.682.
func TestWorstCasePricing(t *testing.T) {
	var calls atomic.Int64
	fake := &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault { calls.Add(1); return fakeopenai.Fault{} }}
	j := startGovWith(t, fake, t.TempDir(),
		`  - {name: claude, type: anthropic, base_url: "http://127.0.0.1:1", api_key: sk-ant}`,
		`  - {name: cachey, provider: claude, upstream_model: claude-x, price: {input_per_1k: 1, output_per_1k: 2}}
  - {name: cachey-priced, provider: claude, upstream_model: claude-y, price: {input_per_1k: 1, output_per_1k: 2, cache_write_per_1k: 3.75}}
  - {name: judgem, provider: openai, upstream_model: judge-model, price: {input_per_1k: 1, output_per_1k: 2}}
routes:
  - {name: casc, type: cascade, deployments: [{model: priced}, {model: other}], judge: {model: judgem, threshold: 0.7}}`,
		`budgets: [{scope: "global", period: daily, limit_usd: 0.01, mode: hard}]`)
	for _, tc := range []struct{ model, worst string }{
		{"priced", "$0.058"},
		{"cachey", "$0.0625"},
		{"cachey-priced", "$0.1075"},
		{"casc", "$0.682"},
	} {
		status, _, b := j.do("POST", "/v1/chat/completions", adminKey, hiBody(tc.model))
		e := decodeError(t, b)
		if status != 429 || e.Error.Type != "insufficient_quota" || !strings.HasSuffix(e.Error.Message, "may cost up to "+tc.worst) {
			t.Errorf("%s: %d %q, want a budget refusal quoting %s", tc.model, status, e.Error.Message, tc.worst)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d refused requests reached the upstream", n)
	}
}

// TestBudgetRefusesAStreamBeforeItStarts sends a streamed request past a
// hard budget: the client gets the refusal as a plain 429 JSON error (no
// stream was started), the upstream is not called, and the ledger records
// the refused stream.
func TestBudgetRefusesAStreamBeforeItStarts(t *testing.T) {
	var calls atomic.Int64
	fake := &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault { calls.Add(1); return fakeopenai.Fault{} }}
	j := startGov(t, fake, t.TempDir(), `budgets: [{scope: "model:priced", period: daily, limit_usd: 0.01, mode: hard}]`)
	status, hdr, b := j.do("POST", "/v1/chat/completions", adminKey,
		`{"model":"priced","stream":true,"max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`)
	e := decodeError(t, b)
	if status != 429 || e.Error.Type != "insufficient_quota" || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") ||
		hdr.Get("Retry-After") == "" {
		t.Fatalf("streamed request past a hard budget: %d %v %s", status, hdr, b)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the refused stream reached the upstream %d times", n)
	}
	recs := j.records(1)
	if r := recs[0]; !r.Stream || r.Status != 429 || r.ErrorType != "insufficient_quota" || r.OutputTokens != 0 {
		t.Fatalf("ledger record of the refused stream: %+v", r)
	}
}
