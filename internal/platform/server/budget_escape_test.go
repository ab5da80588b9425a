package server_test

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// TestHugeMaxTokensCannotEscapeAHardBudget sends max_tokens = 2^60, which
// once wrapped the worst case of its output to $0 (2^60 × 2,000,000 Nanos
// is 0 modulo 2^64) and let the concurrent requests past a hard budget on
// their prompt's cost alone ($0.018 each, against a $0.50 limit). On a model with a known output limit it is a 400 that
// says the limit; on one without, the worst case saturates and the hard
// budget refuses it. Either way nothing reaches the upstream.
func TestHugeMaxTokensCannotEscapeAHardBudget(t *testing.T) {
	var calls atomic.Int64
	fake := &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault {
		calls.Add(1)
		return fakeopenai.Fault{}
	}}
	j := startGov(t, fake, t.TempDir(), `budgets: [{scope: "team:ml", period: daily, limit_usd: 0.5, mode: hard}]`)
	_, secret := j.teamKey("ml-app", "ml", "")
	body := func(model string) string {
		return `{"model":"` + model + `","max_tokens":1152921504606846976,"messages":[{"role":"user","content":"hi"}]}`
	}

	status, _, b := j.do("POST", "/v1/chat/completions", secret, body("capped"))
	if e := decodeError(t, b); status != 400 || !strings.Contains(e.Error.Message, "output limit is 4096 tokens") {
		t.Fatalf("max_tokens 2^60 on a model with a 4096-token limit: %d %s", status, b)
	}
	if status, _, b := j.do("POST", "/v1/chat/completions", secret,
		`{"model":"capped","max_tokens":4097,"messages":[{"role":"user","content":"hi"}]}`); status != 400 {
		t.Fatalf("max_tokens one above the limit: %d %s", status, b)
	}

	const n = 40
	var wg sync.WaitGroup
	statuses := make([]int, n)
	bodies := make([][]byte, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _, bodies[i] = j.do("POST", "/v1/chat/completions", secret, body("priced"))
		}()
	}
	wg.Wait()
	for i := range n {
		if e := decodeError(t, bodies[i]); statuses[i] != 429 || e.Error.Type != "insufficient_quota" {
			t.Fatalf("request %d with max_tokens 2^60 and no output limit: %d %s", i, statuses[i], bodies[i])
		}
	}
	if c := calls.Load(); c != 0 {
		t.Fatalf("%d requests reached the upstream", c)
	}
	if recs := j.records(n + 2); ledgerCost(recs) != 0 {
		t.Fatalf("the ledger holds $%.6f", ledgerCost(recs))
	}
}
