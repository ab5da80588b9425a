package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startHardened runs Junction with the given server settings (YAML flow
// members added to server:) in front of upstream, which serves the model
// "m".
func startHardened(t *testing.T, upstream http.Handler, serverYAML string) *junction {
	t.Helper()
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`
server: {addr: "127.0.0.1:0", data_dir: %q, upstream_timeout: 10s, shutdown_timeout: 5s, %s}
auth: {admin_key: %q}
log: {level: warn}
hosting: {disabled: true}
providers:
  - {name: up, type: openai, base_url: "%s/v1", api_key: "sk-upstream"}
models:
  - {name: m, provider: up}
`, dir, serverYAML, adminKey, up.URL)
	return runYAML(t, yaml, dir)
}

// rawRequest opens a connection to Junction and sends a request's head and
// the first part of its body, no more: a client trickling its body.
func (j *junction) rawRequest(t *testing.T, head, bodyStart string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(j.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head+"\r\n"+bodyStart); err != nil {
		t.Fatal(err)
	}
	return c
}

// answer reads the response on c, waiting at most within (a bound on a
// hang, not a measure of speed), and then, when it is to be closed,
// whether the server closed the connection.
func answer(t *testing.T, c net.Conn, within time.Duration) (*http.Response, string, bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer while the body was withheld: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !resp.Close {
		return resp, string(b), false
	}
	// The server's FIN reads as EOF; a reset (it closed with the body's
	// bytes unread) as an error. A deadline means it kept the connection.
	_, err = br.ReadByte()
	var ne net.Error
	return resp, string(b), err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// okUpstream answers every chat completion with a short reply.
func okUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
	})
}

// TestUnauthenticatedSlowBodyIsRefusedUnread: a client without a valid key
// that sends its headers and then trickles (here: withholds) its body is
// answered at once and its connection closed, on every surface, however
// patient the body read timeout; before, net/http read the body first
// and such clients held connections for as long as they liked.
func TestUnauthenticatedSlowBodyIsRefusedUnread(t *testing.T) {
	j := startHardened(t, okUpstream(), "body_read_timeout: 10m")
	sigv4 := "Authorization: AWS4-HMAC-SHA256 Credential=JKIANOSUCHKEY0000000/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\r\nX-Amz-Date: " + time.Now().UTC().Format("20060102T150405Z") + "\r\n"
	for _, tc := range []struct {
		name, path, auth, framing string
		status                    int
	}{
		{"openai no key", "/v1/chat/completions", "", "Content-Length: 1000\r\n", 401},
		{"openai wrong key", "/v1/chat/completions", "Authorization: Bearer jk-wrong\r\n", "Content-Length: 1000\r\n", 401},
		{"openai chunked", "/v1/chat/completions", "", "Transfer-Encoding: chunked\r\n", 401},
		{"anthropic wrong key", "/v1/messages", "X-Api-Key: jk-wrong\r\n", "Content-Length: 1000\r\n", 401},
		{"admin no key", "/api/v1/keys", "", "Content-Length: 1000\r\n", 401},
		{"bedrock no auth", "/model/m/converse", "", "Content-Length: 1000\r\n", 403},
		{"bedrock wrong bearer", "/model/m/converse", "Authorization: Bearer jk-wrong\r\n", "Content-Length: 1000\r\n", 403},
		{"bedrock unknown access key", "/model/m/converse", sigv4, "Content-Length: 1000\r\n", 403},
		{"apply guardrail no auth", "/guardrail/g/version/1/apply", "", "Transfer-Encoding: chunked\r\n", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := `{"model":"m"`
			if strings.Contains(tc.framing, "chunked") {
				start = fmt.Sprintf("%x\r\n%s\r\n", len(start), start)
			}
			c := j.rawRequest(t, "POST "+tc.path+" HTTP/1.1\r\nHost: junction\r\nContent-Type: application/json\r\n"+tc.auth+tc.framing, start)
			resp, body, closed := answer(t, c, 10*time.Second)
			if resp.StatusCode != tc.status || !closed {
				t.Fatalf("%d (closed: %v) %s; want %d and the connection closed", resp.StatusCode, closed, body, tc.status)
			}
		})
	}
}

