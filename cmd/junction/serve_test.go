package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
	"github.com/junctionhq/junction/internal/testkit/junctiontest"
)

// TestServeOnEmbeddedDefaultsGeneratesAnAdminKeyOnce starts "junction
// serve" with no config, as the README's first command does: it prints a
// generated admin key, that key works for the CLI, and a restart on the
// same data neither prints another nor forgets the first.
func TestServeOnEmbeddedDefaultsGeneratesAnAdminKeyOnce(t *testing.T) {
	first := junctiontest.Start(t, junctiontest.Options{})
	key := generatedKey(first.Stderr())
	if key == "" {
		t.Fatalf("no generated admin key in the output:\n%s", first.Stderr())
	}
	var list struct{ Keys []keys.Key }
	stdout, stderr, err := runCLI(t, first.URL, key, "", "keys", "list", "--json")
	if err != nil {
		t.Fatalf("keys list with the generated key: %v\n%s", err, stderr)
	}
	decode(t, stdout, &list)
	if len(list.Keys) != 1 || !list.Keys[0].Admin || list.Keys[0].Name != "admin" {
		t.Fatalf("keys on a fresh start: %+v, want the one admin key", list.Keys)
	}
	first.Stop()

	again := junctiontest.Start(t, junctiontest.Options{DataDir: first.DataDir})
	if strings.Contains(again.Stderr(), "Generated an admin key") {
		t.Fatalf("a restart on the same data generated another admin key:\n%s", again.Stderr())
	}
	if _, stderr, err := runCLI(t, again.URL, key, "", "keys", "list"); err != nil {
		t.Fatalf("the first start's admin key stopped working after a restart: %v\n%s", err, stderr)
	}
}

// generatedKey finds the key serve prints on its first start: the
// indented line after "Generated an admin key".
func generatedKey(out string) string {
	_, after, ok := strings.Cut(out, "Generated an admin key")
	if !ok {
		return ""
	}
	for _, line := range strings.Split(after, "\n")[1:] {
		if k := strings.TrimSpace(line); k != "" {
			return k
		}
	}
	return ""
}

// TestServeFinishesInFlightRequestsOnSIGTERM sends SIGTERM to "junction
// serve" while a request waits on the upstream: the server stops taking
// new requests, answers the one in flight, writes its usage record and
// exits 0; the record is there after a restart on the same data.
func TestServeFinishesInFlightRequestsOnSIGTERM(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	fake := &fakeopenai.Server{Reply: "hello there", PromptTokens: 12, CompletionTokens: 9}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		fake.ServeHTTP(w, r)
	}))
	defer up.Close()
	defer close(release)
	j := junctiontest.Start(t, junctiontest.Options{Config: gatewayConfig(up.URL,
		"server: {shutdown_timeout: 30s}\n")})

	type result struct {
		status int
		body   string
	}
	done := make(chan result, 1)
	go func() { st, body := chat(j.URL, adminKey, "small"); done <- result{st, body} }()
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the request did not reach the upstream")
	}
	if err := j.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Shutdown has begun once the listener is closed: poll for that
	// rather than guess how long it takes.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(j.URL + "/healthz")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("serve still accepts connections 30s after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if j.Exited() {
		t.Fatalf("serve exited with a request in flight\n%s", j.Stderr())
	}
	release <- struct{}{}
	r := <-done
	if r.status != 200 || !strings.Contains(r.body, "hello there") {
		t.Fatalf("the request in flight at SIGTERM got %d %s", r.status, r.body)
	}
	if err := j.Wait(30 * time.Second); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM\n%s", err, j.Stderr())
	}

	again := junctiontest.Start(t, junctiontest.Options{Config: gatewayConfig(up.URL, ""), DataDir: j.DataDir})
	var usage admin.UsageResponse
	decode(t, cli(t, again.URL, "", "usage", "--since", "1h", "--json"), &usage)
	if usage.Total.Requests != 1 || usage.Total.InputTokens != 12 || usage.Total.OutputTokens != 9 {
		t.Fatalf("after the restart the ledger holds %+v, want the one request (12 in, 9 out)", usage.Total)
	}
}

// TestServeRefusesABadConfig runs "junction serve" on configs it must
// refuse: it exits 1 before listening and says what to fix.
func TestServeRefusesABadConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("providers:\n  - {name: a, type: openai, base_url: \"not a url\"}\nlog: {level: loud}\n"+
		"guardrails: [{id: g, word_policy: {words: [{text: \"\"}]}}]\ngovernance: {rate_limits: [{scope: \"team:x\"}]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		// The sections their own packages check are reported with the
		// rest, in one pass.
		{"invalid fields", []string{"--config", bad}, []string{"providers[0].base_url:", "log.level:",
			"guardrails[0].word_policy.words[0].text: required", "governance.rate_limits[0]: set rpm, tpm or both"}},
		{"missing file", []string{"--config", filepath.Join(dir, "none.yaml")}, []string{"none.yaml"}},
		{"bad flag", []string{"--addr", "no-port"}, []string{"server.addr:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := junctiontest.Command(t, nil, append([]string{"serve", "--data-dir", filepath.Join(dir, "data")}, tc.args...)...)
			out, err := cmd.CombinedOutput()
			if code := exitCode(err); code != 1 {
				t.Fatalf("exit %d (%v), want 1:\n%s", code, err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("the error does not name %q:\n%s", w, out)
				}
			}
		})
	}
}
