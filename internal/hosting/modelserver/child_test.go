package modelserver

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// child is the server running as a real process: this test binary,
// re-executed with MODELSERVER_TEST_CHILD=1 so that TestMain runs Main.
type child struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{}
	code   int // valid once exited is closed

	mu  sync.Mutex
	log strings.Builder
}

// startChild starts the server process with extra environment (NAME=value)
// and flags. When listen is true it waits for the "listening" log line and
// fills url.
func startChild(t *testing.T, listen bool, env []string, args ...string) *child {
	t.Helper()
	args = append([]string{"--port", "0", "--model-dir", artifactDir, "--shutdown-timeout", "3s"}, args...)
	c := &child{cmd: exec.Command(os.Args[0], args...), exited: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), append([]string{"MODELSERVER_TEST_CHILD=1"}, env...)...)
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			c.log.WriteString(line + "\n")
			c.mu.Unlock()
			if _, rest, ok := strings.Cut(line, `msg="model server listening" addr=`); ok {
				a, _, _ := strings.Cut(rest, " ")
				addr <- a
			}
		}
		// All output is read; now the process may be reaped.
		err := c.cmd.Wait()
		c.code = 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			c.code = exit.ExitCode()
		}
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.exited
		if t.Failed() {
			t.Logf("server log:\n%s", c.logText())
		}
	})
	if listen {
		select {
		case a := <-addr:
			c.url = "http://" + a
		case <-c.exited:
			t.Fatalf("server exited with %d before listening:\n%s", c.code, c.logText())
		case <-time.After(10 * time.Second):
			t.Fatalf("server did not log its address:\n%s", c.logText())
		}
	}
	return c
}

func (c *child) logText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.String()
}

// wait returns the exit code, failing the test if the process outlives
// within.
func (c *child) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-c.exited:
		return c.code
	case <-time.After(within):
		t.Fatalf("server still running after %v:\n%s", within, c.logText())
		return -1
	}
}

func TestChildProcessLifecycle(t *testing.T) {
	c := startChild(t, true, []string{EnvStartupDelay + "=100ms", EnvFaults + "=1"})
	if got := pingStatus(c.url); got != http.StatusServiceUnavailable {
		t.Fatalf("ping before ready: %d", got)
	}
	waitFor(t, 10*time.Second, "ping 200", func() bool { return pingStatus(c.url) == http.StatusOK })
	r := do(t, "POST", c.url+"/invocations", "my card was charged twice", "Content-Type: text/plain")
	if r.status != 200 || !strings.Contains(r.body, `"label":"billing"`) {
		t.Fatalf("invocation: %d %q", r.status, r.body)
	}

	// SIGTERM with a request in flight: it is finished, then exit 0.
	inflight := make(chan reply, 1)
	go func() {
		r, err := send(context.Background(), "POST", c.url+"/invocations", `{"inputs": "the site is down"}`,
			"Content-Type: application/json", customAttributes+": delay_ms=400")
		if err != nil {
			r.body = err.Error()
		}
		inflight <- r
	}()
	waitFor(t, 5*time.Second, "the request to be in flight", func() bool { return serverStats(t, c.url).InFlight == 1 })
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the listener to close", func() bool { return pingStatus(c.url) == 0 })
	if r := <-inflight; r.status != 200 || !strings.Contains(r.body, `"label":"outage"`) {
		t.Fatalf("in-flight request: %d %q", r.status, r.body)
	}
	if code := c.wait(t, 5*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	if log := c.logText(); !strings.Contains(log, "shutting down") || !strings.Contains(log, "stopped") {
		t.Fatalf("log:\n%s", log)
	}
}

func TestChildCrashes(t *testing.T) {
	t.Run("fault=crash", func(t *testing.T) {
		c := startChild(t, true, []string{EnvFaults + "=1"})
		waitFor(t, 10*time.Second, "ping 200", func() bool { return pingStatus(c.url) == http.StatusOK })
		_, err := send(context.Background(), "POST", c.url+"/invocations", `{"inputs": "hi"}`,
			"Content-Type: application/json", customAttributes+": fault=crash")
		if err == nil {
			t.Fatal("the crashing request was answered")
		}
		if code := c.wait(t, 5*time.Second); code != CrashExitCode {
			t.Fatalf("exit code %d, want %d", code, CrashExitCode)
		}
	})
	t.Run("fault=crash without the switch", func(t *testing.T) {
		c := startChild(t, true, nil)
		waitFor(t, 10*time.Second, "ping 200", func() bool { return pingStatus(c.url) == http.StatusOK })
		for range 2 {
			r := do(t, "POST", c.url+"/invocations", `{"inputs": "hi"}`, "Content-Type: application/json", customAttributes+": fault=crash")
			if r.status != 200 {
				t.Fatalf("fault=crash without %s: %d %q", EnvFaults, r.status, r.body)
			}
		}
		select {
		case <-c.exited:
			t.Fatalf("the server exited:\n%s", c.logText())
		default:
		}
	})
	t.Run("crash after 2", func(t *testing.T) {
		c := startChild(t, true, []string{EnvCrashAfter + "=2"})
		waitFor(t, 10*time.Second, "ping 200", func() bool { return pingStatus(c.url) == http.StatusOK })
		if r := do(t, "POST", c.url+"/invocations", "hello", "Content-Type: text/plain"); r.status != 200 {
			t.Fatalf("first invocation: %d", r.status)
		}
		if _, err := send(context.Background(), "POST", c.url+"/invocations", "hello", "Content-Type: text/plain"); err == nil {
			t.Fatal("the second invocation was answered")
		}
		if code := c.wait(t, 5*time.Second); code != CrashExitCode {
			t.Fatalf("exit code %d", code)
		}
	})
}

func TestChildCannotStart(t *testing.T) {
	t.Run("exit at start", func(t *testing.T) {
		c := startChild(t, false, []string{EnvExitAtStart + "=7"})
		if code := c.wait(t, 10*time.Second); code != 7 {
			t.Fatalf("exit code %d, want 7", code)
		}
	})
	t.Run("missing artifact", func(t *testing.T) {
		c := startChild(t, false, nil, "--model-dir", t.TempDir())
		if code := c.wait(t, 10*time.Second); code != 1 || !strings.Contains(c.logText(), "model.json") {
			t.Fatalf("exit code %d, log:\n%s", code, c.logText())
		}
	})
	t.Run("bad knob", func(t *testing.T) {
		c := startChild(t, false, []string{EnvFailRate + "=lots"})
		if code := c.wait(t, 10*time.Second); code != 2 || !strings.Contains(c.logText(), EnvFailRate) {
			t.Fatalf("exit code %d, log:\n%s", code, c.logText())
		}
	})
}
