package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/platform/logbuf"
	"github.com/junctionhq/junction/internal/platform/logline"
	"github.com/junctionhq/junction/internal/platform/server"
	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

const (
	// adminKey is the configured admin key, the bearer token of the plain
	// lane (no limits, no budget, no guardrail: an admin key is governed
	// by no scope the config names).
	adminKey = "jk-bench-admin-key-0123456789"
	// model is the name clients ask for; Junction maps it to the fake.
	model = "bench-model"
	// governedModel is the governed lane's model: the same upstream, with
	// the guardrail benchGuard checking every request and answer.
	governedModel = "bench-governed"
	// governedTags are the governed lane's request tags (X-Junction-Tags).
	governedTags = "feature=chat,env=bench"
)

// startFake serves a zero-latency fake upstream on a loopback port. Its
// reply has the given number of words, one streamed chunk each, and every
// streamed content chunk carries its send time.
func startFake(words int) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	reply := make([]string, words)
	for i := range reply {
		reply[i] = fmt.Sprintf("word%d", i+1)
	}
	fake := &fakeopenai.Server{Reply: strings.Join(reply, " "), Stamp: true}
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	// Goroutines inherit profiler labels, so every connection the fake
	// serves is labelled as its own.
	go pprof.Do(context.Background(), roleLabel("upstream"), func(context.Context) { srv.Serve(ln) })
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// configYAML is the gateway's config: one provider, the fake, and one
// priced model, so every request is resolved, priced, metered and written
// to the ledger as in production. Logging, the ledger and every other
// setting keep their defaults; extra is appended (YAML top-level keys).
//
// The governed lane's model has a guardrail with one regex, and its key
// (made by governedKey) a team whose monthly budget is hard, and RPM and
// TPM limits: all far above what a run sends, so that nothing is refused
// and what is measured is the cost of checking.
func configYAML(addr, dataDir, upstream, extra string) string {
	return fmt.Sprintf(`
server: {addr: %q, data_dir: %q}
auth: {admin_key: %q}
providers:
  - {name: fake, type: openai, base_url: "%s/v1", api_key: sk-bench}
models:
  - {name: %s, provider: fake, upstream_model: bench-upstream, price: {input_per_1k: 0.00015, output_per_1k: 0.0006}}
  - {name: %s, provider: fake, upstream_model: bench-upstream, price: {input_per_1k: 0.00015, output_per_1k: 0.0006}, guardrail: bench-guard}
guardrails:
  - id: bench-guard
    name: bench-guard
    blocked_input_messaging: "Blocked."
    blocked_outputs_messaging: "Blocked."
    sensitive_information_policy:
      regexes: [{name: TICKET, pattern: '\bTCK-\d{4}\b', action: BLOCK}]
governance:
  budgets:
    - {scope: "team:bench", period: monthly, limit_usd: 1000000000, mode: hard}
%s`, addr, dataDir, adminKey, upstream, model, governedModel, extra)
}

// governedKey creates the governed lane's key through the admin API: team
// bench (whose budget is hard), RPM and TPM limits. It returns the secret.
func governedKey(ctx context.Context, url string) (string, error) {
	secret, _, err := createGovernedKey(ctx, url)
	return secret, err
}

