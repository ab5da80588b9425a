package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/platform/server"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

const adminKey = "test-admin-key-0123456789"

// junction is a real server on loopback in front of a fake upstream.
type junction struct {
	t       testing.TB
	url     string
	fake    *fakeopenai.Server
	cancel  context.CancelFunc
	done    chan error
	dataDir string
}

func start(t *testing.T, fake *fakeopenai.Server, extraModels string) *junction {
	t.Helper()
	return startWith(t, fake, "", extraModels)
}

// startWith adds providers and models (YAML list items) to the base config.
func startWith(t *testing.T, fake *fakeopenai.Server, extraProviders, extraModels string) *junction {
	t.Helper()
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`
server: {addr: "127.0.0.1:0", data_dir: %q, max_body_bytes: 65536, upstream_timeout: 2s, shutdown_timeout: 5s}
auth: {admin_key: %q}
log: {level: warn}
ledger: {flush_interval: "${JUNCTION_TEST_FLUSH:-5ms}"}
providers:
  - {name: openai, type: openai, base_url: "%s/v1", api_key: "sk-upstream"}
  - {name: dead, type: openai, base_url: "http://%s/v1"}
%s
models:
  - {name: dead-model, provider: dead}
  - {name: gpt-4o-mini, provider: openai, upstream_model: gpt-4o-mini-2024-07-18}
  - {name: local-llama, provider: openai, upstream_model: llama-3.1-8b}
  - {name: priced, provider: openai, upstream_model: my-model, price: {input_per_1k: 1, output_per_1k: 2}}
%s`, dir, adminKey, up.URL, closedAddr(t), extraProviders, extraModels)
	j := runYAML(t, yaml, dir)
	j.fake = fake
	return j
}

// runYAML runs Junction on a config whose data directory is dir, until the
// test ends.
func runYAML(t *testing.T, yaml, dir string) *junction {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		cancel()
		t.Fatal(err)
	}
	j := &junction{t: t, url: "http://" + srv.Addr(), cancel: cancel, done: make(chan error, 1), dataDir: dir}
	go func() { j.done <- srv.Serve(ctx) }()
	t.Cleanup(j.stop)
	return j
}

// closedAddr returns a loopback address nothing listens on. Port 1 is
// used rather than a freed ephemeral port, which a concurrent test
// process could take.
func closedAddr(*testing.T) string { return "127.0.0.1:1" }

func (j *junction) stop() {
	j.cancel()
	select {
	case err := <-j.done:
		if err != nil {
			j.t.Errorf("serve: %v", err)
		}
		j.done <- nil
	case <-time.After(10 * time.Second):
		j.t.Error("server did not shut down")
	}
}

