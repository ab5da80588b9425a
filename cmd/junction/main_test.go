package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
	"github.com/junctionhq/junction/internal/testkit/junctiontest"
)

// The tests of this package run the real junction binary: "junction
// serve" as a child process (through internal/testkit/junctiontest) and the CLI's
// commands as child processes against it.
func TestMain(m *testing.M) { os.Exit(junctiontest.Run(m)) }

const adminKey = "cli-test-admin-key-0123456789"

// upstream is a fake OpenAI API whose every chat call reports 12 prompt
// and 9 completion tokens.
func upstream(t *testing.T) string {
	t.Helper()
	up := httptest.NewServer(&fakeopenai.Server{Reply: "hello there", PromptTokens: 12, CompletionTokens: 9})
	t.Cleanup(up.Close)
	return up.URL
}

// gatewayConfig is a config with one priced model, "small", on the fake
// upstream at up ($1 and $2 per 1K tokens: $0.030 a call), and hosting
// off; extra is appended.
func gatewayConfig(up, extra string) string {
	return fmt.Sprintf(`
auth: {admin_key: %q}
log: {level: warn}
ledger: {flush_interval: 5ms}
hosting: {disabled: true}
providers:
  - {name: fake, type: openai, base_url: "%s/v1", api_key: sk-up}
models:
  - {name: small, provider: fake, upstream_model: m1, price: {input_per_1k: 1, output_per_1k: 2}}
%s`, adminKey, up, extra)
}

// cli runs "junction ARGS..." against the server at url with the admin
// key in JUNCTION_ADMIN_KEY and stdin as its input; it fails the test
// unless the command exits 0, and returns its stdout.
func cli(t *testing.T, url, stdin string, args ...string) string {
	t.Helper()
	stdout, stderr, err := runCLI(t, url, adminKey, stdin, args...)
	if err != nil {
		t.Fatalf("junction %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// cliFails runs "junction ARGS..." as key and returns its stderr; it
// fails the test unless the command exits 1.
func cliFails(t *testing.T, url, key string, args ...string) string {
	t.Helper()
	stdout, stderr, err := runCLI(t, url, key, "", args...)
	if code := exitCode(err); code != 1 {
		t.Fatalf("junction %s: exit %d (%v), want 1\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, err, stdout, stderr)
	}
	return stderr
}

func runCLI(t *testing.T, url, key, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	env := []string{"JUNCTION_URL=" + url}
	if key != "" {
		env = append(env, "JUNCTION_ADMIN_KEY="+key)
	}
	cmd := junctiontest.Command(t, env, args...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// exitCode is a finished command's exit status (-1 if it did not run).
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// decode unmarshals the JSON a command printed into out.
func decode(t *testing.T, printed string, out any) {
	t.Helper()
	if err := json.Unmarshal([]byte(printed), out); err != nil {
		t.Fatalf("%v: %s", err, printed)
	}
}

// chat sends one chat completion (max_tokens 10) for model with key and returns the
// status and body; status 0 and the error when it got no answer.
func chat(url, key, model string) (int, string) {
	req, _ := http.NewRequest("POST", url+"/v1/chat/completions",
		strings.NewReader(`{"model":"`+model+`","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
