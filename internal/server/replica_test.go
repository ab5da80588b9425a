package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/config"
	"github.com/junctionhq/junction/internal/server"
)

// serveForTest runs Junction in this process as "junction serve --config
// PATH" would, printing "listening ADDR" once it listens, until SIGTERM.
// The replica tests run several of these as real child processes.
func serveForTest(path string) int {
	cfg, err := config.Load(path, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := srv.Listen(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("listening %s\n", srv.Addr())
	if err := srv.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// replica is a Junction running as a child process.
type replica struct {
	url  string
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

// startReplica starts a Junction child process on yaml (its addr must be
// 127.0.0.1:0) and waits until it listens.
func startReplica(t testing.TB, yaml string) *replica {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "junction.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "serve-for-test", path)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &replica{cmd: cmd, done: make(chan error, 1), log: logf}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				addr <- a
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() { r.done <- cmd.Wait() }()
	select {
	case a := <-addr:
		r.url = "http://" + a
	case err := <-r.done:
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("replica exited before listening: %v\n%s", err, b)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("replica did not start listening within 30s")
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop sends SIGTERM and waits for a graceful exit; it is safe to call
// twice.
func (r *replica) stop(t testing.TB) {
	if r.cmd.ProcessState != nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			b, _ := os.ReadFile(r.log.Name())
			t.Errorf("replica %s exited with %v\n%s", r.url, err, b)
		}
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		t.Errorf("replica %s did not stop within 20s", r.url)
	}
}

// waitABit is the poll interval of tests that wait for the ledger.
func waitABit() { time.Sleep(25 * time.Millisecond) }
