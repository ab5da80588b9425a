package modelserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting/refmodel"
)

// artifactDir holds the demo artifact, written once for the package.
var artifactDir string

func TestMain(m *testing.M) {
	if os.Getenv("MODELSERVER_TEST_CHILD") == "1" {
		// Re-executed by startChild: be the server.
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	dir, err := os.MkdirTemp("", "modelserver-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := refmodel.WriteDemoArtifact(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	artifactDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testServer is a server running in the test process on a loopback port.
type testServer struct {
	url string
	srv *server
	// crashes receives the exit code of every crash the knobs ask for;
	// the connection is dropped as a real crash would drop it.
	crashes chan int
}

// start runs a server in-process with flags args and environment env,
// waits until /ping answers 200 unless the environment delays it, and
// stops it when the test ends.
func start(t testing.TB, env map[string]string, args ...string) *testServer {
	t.Helper()
	args = append([]string{"--model-dir", artifactDir, "--shutdown-timeout", "2s"}, args...)
	cfg, _, err := parseConfig(args, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{url: "http://" + ln.Addr().String(), crashes: make(chan int, 16)}
	ts.srv = newServer(cfg, slog.New(slog.DiscardHandler), func(code int) { ts.crashes <- code })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.srv.serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	if env[EnvStartupDelay] == "" {
		waitFor(t, 5*time.Second, "GET /ping = 200", func() bool { return pingStatus(ts.url) == http.StatusOK })
	}
	return ts
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v", what, within)
		}
		<-tick.C
	}
}

// pingStatus returns the status of GET /ping, or 0 when it cannot connect.
func pingStatus(base string) int {
	resp, err := http.Get(base + "/ping")
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// reply is a finished HTTP exchange.
type reply struct {
	status int
	header http.Header
	body   string
}

// do sends a request with the given headers ("Name: value") and returns
// the reply, failing the test on a transport error.
func do(t testing.TB, method, url, body string, headers ...string) reply {
	t.Helper()
	r, err := send(context.Background(), method, url, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// send is do without a test: it returns transport errors.
func send(ctx context.Context, method, url, body string, headers ...string) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}, err
}

// invoke posts a JSON invocation.
func invoke(t testing.TB, ts *testServer, body string, headers ...string) reply {
	t.Helper()
	return do(t, "POST", ts.url+"/invocations", body, append([]string{"Content-Type: application/json"}, headers...)...)
}

// serverStats reads GET /stats.
func serverStats(t testing.TB, base string) (s struct {
	Ready       bool  `json:"ready"`
	Invocations int64 `json:"invocations"`
	InFlight    int64 `json:"in_flight"`
}) {
	t.Helper()
	r := do(t, "GET", base+"/stats", "")
	if err := json.Unmarshal([]byte(r.body), &s); err != nil {
		t.Fatalf("stats %q: %v", r.body, err)
	}
	return s
}
