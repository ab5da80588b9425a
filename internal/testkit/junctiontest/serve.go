package junctiontest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Options says how to start "junction serve".
type Options struct {
	// Config is the YAML config file's content; empty starts Junction on
	// its embedded defaults. Its server.addr and server.data_dir are
	// overridden by --addr (a free loopback port) and --data-dir.
	Config string
	// DataDir is the data directory; empty makes a fresh one. Start a
	// second process on the first one's DataDir to restart it on its data.
	DataDir string
	// Env is added to the child's hermetic environment ("NAME=value").
	Env []string
	// StartTimeout bounds the wait for /readyz (default 60s).
	StartTimeout time.Duration
}

// Process is a running "junction serve" child process.
type Process struct {
	// URL is its base URL, http://127.0.0.1:PORT.
	URL string
	// Addr is the address it listens on, 127.0.0.1:PORT.
	Addr string
	// DataDir is its data directory.
	DataDir string

	tb      testing.TB
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // cmd.Wait's, once done is closed
}

// Start runs "junction serve" with opts and waits until /readyz answers
// 200. When the test ends the process, if it still runs, gets SIGTERM
// (and SIGKILL 20 seconds later).
func Start(tb testing.TB, opts Options) *Process {
	tb.Helper()
	bin := Binary(tb)
	dir := tb.TempDir()
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(dir, "data")
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	args := []string{"serve", "--data-dir", opts.DataDir}
	if opts.Config != "" {
		path := filepath.Join(dir, "junction.yaml")
		if err := os.WriteFile(path, []byte(opts.Config), 0o600); err != nil {
			tb.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	var last error
	for try := range 5 { // a free port can be taken between picking and binding it
		port, err := freePort()
		if err != nil {
			tb.Fatal(err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		p := &Process{URL: "http://" + addr, Addr: addr, DataDir: opts.DataDir, tb: tb,
			logPath: filepath.Join(dir, fmt.Sprintf("serve-%d.log", try)), done: make(chan struct{})}
		if last = p.start(bin, append(args, "--addr", addr), opts); last == nil {
			return p
		}
		if !strings.Contains(p.Stderr(), "address already in use") {
			break
		}
	}
	tb.Fatal(last)
	return nil
}

func (p *Process) start(bin string, args []string, opts Options) error {
	logf, err := os.Create(p.logPath)
	if err != nil {
		return err
	}
	defer logf.Close() // the child holds its own descriptor
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = hermetic(opts.Env)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		return err
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	p.tb.Cleanup(p.shutdown)
	deadline := time.Now().Add(opts.StartTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		if resp, err := client.Get(p.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("junction serve exited before it was ready: %v\n%s", p.err, p.Stderr())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = p.cmd.Process.Kill()
			<-p.done
			return fmt.Errorf("junction serve was not ready within %s\n%s", opts.StartTimeout, p.Stderr())
		}
	}
}

// shutdown ends a process still running when its test ends: SIGTERM
// first, so that it stops the model servers it started (a SIGKILLed
// Junction leaves them running, to be adopted by its next start), then
// SIGKILL if it has not exited within 20 seconds.
func (p *Process) shutdown() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Stderr returns what the process has written so far (stdout and stderr).
func (p *Process) Stderr() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits up to timeout for the process to exit and returns its exit
// error (nil for status 0); it fails the test if it is still running.
func (p *Process) Wait(timeout time.Duration) error {
	p.tb.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.tb.Fatalf("junction serve (pid %d) still runs after %s\n%s", p.Pid(), timeout, p.Stderr())
		return nil
	}
}

// Stop sends SIGTERM and waits (up to 30s) for a graceful exit, failing
// the test if the exit status is not 0. It does nothing once exited.
func (p *Process) Stop() {
	p.tb.Helper()
	if p.Exited() {
		return
	}
	if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.tb.Fatal(err)
	}
	if err := p.Wait(30 * time.Second); err != nil {
		p.tb.Fatalf("junction serve exited with %v after SIGTERM\n%s", err, p.Stderr())
	}
}

// Kill sends SIGKILL (no chance to drain or flush anything, as in a crash)
// and waits for the process to be gone. Model servers it started keep
// running until a Junction on the same data adopts or stops them.
func (p *Process) Kill() {
	p.tb.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.tb.Fatal(err)
	}
	<-p.done
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Eventually polls ok every 20ms until it holds, failing the test with
// what if it does not within 30 seconds.
func Eventually(tb testing.TB, what string, ok func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
