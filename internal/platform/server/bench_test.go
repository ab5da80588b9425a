package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/platform/server"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// The benchmarks send the same chat request over real loopback HTTP
// straight to the fake upstream (…Direct) and through a Junction in front
// of it (…ThroughJunction). ns/op and allocs/op count everything in this
// process: the client, the fake and, through Junction, the gateway; the
// difference between a pair is what Junction adds to one request. The
// load harness in bench/ measures the same thing under load, with the
// gateway in its own process (go run ./bench).
//
//	go test -run XXX -bench . -benchmem ./internal/platform/server

const benchAdminKey = "bench-admin-key-0123456789"

var (
	benchPlainBody  = []byte(`{"model":"bench-model","messages":[{"role":"user","content":"Say hello."}]}`)
	benchStreamBody = []byte(`{"model":"bench-model","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello."}]}`)
)

// benchTargets starts the fake upstream and a Junction in front of it, as
// `junction serve` runs: ledger on, access log at info (formatted, then
// discarded). It returns both chat-completions URLs.
func benchTargets(b *testing.B) (direct, junction string) {
	b.Helper()
	up, j := startBenchJunction(b)
	return up + "/v1/chat/completions", j + "/v1/chat/completions"
}

// startBenchJunction serves the fake upstream and a Junction with one
// priced model (bench-model) in front of it, and returns their base URLs.
// Every server benchmark stands on it; extra is YAML added to its config.
func startBenchJunction(b *testing.B, extra ...string) (upstream, junction string) {
	b.Helper()
	return startBenchJunctionOn(b, &fakeopenai.Server{}, extra...)
}

// startBenchJunctionOn is startBenchJunction with a fake of the caller's.
func startBenchJunctionOn(b *testing.B, fake *fakeopenai.Server, extra ...string) (upstream, junction string) {
	b.Helper()
	up := httptest.NewServer(fake)
	b.Cleanup(up.Close)
	yaml := fmt.Sprintf(`
server: {addr: "127.0.0.1:0", data_dir: %q}
auth: {admin_key: %q}
providers:
  - {name: fake, type: openai, base_url: "%s/v1", api_key: sk-bench}
models:
  - {name: bench-model, provider: fake, upstream_model: bench-upstream, price: {input_per_1k: 0.00015, output_per_1k: 0.0006}}
%s`, b.TempDir(), benchAdminKey, up.URL, strings.Join(extra, "\n"))
	cfg, err := config.Parse([]byte(yaml), func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		cancel()
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("serve: %v", err)
		}
	})
	return up.URL, "http://" + srv.Addr()
}

// benchChat sends body to url from GOMAXPROCS goroutines, each on its own
// keep-alive connection, and checks every answer.
func benchChat(b *testing.B, url string, body []byte, stream bool) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
	b.Cleanup(client.CloseIdleConnections)
	want := []byte(`"finish_reason":"stop"`)
	if stream {
		want = []byte("data: [DONE]")
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var buf bytes.Buffer
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+benchAdminKey)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			buf.Reset()
			_, err = buf.ReadFrom(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(buf.Bytes(), want) {
				b.Errorf("status %d, err %v, body %.300s", resp.StatusCode, err, buf.Bytes())
				return
			}
		}
	})
}

// BenchmarkChatDirect is a plain chat request straight to the fake
// upstream: the baseline.
func BenchmarkChatDirect(b *testing.B) {
	direct, _ := benchTargets(b)
	benchChat(b, direct, benchPlainBody, false)
}

// BenchmarkChatThroughJunction is the same request through Junction.
func BenchmarkChatThroughJunction(b *testing.B) {
	_, junction := benchTargets(b)
	benchChat(b, junction, benchPlainBody, false)
}

// BenchmarkChatStreamDirect is a streamed chat request (8 content chunks)
// straight to the fake upstream: the baseline.
func BenchmarkChatStreamDirect(b *testing.B) {
	direct, _ := benchTargets(b)
	benchChat(b, direct, benchStreamBody, true)
}

// BenchmarkChatStreamThroughJunction is the same stream through Junction.
func BenchmarkChatStreamThroughJunction(b *testing.B) {
	_, junction := benchTargets(b)
	benchChat(b, junction, benchStreamBody, true)
}