// do sends a request with the given key and returns status, headers and body.
func (j *junction) do(method, path, key string, body string, hdr ...string) (int, http.Header, []byte) {
	j.t.Helper()
	req, _ := http.NewRequest(method, j.url+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		j.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// records polls the ledger until it holds n records, and returns them.
func (j *junction) records(n int) []ledger.Record {
	j.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, b := j.do("GET", "/api/v1/usage/records?limit=1000", adminKey, "")
		var out struct{ Records []ledger.Record }
		if err := json.Unmarshal(b, &out); err != nil {
			j.t.Fatalf("records: %v: %s", err, b)
		}
		if len(out.Records) >= n || time.Now().After(deadline) {
			if len(out.Records) != n {
				j.t.Fatalf("ledger holds %d records, want %d", len(out.Records), n)
			}
			return out.Records
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// createKey makes a key through the admin API.
func (j *junction) createKey(name string, tags map[string]string) (id, secret string) {
	j.t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "tags": tags})
	status, _, b := j.do("POST", "/api/v1/keys", adminKey, string(body))
	if status != http.StatusCreated {
		j.t.Fatalf("create key: %d %s", status, b)
	}
	var out struct{ ID, Key string }
	json.Unmarshal(b, &out)
	return out.ID, out.Key
}

type apiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func decodeError(t *testing.T, b []byte) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Message == "" {
		t.Fatalf("not an OpenAI error body: %s", b)
	}
	return e
}

func TestKeysLifecycle(t *testing.T) {
	j := start(t, &fakeopenai.Server{}, "")
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	if status, _, b := j.do("POST", "/v1/chat/completions", "", body); status != 401 || !strings.Contains(decodeError(t, b).Error.Message, "Authorization: Bearer") {
		t.Fatalf("no key: %d %s", status, b)
	}
	if status, _, _ := j.do("POST", "/v1/chat/completions", "jk-wrong", body); status != 401 {
		t.Fatalf("wrong key: %d", status)
	}
	id, secret := j.createKey("search", map[string]string{"team": "search"})
	if status, _, b := j.do("POST", "/v1/chat/completions", secret, body); status != 200 {
		t.Fatalf("new key: %d %s", status, b)
	}
	if status, _, _ := j.do("GET", "/api/v1/keys", secret, ""); status != 403 {
		t.Fatalf("a plain key reached the admin API: %d", status)
	}
	status, _, b := j.do("GET", "/api/v1/keys", adminKey, "")
	if status != 200 || strings.Contains(string(b), secret) || !strings.Contains(string(b), id) {
		t.Fatalf("list must show the key but never its secret: %s", b)
	}
	if status, _, _ := j.do("DELETE", "/api/v1/keys/"+id, adminKey, ""); status != 204 {
		t.Fatalf("revoke: %d", status)
	}
	if status, _, _ := j.do("POST", "/v1/chat/completions", secret, body); status != 401 {
		t.Fatalf("revoked key still works: %d", status)
	}
	if status, _, _ := j.do("DELETE", "/api/v1/keys/key_nope", adminKey, ""); status != 404 {
		t.Fatalf("revoke unknown: %d", status)
	}
}

func TestBadInput(t *testing.T) {
	j := start(t, &fakeopenai.Server{Record: true}, "")
	cases := []struct {
		name, body string
		status     int
		want       string
	}{
		{"malformed JSON", `{"model":`, 400, "not valid JSON"},
		{"missing model", `{"messages":[{"role":"user","content":"hi"}]}`, 400, "model: required"},
		{"missing messages", `{"model":"gpt-4o-mini"}`, 400, "messages: required"},
		{"wrong type", `{"model":"gpt-4o-mini","messages":"hi"}`, 400, "messages:"},
		{"bad role", `{"model":"gpt-4o-mini","messages":[{"role":"robot","content":"hi"}]}`, 400, "messages[0].role"},
		{"bad temperature", `{"model":"gpt-4o-mini","temperature":7,"messages":[{"role":"user","content":"hi"}]}`, 400, "temperature"},
		{"tool message without id", `{"model":"gpt-4o-mini","messages":[{"role":"tool","content":"x"}]}`, 400, "messages[0].tool_call_id"},
		{"unknown model", `{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}`, 404, "dead-model, gpt-4o-mini, local-llama, priced"},
		{"oversize", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 70000) + `"}]}`, 413, "max_body_bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, b := j.do("POST", "/v1/chat/completions", adminKey, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, b)
			}
			if e := decodeError(t, b); !strings.Contains(e.Error.Message, tc.want) {
				t.Fatalf("message %q does not contain %q", e.Error.Message, tc.want)
			}
		})
	}
	if n := len(j.fake.Requests()); n != 0 {
		t.Fatalf("bad requests reached the upstream %d times", n)
	}
	// Failed requests are in the ledger too (all but the 413, whose body
	// was never read, and none are priced).
	recs := j.records(len(cases))
	for _, r := range recs {
		if r.Status < 400 || r.CostUSD != nil && *r.CostUSD != 0 {
			t.Fatalf("bad-input record: %+v", r)
		}
	}
}

