// Package redistest runs a real redis-server for tests: one per test
// binary, started on first use on a free loopback port and stopped when the
// binary's tests end (through Run). It is for tests only.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const redisInstall = "redis-server is not on PATH; these tests need a real Redis. " +
	"Install it (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis) and run again"

var testRedis struct {
	once sync.Once
	addr string
	err  error
	cmd  *exec.Cmd
	exit chan struct{}
	dir  string
}

// Run runs a package's tests and then stops the server, if one was
// started; call it from TestMain: os.Exit(redistest.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	if r := &testRedis; r.cmd != nil {
		_ = r.cmd.Process.Kill()
		<-r.exit
		_ = os.RemoveAll(r.dir)
	}
	return code
}

// Addr returns the address of the test binary's redis-server, starting it
// on first use; without redis-server the test fails with how to install it.
func Addr(tb testing.TB) string {
	tb.Helper()
	testRedis.once.Do(func() { testRedis.err = startRedis() })
	if testRedis.err != nil {
		tb.Fatal(testRedis.err)
	}
	return testRedis.addr
}

func startRedis() error {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New(redisInstall)
	}
	dir, err := os.MkdirTemp("", "junction-redis-")
	if err != nil {
		return err
	}
	testRedis.dir = dir
	var last error
	for range 5 { // a free port can be taken between picking and binding it
		port, err := freePort()
		if err != nil {
			return err
		}
		var out bytes.Buffer
		cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start redis-server: %w", err)
		}
		exit := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exit) }()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if last = waitPing(addr, exit); last == nil {
			testRedis.addr, testRedis.cmd, testRedis.exit = addr, cmd, exit
			return nil
		}
		_ = cmd.Process.Kill()
		<-exit
		last = fmt.Errorf("%w\n%s", last, out.String())
	}
	return fmt.Errorf("redis-server did not start: %w", last)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitPing polls addr with PING until it answers PONG, the process exits or
// ten seconds pass.
func waitPing(addr string, exit <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("PING\r\n"))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return nil
			}
		}
		select {
		case <-exit:
			return errors.New("redis-server exited")
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return errors.New("redis-server did not answer PING within 10s")
		}
	}
}

// prefixes makes every key prefix unique within the process, so that tests
// run more than once (-count) do not meet the keys of their earlier runs.
var prefixes atomic.Int64

// Prefix returns a key prefix of the test's own.
func Prefix(tb testing.TB) string {
	return fmt.Sprintf("test:%s:%d", tb.Name(), prefixes.Add(1))
}

// Client returns a client of the server, closed when the test ends. Each
// client stands for one Junction replica.
func Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: Addr(tb), PoolSize: 64})
	tb.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		tb.Fatal(err)
	}
	return c
}

// RoundTrips is a go-redis hook that counts the commands and pipelines a
// client sends in N: each is one round trip to Redis. The handshake of a
// new connection (HELLO, then CLIENT SETINFO) is not counted: it happens
// per connection, not per call.
type RoundTrips struct{ N atomic.Int64 }

// DialHook passes dials through.
func (r *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook counts a command.
func (r *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" {
			r.N.Add(1)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts a pipeline.
func (r *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if cmds[0].Name() != "client" {
			r.N.Add(1)
		}
		return next(ctx, cmds)
	}
}
