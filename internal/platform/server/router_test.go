package server_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// twoUpstreams starts Junction with provider "openai" (primary) and
// provider "backup", each a fake, and a route over them.
func twoUpstreams(t *testing.T, primary, backup *fakeopenai.Server, route string) *junction {
	t.Helper()
	up := httptest.NewServer(backup)
	t.Cleanup(up.Close)
	return startWith(t, primary,
		fmt.Sprintf(`  - {name: backup, type: openai, base_url: "%s/v1"}`, up.URL),
		`  - {name: backup-mini, provider: backup, upstream_model: gpt-4o-mini}
routes:
`+route+`
router: {retry_backoff: 1ms, failure_threshold: 2, cooldown: 1m}`)
}

func TestFailoverToAnotherDeployment(t *testing.T) {
	var primaryCalls, backupCalls atomic.Int64
	primary := &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault {
		primaryCalls.Add(1)
		return fakeopenai.Fault{Status: 500}
	}}
	backup := &fakeopenai.Server{Reply: "from backup", Fault: func(*fakeopenai.Request) fakeopenai.Fault {
		backupCalls.Add(1)
		return fakeopenai.Fault{}
	}}
	// The primary has all the weight: it is tried first every time.
	j := twoUpstreams(t, primary, backup, `  - {name: chat, deployments: [{model: gpt-4o-mini, weight: 1000000}, {model: backup-mini, weight: 1}]}`)
	body := `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`
	status, hdr, b := j.do("POST", "/v1/chat/completions", adminKey, body)
	if status != 200 || !strings.Contains(string(b), "from backup") {
		t.Fatalf("%d %s", status, b)
	}
	if hdr.Get("X-Junction-Route") != "chat" || hdr.Get("X-Junction-Deployment") != "backup-mini" || hdr.Get("X-Junction-Attempts") != "2" ||
		!strings.Contains(hdr.Get("X-Junction-Route-Reason"), "after 502 from openai") {
		t.Fatalf("route headers %v", hdr)
	}
	// Streams fail over too, before their first byte.
	status, _, b = j.do("POST", "/v1/chat/completions", adminKey, `{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 || !strings.Contains(string(b), "[DONE]") || strings.Count(string(b), `"role":"assistant"`) != 1 {
		t.Fatalf("stream failover: %d %s", status, b)
	}
	// Two consecutive failures put the primary in cooldown: the next
	// request goes straight to the backup.
	before := primaryCalls.Load()
	status, hdr, _ = j.do("POST", "/v1/chat/completions", adminKey, body)
	if status != 200 || primaryCalls.Load() != before || hdr.Get("X-Junction-Attempts") != "1" {
		t.Fatalf("cooling deployment was tried again: status %d, primary calls %d→%d, attempts %s", status, before, primaryCalls.Load(), hdr.Get("X-Junction-Attempts"))
	}
	recs := j.records(3)
	if recs[2].Attempts != 2 || recs[2].Route != "chat" || recs[2].Deployment != "backup-mini" || recs[2].Provider != "backup" || recs[2].Status != 200 {
		t.Fatalf("ledger record %+v", recs[2])
	}
}

func TestNoRetryOnClientErrorsOrAfterFirstByte(t *testing.T) {
	var backupCalls atomic.Int64
	var fault atomic.Pointer[fakeopenai.Fault]
	fault.Store(&fakeopenai.Fault{Status: 400, Message: "bad schema"})
	primary := &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault { return *fault.Load() }}
	backup := &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault { backupCalls.Add(1); return fakeopenai.Fault{} }}
	j := twoUpstreams(t, primary, backup, `  - {name: chat, deployments: [{model: gpt-4o-mini, weight: 1000000}, {model: backup-mini, weight: 1}]}`)
	status, _, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`)
	if status != 400 || !strings.Contains(string(b), "bad schema") || backupCalls.Load() != 0 {
		t.Fatalf("a 400 must not be retried elsewhere: %d %s, backup calls %d", status, b, backupCalls.Load())
	}
	// A stream cut after its first bytes reached the client is completed
	// by the backup (asked again; only what extends the text sent is
	// forwarded): the client sees the answer once, whole.
	fault.Store(&fakeopenai.Fault{CutAfter: 2})
	status, _, b = j.do("POST", "/v1/chat/completions", adminKey, `{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 || strings.Contains(string(b), `data: {"error"`) || !strings.Contains(string(b), "[DONE]") || backupCalls.Load() != 1 ||
		sseText(t, b) != "Hello from the fake upstream. Junction forwarded this." {
		t.Fatalf("cut stream: %s (backup calls %d)", b, backupCalls.Load())
	}
}

func TestFallbackChainAndRateLimit(t *testing.T) {
	primary := &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault {
		return fakeopenai.Fault{Status: 429, RetryAfter: "30"}
	}}
	backup := &fakeopenai.Server{Reply: "fallback answer"}
	j := twoUpstreams(t, primary, backup, `  - {name: premium, deployments: [{model: backup-mini}]}
  - {name: chat, deployments: [{model: gpt-4o-mini}], fallbacks: [premium]}`)
	status, hdr, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 || !strings.Contains(string(b), "fallback answer") {
		t.Fatalf("%d %s", status, b)
	}
	if hdr.Get("X-Junction-Route") != "premium" || !strings.Contains(hdr.Get("X-Junction-Route-Reason"), "fallback from chat") {
		t.Fatalf("headers %v", hdr)
	}
	// With the fallback gone too, the client gets the upstream's 429 and
	// its Retry-After.
	j2 := twoUpstreams(t, primary, &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault { return fakeopenai.Fault{Status: 429, RetryAfter: "30"} }},
		`  - {name: chat, deployments: [{model: gpt-4o-mini}, {model: backup-mini}]}`)
	status, hdr, _ = j2.do("POST", "/v1/chat/completions", adminKey, `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`)
	if status != 429 || hdr.Get("Retry-After") != "30" || hdr.Get("X-Junction-Attempts") != "2" {
		t.Fatalf("%d %v", status, hdr)
	}
	// Both are now cooling down for Retry-After; a request still gets an
	// answer attempt rather than a refusal.
	status, _, _ = j2.do("POST", "/v1/chat/completions", adminKey, `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`)
	if status != 429 {
		t.Fatalf("all cooling: %d", status)
	}
}

func TestTimeoutFailsOver(t *testing.T) {
	primary := &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault { return fakeopenai.Fault{Delay: 10 * time.Second} }}
	backup := &fakeopenai.Server{Reply: "in time"}
	up := httptest.NewServer(backup)
	t.Cleanup(up.Close)
	j := startWith(t, primary,
		fmt.Sprintf(`  - {name: backup, type: openai, base_url: "%s/v1"}
  - {name: slowprov, type: openai, base_url: "%s/v1", timeout: 100ms}`, up.URL, strings.TrimSuffix(j0URL(t, primary), "/v1")),
		`  - {name: backup-mini, provider: backup, upstream_model: gpt-4o-mini}
  - {name: slow, provider: slowprov, upstream_model: gpt-4o-mini}
routes:
  - {name: chat, deployments: [{model: slow, weight: 1000000}, {model: backup-mini, weight: 1}]}
router: {retry_backoff: 1ms}`)
	status, hdr, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 || !strings.Contains(string(b), "in time") || !strings.Contains(hdr.Get("X-Junction-Route-Reason"), "after 504 from slowprov") {
		t.Fatalf("%d %v %s", status, hdr, b)
	}
}

// j0URL serves fake on a new loopback server and returns its URL + /v1.
func j0URL(t *testing.T, fake *fakeopenai.Server) string {
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}