func TestUpstreamFaults(t *testing.T) {
	var fault atomic.Pointer[fakeopenai.Fault]
	fault.Store(&fakeopenai.Fault{})
	fake := &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault { return *fault.Load() }}
	j := start(t, fake, "")
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	cases := []struct {
		name       string
		fault      fakeopenai.Fault
		status     int
		retryAfter string
		want       string
	}{
		{"rate limited", fakeopenai.Fault{Status: 429, RetryAfter: "7", Message: "Rate limit reached"}, 429, "7", "Rate limit reached"},
		{"server error", fakeopenai.Fault{Status: 500}, 502, "", "provider openai"},
		{"overloaded", fakeopenai.Fault{Status: 503, RetryAfter: "2"}, 503, "2", "provider openai"},
		{"connection reset", fakeopenai.Fault{Reset: true}, 502, "", "provider openai"},
		{"garbage", fakeopenai.Fault{Garbage: true}, 502, "", "could not parse"},
		{"timeout", fakeopenai.Fault{Delay: 5 * time.Second}, 504, "", "provider openai"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fault.Store(&tc.fault)
			status, hdr, b := j.do("POST", "/v1/chat/completions", adminKey, body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, b)
			}
			if got := hdr.Get("Retry-After"); got != tc.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			if e := decodeError(t, b); !strings.Contains(e.Error.Message, tc.want) {
				t.Fatalf("message %q does not contain %q", e.Error.Message, tc.want)
			}
		})
	}
}

func TestStreamFailuresAreNeverSilent(t *testing.T) {
	var fault atomic.Pointer[fakeopenai.Fault]
	fault.Store(&fakeopenai.Fault{})
	fake := &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault { return *fault.Load() }}
	j := start(t, fake, "")
	body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	for _, f := range []fakeopenai.Fault{{CutAfter: 2}, {ErrorAfter: 2}} {
		fault.Store(&f)
		status, _, b := j.do("POST", "/v1/chat/completions", adminKey, body)
		if status != 200 {
			t.Fatalf("status %d", status)
		}
		s := string(b)
		if strings.Contains(s, "[DONE]") || strings.Contains(s, `"finish_reason":"stop"`) {
			t.Fatalf("a failed stream ended as if it succeeded:\n%s", s)
		}
		if !strings.Contains(s, `data: {"error":`) || !strings.Contains(s, "provider openai") {
			t.Fatalf("no error event naming the provider:\n%s", s)
		}
		if !strings.Contains(s, `"content":"Hello `) {
			t.Fatalf("chunks before the failure were not forwarded:\n%s", s)
		}
	}
	recs := j.records(2)
	for _, r := range recs {
		if r.Status != 502 || !r.Stream {
			t.Fatalf("stream failure recorded as %+v", r)
		}
	}
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	arrived := make(chan string, 1)
	fake := &fakeopenai.Server{Arrived: arrived, Fault: func(r *fakeopenai.Request) fakeopenai.Fault {
		return fakeopenai.Fault{Delay: time.Minute}
	}}
	j := start(t, fake, "")
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", j.url+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+adminKey)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	start := time.Now()
	cancel()
	<-errc
	recs := j.records(1)
	if recs[0].Status != 499 || recs[0].ErrorType != "client_closed" {
		t.Fatalf("record %+v, want status 499", recs[0])
	}
	// The fake's one-minute delay ended early only if the upstream call was cancelled.
	if time.Since(start) > 30*time.Second {
		t.Fatal("upstream call was not cancelled")
	}
}

func TestHealthAndMetrics(t *testing.T) {
	j := start(t, &fakeopenai.Server{}, "")
	for _, p := range []string{"/healthz", "/readyz"} {
		if status, _, b := j.do("GET", p, "", ""); status != 200 {
			t.Fatalf("%s: %d %s", p, status, b)
		}
	}
	j.do("POST", "/v1/chat/completions", adminKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	j.do("POST", "/v1/chat/completions", adminKey, `{"model":"local-llama","messages":[{"role":"user","content":"hi"}]}`)
	_, _, b := j.do("GET", "/metrics", "", "")
	m := string(b)
	for _, want := range []string{
		`junction_requests_total{model="gpt-4o-mini",provider="openai",status="200",surface="openai"} 1`,
		`junction_tokens_total{kind="input",model="gpt-4o-mini",provider="openai"} 12`,
		`junction_cost_usd_total{model="gpt-4o-mini",provider="openai"}`,
		`junction_unpriced_requests_total{model="local-llama",provider="openai"} 1`,
		`junction_request_duration_seconds_bucket`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