// TestSlowBodyIsCutAtTheBodyReadTimeout: an authenticated client whose
// body stops arriving gets 408 once server.body_read_timeout has passed.
func TestSlowBodyIsCutAtTheBodyReadTimeout(t *testing.T) {
	j := startHardened(t, okUpstream(), "body_read_timeout: 300ms")
	c := j.rawRequest(t, "POST /v1/chat/completions HTTP/1.1\r\nHost: junction\r\nAuthorization: Bearer "+adminKey+
		"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n", `{"model":"m"`)
	resp, body, closed := answer(t, c, 20*time.Second)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, "body_read_timeout") || !closed {
		t.Fatalf("%d (closed: %v) %s; want 408 naming server.body_read_timeout", resp.StatusCode, closed, body)
	}
	// A request that arrives whole is served as before.
	if status, _, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`); status != 200 {
		t.Fatalf("a prompt request: %d %s", status, b)
	}
}

// TestLongStreamOutlivesTheBodyReadTimeout: the body read timeout bounds
// reading the request, never writing the answer: a stream that pauses for
// longer than it arrives whole.
func TestLongStreamOutlivesTheBodyReadTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	chunk := func(text string) string {
		return `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"` + text + `"},"finish_reason":null}]}` + "\n\n"
	}
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, chunk("first "))
		w.(http.Flusher).Flush()
		// Pause well past the timeout, as a model thinking would.
		select {
		case <-time.After(5 * timeout):
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, chunk("second"))
		io.WriteString(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n")
	})
	j := startHardened(t, up, "body_read_timeout: "+timeout.String())
	status, _, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 || !strings.Contains(string(b), "second") || !strings.Contains(string(b), "[DONE]") {
		t.Fatalf("%d %s; want the whole stream", status, b)
	}
}

// metric reads one unlabelled value from /metrics; -1 when absent.
func (j *junction) metric(name string) float64 {
	_, _, b := j.do("GET", "/metrics", "", "")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// TestInflightBodyBudget: bodies held at once are bounded by
// server.max_inflight_body_bytes; a body past it is answered 503 with
// Retry-After without being read, and the room comes back when requests
// end.
func TestInflightBodyBudget(t *testing.T) {
	const size = 1 << 20
	j := startHardened(t, okUpstream(), fmt.Sprintf("max_body_bytes: %d, max_inflight_body_bytes: %d", size, 2*size+size/2))
	prompt := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	body := prompt + strings.Repeat(" ", size-len(prompt))
	head := "POST /v1/chat/completions HTTP/1.1\r\nHost: junction\r\nAuthorization: Bearer " + adminKey + "\r\nContent-Type: application/json\r\n"
	// Two clients send 1 MiB bodies slowly: both are admitted, and hold
	// 2 MiB of the 2.5 MiB budget while their bodies arrive.
	held := []net.Conn{
		j.rawRequest(t, head+fmt.Sprintf("Content-Length: %d\r\n", size), body[:10]),
		j.rawRequest(t, head+fmt.Sprintf("Content-Length: %d\r\n", size), body[:10]),
	}
	deadline := time.Now().Add(10 * time.Second)
	for j.metric("junction_request_body_bytes_in_flight") != 2*size {
		if time.Now().After(deadline) {
			t.Fatalf("in flight: %v bytes, want %d", j.metric("junction_request_body_bytes_in_flight"), 2*size)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}
	// A third, declared or chunked, does not fit: 503 at once, unread.
	for _, framing := range []string{fmt.Sprintf("Content-Length: %d\r\n", size), "Transfer-Encoding: chunked\r\n"} {
		start := body[:10]
		if strings.Contains(framing, "chunked") {
			start = fmt.Sprintf("%x\r\n%s\r\n", 600<<10, body[:600<<10])
		}
		c := j.rawRequest(t, head+framing, start)
		resp, b, closed := answer(t, c, 10*time.Second)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(b, "max_inflight_body_bytes") || !closed {
			t.Fatalf("%s past the budget: %d %v (closed: %v) %s", framing, resp.StatusCode, resp.Header, closed, b)
		}
	}
	if got := j.metric("junction_request_bodies_refused_total"); got != 2 {
		t.Fatalf("refused: %v, want 2", got)
	}
	// The two held bodies complete and are served; then the room is back.
	var wg sync.WaitGroup
	for _, c := range held {
		wg.Go(func() {
			if _, err := io.WriteString(c, body[10:]); err != nil {
				t.Error(err)
				return
			}
			if resp, b, _ := answer(t, c, 20*time.Second); resp.StatusCode != 200 {
				t.Errorf("held request: %d %s", resp.StatusCode, b)
			}
		})
	}
	wg.Wait()
	if got := j.metric("junction_request_body_bytes_in_flight"); got != 0 {
		t.Fatalf("in flight after the requests ended: %v", got)
	}
	if status, _, b := j.do("POST", "/v1/chat/completions", adminKey, body); status != 200 {
		t.Fatalf("after: %d %s", status, b)
	}
}
