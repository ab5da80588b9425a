// Package redistest runs real redis-server processes for tests: one
// standalone server and one three-master Redis Cluster per test binary,
// each started on first use on free loopback ports and stopped when the
// binary's tests end (through Run). The bench command starts its own with
// StartServer and StartCluster. It is for tests and measurements only.
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

// Server is a redis-server process started by this package.
type Server struct {
	// Addr is its loopback address, host:port.
	Addr string
	dir  string
	cmd  *exec.Cmd
	exit chan struct{}
	out  *bytes.Buffer
}

// Pid returns the server's process id, for reading its CPU time from /proc.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop kills the server and removes its directory.
func (s *Server) Stop() {
	_ = s.cmd.Process.Kill()
	<-s.exit
	_ = os.RemoveAll(s.dir)
}

// StartServer starts a standalone redis-server on a free loopback port,
// with persistence off. Stop it with Stop.
func StartServer() (*Server, error) { return startServer() }

// startServer starts redis-server with extra arguments; ports passes the
// chosen port and returns the arguments that depend on it.
func startServer(ports ...func(port int) ([]string, error)) (*Server, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New(redisInstall)
	}
	dir, err := os.MkdirTemp("", "junction-redis-")
	if err != nil {
		return nil, err
	}
	var last error
	for range 5 { // a free port can be taken between picking and binding it
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir}
		for _, f := range ports {
			more, err := f(port)
			if err != nil {
				os.RemoveAll(dir)
				return nil, err
			}
			args = append(args, more...)
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, out: &bytes.Buffer{}, exit: make(chan struct{})}
		s.cmd = exec.Command(path, args...)
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
		if err := s.cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("start redis-server: %w", err)
		}
		go func() { _ = s.cmd.Wait(); close(s.exit) }()
		if last = waitPing(s.Addr, s.exit); last == nil {
			return s, nil
		}
		_ = s.cmd.Process.Kill()
		<-s.exit
		last = fmt.Errorf("%w\n%s", last, s.out.String())
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("redis-server did not start: %w", last)
}

// Cluster is a Redis Cluster of masters without replicas, each owning an
// equal range of the 16384 hash slots.
type Cluster struct {
	// Addrs are the masters' addresses, in slot order.
	Addrs   []string
	Servers []*Server
}

// Stop stops every node.
func (c *Cluster) Stop() {
	for _, s := range c.Servers {
		s.Stop()
	}
}

// StartCluster starts masters redis-servers in cluster mode on loopback,
// gives each an equal share of the slots, joins them and waits until every
// node reports the cluster ok (about a second). Stop it with Stop.
func StartCluster(masters int) (*Cluster, error) {
	c := &Cluster{}
	buses := make([]int, masters)
	for i := range masters {
		s, err := startServer(func(port int) ([]string, error) {
			bus, err := freePort()
			buses[i] = bus
			return []string{"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
				"--cluster-config-file", "nodes-" + strconv.Itoa(port) + ".conf",
				"--cluster-node-timeout", "2000"}, err
		})
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Servers = append(c.Servers, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	if err := c.join(buses); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// join assigns the slots, introduces the nodes to each other (buses are
// their cluster bus ports) and waits for the cluster to be ok on every
// node, as redis-cli --cluster create does.
func (c *Cluster) join(buses []int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clients := make([]*redis.Client, len(c.Addrs))
	for i, a := range c.Addrs {
		clients[i] = redis.NewClient(&redis.Options{Addr: a})
		defer clients[i].Close()
	}
	const slots = 16384
	n := len(clients)
	for i, rc := range clients {
		lo, hi := i*slots/n, (i+1)*slots/n-1
		if err := rc.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return fmt.Errorf("redis cluster: set-config-epoch on %s: %w", c.Addrs[i], err)
		}
		if err := rc.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			return fmt.Errorf("redis cluster: addslotsrange on %s: %w", c.Addrs[i], err)
		}
	}
	for i, a := range c.Addrs[1:] {
		host, port, _ := net.SplitHostPort(a)
		if err := clients[0].Do(ctx, "CLUSTER", "MEET", host, port, buses[i+1]).Err(); err != nil {
			return fmt.Errorf("redis cluster: meet %s: %w", a, err)
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok := true
		var last string
		for _, rc := range clients {
			info, err := rc.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") ||
				!strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)+"\r") {
				ok, last = false, info
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redis cluster: not ok within 30s:\n%s", last)
		case <-tick.C:
		}
	}
}

// The test binary's servers, started on first use.
var (
	testRedis   lazy[*Server]
	testCluster lazy[*Cluster]
)

// lazy is a server started on first use and stopped by Run.
type lazy[T interface{ Stop() }] struct {
	mu      sync.Mutex
	started bool
	v       T
	err     error
}

func (l *lazy[T]) get(start func() (T, error)) (T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.started {
		l.v, l.err = start()
		l.started = true
	}
	return l.v, l.err
}

func (l *lazy[T]) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started && l.err == nil {
		l.v.Stop()
	}
}

// Run runs a package's tests and then stops the servers started for them;
// call it from TestMain: os.Exit(redistest.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	testRedis.stop()
	testCluster.stop()
	return code
}

// Addr returns the address of the test binary's redis-server, starting it
// on first use; without redis-server the test fails with how to install it.
func Addr(tb testing.TB) string {
	tb.Helper()
	s, err := testRedis.get(StartServer)
	if err != nil {
		tb.Fatal(err)
	}
	return s.Addr
}

// ClusterAddrs returns the masters of the test binary's three-master Redis
// Cluster, starting it on first use.
func ClusterAddrs(tb testing.TB) []string {
	tb.Helper()
	c, err := testCluster.get(func() (*Cluster, error) { return StartCluster(3) })
	if err != nil {
		tb.Fatal(err)
	}
	return c.Addrs
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

// ClusterClient returns a client of the test binary's Redis Cluster,
// closed when the test ends. Each client stands for one Junction replica.
func ClusterClient(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: ClusterAddrs(tb), PoolSize: 64})
	tb.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		tb.Fatal(err)
	}
	return c
}

// ClusterURL returns the test cluster as a governance.redis_url value:
// redis://first-master?addr=second&addr=third.
func ClusterURL(tb testing.TB) string {
	tb.Helper()
	addrs := ClusterAddrs(tb)
	u := "redis://" + addrs[0]
	for i, a := range addrs[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + a
	}
	return u
}

// CPU returns the CPU time (user and system) the Redis behind c has used
// since it started, from INFO cpu; for a cluster client, the sum over its
// masters.
func CPU(ctx context.Context, c redis.UniversalClient) (time.Duration, error) {
	if cc, ok := c.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		var sum time.Duration
		err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			d, err := CPU(ctx, m)
			mu.Lock()
			sum += d
			mu.Unlock()
			return err
		})
		return sum, err
	}
	info, err := c.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("INFO cpu: %s: %w", line, err)
			}
			sum += f
		}
	}
	return time.Duration(sum * float64(time.Second)), nil
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

// CommandTime is what INFO commandstats says of one command: how often
// it ran and the µs it took in all. A script's time includes that of the
// commands it called, which are counted under their own names as well.
type CommandTime struct{ Calls, Usec int64 }

// CommandStats reads a server's INFO commandstats, by command name in
// lower case ("evalsha", "hmget", "config|resetstat").
func CommandStats(ctx context.Context, c *redis.Client) (map[string]CommandTime, error) {
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]CommandTime{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		var t CommandTime
		for _, f := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(f, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				t.Calls = n
			case "usec":
				t.Usec = n
			}
		}
		out[name] = t
	}
	return out, nil
}
