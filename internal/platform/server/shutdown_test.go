package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/platform/server"
	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// TestShutdownDrainsLedger stops the server right after a burst of
// requests and checks that every one of them reached the database: the
// ledger's flush interval is an hour, so only the drain on shutdown can
// have written them.
func TestShutdownDrainsLedger(t *testing.T) {
	t.Setenv("JUNCTION_TEST_FLUSH", "1h")
	j := start(t, &fakeopenai.Server{}, "")
	const n = 40
	for i := 0; i < n; i++ {
		if status, _, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`); status != 200 {
			t.Fatalf("%d %s", status, b)
		}
	}
	j.stop()
	db, err := store.Open(context.Background(), filepath.Join(j.dataDir, "junction.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := count(t, db); got != n {
		t.Fatalf("%d usage records after shutdown, want %d", got, n)
	}
}

func count(t *testing.T, db *sql.DB) int {
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM usage`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// parts lists the part= of the log lines whose message is msg, in order.
func (l *lockedBuffer) parts(msg string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if !strings.Contains(line, " msg="+msg+" ") {
			continue
		}
		_, part, _ := strings.Cut(line, " part=")
		out = append(out, strings.Trim(part, `"`))
	}
	return out
}

// TestShutdownClosesInReverseOrderOnce serves one request and shuts down,
// then closes again: every part opened (database, ledger, hosting,
// governance, the workers, the HTTP server...) is closed once, the last
// opened first, and the second Close does nothing.
func TestShutdownClosesInReverseOrderOnce(t *testing.T) {
	dir := t.TempDir()
	up := httptest.NewServer(&fakeopenai.Server{})
	defer up.Close()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
server: {addr: "127.0.0.1:0", data_dir: %q, shutdown_timeout: 5s}
auth: {admin_key: %q}
providers: [{name: openai, type: openai, base_url: "%s/v1"}]
models: [{name: m, provider: openai}]
`, dir, adminKey, up.URL)), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	j := &junction{t: t, url: "http://" + srv.Addr()}
	if status, _, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`); status != 200 {
		t.Fatalf("%d %s", status, b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	opened, closed := logs.parts("opened"), logs.parts("closed")
	for _, want := range []string{"database", "ledger", "hosting", "governance", "listener", "autoscaler", "async queue", "batch engine", "http server"} {
		if !slices.Contains(opened, want) {
			t.Errorf("%s was not among the parts opened: %v", want, opened)
		}
	}
	slices.Reverse(opened)
	if !slices.Equal(closed, opened) {
		t.Fatalf("closed %v\nwant the reverse of the opening order, each once: %v", closed, opened)
	}
	if err := srv.Close(context.Background()); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	if again := logs.parts("closed"); len(again) != len(closed) {
		t.Errorf("a second Close closed again: %v", again[len(closed):])
	}
}

// TestNewThatFailsClosesWhatItOpened makes New fail late (Redis for the
// governor is unreachable, found after the database, the ledger and the
// hosting runtime are open), then starts again on the same data directory
// without Redis: the first attempt must have let go of the runtime's
// lock, or the second could not take it.
func TestNewThatFailsClosesWhatItOpened(t *testing.T) {
	dir := t.TempDir()
	parse := func(extra string) *config.Config {
		cfg, err := config.Parse([]byte(fmt.Sprintf(`
server: {addr: "127.0.0.1:0", data_dir: %q}
auth: {admin_key: %q}
%s`, dir, adminKey, extra)), os.Getenv)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := server.New(context.Background(), parse(`governance: {redis_url: "redis://`+closedAddr(t)+`"}`), log); err == nil || !strings.Contains(err.Error(), "redis") {
		t.Fatalf("New with Redis unreachable: %v, want its error", err)
	}
	srv, err := server.New(context.Background(), parse(""), log)
	if err != nil {
		t.Fatalf("New after a failed New on the same data directory: %v", err)
	}
	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestNewChecksTheSectionsBeforeOpeningAnything: a config parsed without
// the server's checks still has its guardrails and governance sections
// checked, by their packages' rules, before New opens the data directory.
func TestNewChecksTheSectionsBeforeOpeningAnything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
server: {addr: "127.0.0.1:0", data_dir: %q}
guardrails: [{id: g, word_policy: {words: [{text: ""}]}}]
governance: {rate_limits: [{scope: "team:x"}], limits: oops}
`, dir)), os.Getenv)
	if err != nil {
		t.Fatalf("config alone does not know the sections' rules: %v", err)
	}
	_, err = server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var verr *config.ValidationError
	if !errors.As(err, &verr) || !strings.Contains(err.Error(), "guardrails[0].word_policy.words[0].text: required") ||
		!strings.Contains(err.Error(), "field limits not found") {
		t.Fatalf("New: %v, want both sections' problems", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("New made the data directory before refusing the config: %v", err)
	}
	if err := cfg.Validate(server.ConfigChecks()...); err == nil {
		t.Error("Validate with the server's checks passed the same config")
	}
}