// createGovernedKey is governedKey, returning the key's id beside its
// secret.
func createGovernedKey(ctx context.Context, url string) (secret, id string, err error) {
	body := `{"name":"bench-governed","tags":{"team":"bench","app":"bench"},"rpm":1000000000,"tpm":1000000000000}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/v1/keys", strings.NewReader(body))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	var out struct {
		Key string `json:"key"`
		ID  string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated || out.Key == "" {
		return "", "", fmt.Errorf("creating the governed lane's key: HTTP %d, %v", resp.StatusCode, err)
	}
	return out.Key, out.ID, nil
}

// gateway is a running Junction or reference proxy.
type gateway struct {
	URL     string
	dataDir string
	// pid is the child process's, or 0 when the gateway runs in the
	// harness.
	pid  int
	stop func() error
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startProcess runs `junction serve` as a child process, so that the
// gateway has its own runtime and scheduler as in production, sharing
// only the CPUs with the load generator and the fake. bin is a built
// junction binary; its log (stderr) goes to a file in dir. procs, when
// positive, is its GOMAXPROCS; extraYAML is added to its config.
func startProcess(ctx context.Context, bin, dir, upstream string, procs int, extraYAML string) (*gateway, error) {
	return startConfigured(ctx, bin, dir, procs, func(addr, dataDir string) string {
		return configYAML(addr, dataDir, upstream, extraYAML)
	})
}

// startConfigured is startProcess with the config config(addr, dataDir)
// returns.
func startConfigured(ctx context.Context, bin, dir string, procs int, config func(addr, dataDir string) string) (*gateway, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(dir, "data")
	cfgPath := filepath.Join(dir, "junction.yaml")
	if err := os.WriteFile(cfgPath, []byte(config(addr, dataDir)), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Env = childEnv(procs)
	g, err := startChild(ctx, cmd, addr, filepath.Join(dir, "junction.stderr"))
	if err != nil {
		return nil, err
	}
	g.dataDir = dataDir
	return g, nil
}

// childEnv is the harness's environment with GOMAXPROCS set to procs when
// it is positive.
func childEnv(procs int, extra ...string) []string {
	env := append(os.Environ(), extra...)
	if procs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(procs))
	}
	return env
}

// startChild starts cmd, which serves HTTP on addr, sending its output to
// logPath, and waits until it is ready.
func startChild(ctx context.Context, cmd *exec.Cmd, addr, logPath string) (*gateway, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	g := &gateway{URL: "http://" + addr, pid: cmd.Process.Pid}
	g.stop = func() error {
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			return err
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			return fmt.Errorf("%s did not shut down within 30s; killed", filepath.Base(cmd.Path))
		}
	}
	if err := waitReady(ctx, g.URL, exited); err != nil {
		g.stop()
		b, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%w\n%s's output:\n%s", err, filepath.Base(cmd.Path), b)
	}
	return g, nil
}

// startInProcess runs Junction inside the harness, for -cpuprofile. Its
// logger is the JSON logger `junction serve` uses, batched as there,
// writing to the log file in the data directory.
func startInProcess(ctx context.Context, dir, upstream string) (*gateway, error) {
	dataDir := filepath.Join(dir, "data")
	cfg, err := config.Parse([]byte(configYAML("127.0.0.1:0", dataDir, upstream, "")), func(string) string { return "" })
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dataDir, cfg.Log.File)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	// Batched as `junction serve` batches it, so a profile shows the
	// access log's cost in production, not a write(2) per line.
	logw := logbuf.New(logf, 100*time.Millisecond)
	log := slog.New(logline.NewJSONHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// Every goroutine Junction starts (its connections, its upstream
	// client's, the ledger writer) inherits this label, so a CPU profile
	// can be cut down to Junction with -tagfocus role=junction.
	sctx, cancel := context.WithCancel(context.Background())
	var srv *server.Server
	exited := make(chan error, 1)
	pprof.Do(sctx, roleLabel("junction"), func(sctx context.Context) {
		srv, err = server.New(sctx, cfg, log)
		if err == nil {
			err = srv.Listen()
		}
		if err == nil {
			go func() { exited <- srv.Serve(sctx); logw.Close(); logf.Close() }()
		}
	})
	if err != nil {
		cancel()
		logw.Close()
		logf.Close()
		return nil, err
	}
	g := &gateway{URL: "http://" + srv.Addr(), dataDir: dataDir}
	g.stop = func() error {
		cancel()
		return <-exited
	}
	if err := waitReady(ctx, g.URL, exited); err != nil {
		g.stop()
		return nil, err
	}
	return g, nil
}

// roleLabel labels the goroutines of one part of a run (loadgen,
// upstream, junction) in CPU profiles.
func roleLabel(role string) pprof.LabelSet { return pprof.Labels("role", role) }

// waitReady polls /readyz until Junction answers 200.
func waitReady(ctx context.Context, url string, exited <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited before it was ready: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready at %s within 30s", url)
		}
	}
}

// ledgerRecords counts the usage records in a stopped Junction's
// database.
func ledgerRecords(ctx context.Context, dataDir string) (int, error) {
	db, err := store.Open(ctx, filepath.Join(dataDir, "junction.db"))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM usage`).Scan(&n)
	return n, err
}

// buildJunction builds ./cmd/junction of the module that holds the
// working directory into dir.
func buildJunction(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "junction")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/junction")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/junction: %v\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot finds the directory holding go.mod, from the working
// directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; run from the repository")
		}
		dir = parent
	}
}
