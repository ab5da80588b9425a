package h1srv_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/platform/h1srv"
)

// countingListener counts the connections accepted.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// start serves h on a loopback port with a lean server, configured by
// opt, and returns its address, the server and the accept counter.
func start(t *testing.T, h http.Handler, opt func(*h1srv.Server)) (string, *h1srv.Server, *countingListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	s := &h1srv.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	if opt != nil {
		opt(s)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(cl) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return ln.Addr().String(), s, cl
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("X-Method", r.Method)
	w.Header().Set("X-Path", r.URL.RequestURI())
	fmt.Fprintf(w, "%s %s host=%s body=%s", r.Method, r.URL.Path, r.Host, b)
}

func TestServesNetHTTPClientOnOneKeepAliveConnection(t *testing.T) {
	addr, _, ln := start(t, http.HandlerFunc(echo), nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	for i := range 5 {
		var reused bool
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/x?q=1", strings.NewReader(fmt.Sprint("n", i)))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("POST /v1/x host=%s body=n%d", addr, i)
		if resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, b, want)
		}
		if resp.ContentLength != int64(len(want)) || resp.Header.Get("X-Path") != "/v1/x?q=1" ||
			resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || resp.Header.Get("Date") == "" {
			t.Fatalf("request %d: headers %v, length %d", i, resp.Header, resp.ContentLength)
		}
		if i > 0 && !reused {
			t.Fatalf("request %d went on a new connection", i)
		}
	}
	if n := ln.n.Load(); n != 1 {
		t.Fatalf("%d connections accepted, want 1", n)
	}
}

func TestLargeAndFlushedResponsesAreChunked(t *testing.T) {
	big := strings.Repeat("x", 10000)
	addr, _, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			io.WriteString(w, big)
			return
		}
		io.WriteString(w, "a")
		w.(http.Flusher).Flush()
		io.WriteString(w, "b")
	}), nil)
	for path, want := range map[string]string{"/big": big, "/flushed": "ab"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("%s: %d bytes, transfer encoding %v; want %d bytes, chunked", path, len(b), resp.TransferEncoding, len(want))
		}
	}
}

// answers reads one response per body in want, in order, from br.
func answers(t *testing.T, br *bufio.Reader, want ...string) {
	t.Helper()
	for _, w := range want {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != w {
			t.Fatalf("got %q, want %q", b, w)
		}
	}
}

func TestPipelinedRequestsAreAnsweredInOrder(t *testing.T) {
	addr, _, _ := start(t, http.HandlerFunc(echo), nil)
	c, br := dial(t, addr)
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"+
		"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"+
		"GET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
	answers(t, br, "GET /1 host=a body=", "POST /2 host=a body=abc", "GET /3 host=a body=")
}

func TestBadRequestHeads(t *testing.T) {
	addr, _, _ := start(t, http.HandlerFunc(echo), func(s *h1srv.Server) { s.MaxHeaderBytes = 1024 })
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"no target", "GET\r\nHost: a\r\n\r\n", 400},
		{"bad version", "GET / HTTP/x\r\nHost: a\r\n\r\n", 400},
		{"HTTP/2 without the preface", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"header without colon", "GET / HTTP/1.1\r\nHost: a\r\nnonsense\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
		{"folded header", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", 400},
		{"bad Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
		{"conflicting Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
		{"unknown transfer encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"unknown expectation", "POST / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\nContent-Length: 1\r\n\r\na", 417},
		{"oversized headers", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 8000) + "\r\n\r\n", 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, br := dial(t, addr)
			io.WriteString(c, tc.req)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !resp.Close {
				t.Fatalf("got %d (close %v) %q, want %d and the connection closed", resp.StatusCode, resp.Close, b, tc.status)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("after the refusal: %v, want EOF", err)
			}
		})
	}
}

func TestChunkedUploadWithTrailer(t *testing.T) {
	addr, _, _ := start(t, http.HandlerFunc(echo), nil)
	c, br := dial(t, addr)
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nX-Sum: 7\r\n\r\n"+
		"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	answers(t, br, "POST /up host=a body=abcdefg", "GET /next host=a body=")
}

func TestExpectContinue(t *testing.T) {
	addr, _, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		echo(w, r)
	}), nil)

	c, br := dial(t, addr)
	io.WriteString(c, "POST /ok HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("got %q, %v; want 100 Continue", line, err)
	}
	if l, _ := br.ReadString('\n'); l != "\r\n" {
		t.Fatalf("100 Continue followed by %q", l)
	}
	io.WriteString(c, "hi")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "POST /ok host=a body=hi" {
		t.Fatalf("got %q", b)
	}

	// A handler that answers without reading: no 100 Continue, and the
	// connection closes, since the body may or may not follow.
	c, br = dial(t, addr)
	io.WriteString(c, "POST /refuse HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
		t.Fatalf("got %d, close %v; want 401 and close", resp.StatusCode, resp.Close)
	}
}

func TestNoBodyForHEADAnd204And304(t *testing.T) {
	addr, _, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		}
		io.WriteString(w, "body")
	}), nil)
	c, br := dial(t, addr)
	io.WriteString(c, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /204 HTTP/1.1\r\nHost: a\r\n\r\nGET /304 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, tc := range []struct {
		method string
		status int
		cl     string
	}{{"HEAD", 200, "4"}, {"GET", 204, ""}, {"GET", 304, ""}, {"GET", 200, "4"}} {
		resp, err := http.ReadResponse(br, &http.Request{Method: tc.method})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		wantBody := ""
		if tc.method == "GET" && tc.status == 200 {
			wantBody = "body"
		}
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Length") != tc.cl || string(b) != wantBody ||
			len(resp.TransferEncoding) != 0 {
			t.Fatalf("%s %d: got %d, Content-Length %q, TE %v, body %q", tc.method, tc.status, resp.StatusCode,
				resp.Header.Get("Content-Length"), resp.TransferEncoding, b)
		}
	}
}

func TestClientHangingUpCancelsTheRequest(t *testing.T) {
	for _, stage := range []string{"before any byte", "mid-stream", "with a body read"} {
		t.Run(stage, func(t *testing.T) {
			started, cancelled := make(chan struct{}), make(chan struct{})
			addr, _, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.ReadAll(r.Body)
				if stage == "mid-stream" {
					io.WriteString(w, "data: 1\n\n")
					w.(http.Flusher).Flush()
				}
				close(started)
				select {
				case <-r.Context().Done():
					close(cancelled)
				case <-time.After(10 * time.Second):
				}
			}), nil)
			c, br := dial(t, addr)
			if stage == "with a body read" {
				io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi")
			} else {
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			}
			<-started
			if stage == "mid-stream" {
				if _, err := http.ReadResponse(br, nil); err != nil {
					t.Fatal(err)
				}
			}
			c.Close()
			select {
			case <-cancelled:
			case <-time.After(5 * time.Second):
				t.Fatal("the handler's context was not cancelled when the client hung up")
			}
		})
	}
}

func TestIdleConnectionIsClosed(t *testing.T) {
	addr, _, _ := start(t, http.HandlerFunc(echo), func(s *h1srv.Server) { s.IdleTimeout = 50 * time.Millisecond })
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF (closed by the server)", err)
	}
}

func TestBodyReadTimeoutIsANetTimeout(t *testing.T) {
	errc := make(chan error, 1)
	addr, _, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		errc <- err
		w.WriteHeader(http.StatusRequestTimeout)
	}), func(s *h1srv.Server) { s.ReadTimeout = 100 * time.Millisecond })
	c, _ := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
	err := <-errc
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("reading a stalled body: %v, want a net.Error timeout", err)
	}
}

func TestShutdownWaitsForTheRequestInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	addr, s, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "done")
	}), nil)
	idle, idleBR := dial(t, addr) // a keep-alive connection with nothing in flight
	io.WriteString(idle, "GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, err := http.ReadResponse(idleBR, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	busy, busyBR := dial(t, addr)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-started

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	// The listener closes at once: poll until a dial is refused.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting after Shutdown")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := idleBR.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection at shutdown: %v, want EOF", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}
	close(release)
	resp, err = http.ReadResponse(busyBR, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "done" || !resp.Close {
		t.Fatalf("in-flight response: %q, close %v; want done, close", b, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestHandsHTTP2AndUpgradeToTheFallback(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s upgrade=%s", r.Proto, r.Header.Get("Upgrade"))
	})
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	std := &http.Server{Handler: h, Protocols: p}
	addr, _, _ := start(t, http.HandlerFunc(echo), func(s *h1srv.Server) { s.Fallback = std })

	cp := new(http.Protocols)
	cp.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: cp}}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "HTTP/2.0 upgrade=" {
		t.Fatalf("prior-knowledge HTTP/2: %q", b)
	}

	// An Upgrade request after a plain one on the same connection.
	c, br := dial(t, addr)
	io.WriteString(c, "GET /plain HTTP/1.1\r\nHost: a\r\n\r\nGET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: example\r\n\r\n")
	answers(t, br, "GET /plain host=a body=", "HTTP/1.1 upgrade=example")
}

func TestPanickingHandlerClosesTheConnection(t *testing.T) {
	addr, _, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	}), nil)
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after a panic: %v, want EOF", err)
	}
}

// benchServe measures one keep-alive request and its response, sent and
// read over loopback by a raw client, against the server serve starts.
func benchServe(b *testing.B, serve func(net.Listener, http.Handler) func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"id":"x","choices":[{"message":{"content":"hello"}}]}`)
	stop := serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "abc")
		w.Write(body)
	}))
	defer stop()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	req := []byte("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" +
		"Authorization: Bearer k\r\nContent-Length: 20\r\n\r\n{\"model\":\"m\",\"x\":1}\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n := -1
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) <= 2 {
				break
			}
			if v, ok := strings.CutPrefix(string(line), "Content-Length: "); ok {
				fmt.Sscan(v, &n)
			}
		}
		if n != len(body) {
			b.Fatalf("Content-Length %d", n)
		}
		if _, err := br.Discard(n); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkServeLean(b *testing.B) {
	benchServe(b, func(ln net.Listener, h http.Handler) func() {
		s := &h1srv.Server{Handler: h}
		go s.Serve(ln)
		return func() { s.Close() }
	})
}

func BenchmarkServeNetHTTP(b *testing.B) {
	benchServe(b, func(ln net.Listener, h http.Handler) func() {
		s := &http.Server{Handler: h}
		go s.Serve(ln)
		return func() { s.Close() }
	})
}

func TestLineBreaksInResponseHeadersBecomeSpaces(t *testing.T) {
	addr, _, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Note", "a\r\nX-Injected: 1")
		w.Header().Set("X-Padded", " b ")
	}), nil)
	resp, err := http.Get("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Injected") != "" || resp.Header.Get("X-Note") != "a  X-Injected: 1" || resp.Header.Get("X-Padded") != "b" {
		t.Fatalf("headers %q", resp.Header)
	}
}

func TestShutdownClosesAConnectionThatSentNothing(t *testing.T) {
	addr, s, ln := start(t, http.HandlerFunc(echo), nil)
	c, br := dial(t, addr)
	// Wait until the server has the connection, then shut down: a client
	// pool's spare connection must not hold Shutdown for ReadHeaderTimeout.
	for deadline := time.Now().Add(5 * time.Second); ln.n.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("connection not accepted")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a silent connection open: %v", err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("silent connection at shutdown: %v, want EOF", err)
	}
	_ = c
}

func TestAnswerToAnUnreadLargeBodyReachesTheClient(t *testing.T) {
	addr, _, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	}), nil)
	body := strings.Repeat("x", 8<<20)
	for i := range 5 {
		resp, err := http.Post("http://"+addr, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatalf("try %d: %v (the answer was lost to a reset)", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
			t.Fatalf("try %d: %d, close %v; want 413 and close", i, resp.StatusCode, resp.Close)
		}
	}
}

func TestConnectionLifetimes(t *testing.T) {
	addr, _, _ := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, fmt.Sprint(len(r.Header.Get("X-Big"))))
	}), nil)
	big := strings.Repeat("b", 20000) // longer than the read buffer
	for _, tc := range []struct {
		name, req string
		close     bool
		body      string
	}{
		{"HTTP/1.1 keeps alive", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + big + "\r\n\r\n", false, "20000"},
		{"Connection: close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", true, "0"},
		{"HTTP/1.0 closes", "GET / HTTP/1.0\r\n\r\n", true, "0"},
		{"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false, "0"},
		{"HTTP/1.0 stream of unknown length closes", "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true, "a0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, br := dial(t, addr)
			io.WriteString(c, tc.req)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != tc.body || resp.Close != tc.close {
				t.Fatalf("body %q, close %v; want %q, %v", b, resp.Close, tc.body, tc.close)
			}
			if !tc.close {
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
				if _, err := http.ReadResponse(br, nil); err != nil {
					t.Fatalf("second request on a kept connection: %v", err)
				}
				return
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("after the response: %v, want EOF", err)
			}
		})
	}
}

func TestFirstHeadMustArriveWithinReadHeaderTimeoutOfTheAccept(t *testing.T) {
	addr, _, _ := start(t, http.HandlerFunc(echo), func(s *h1srv.Server) { s.ReadHeaderTimeout = 300 * time.Millisecond })
	c, br := dial(t, addr)
	// Most of the timeout in silence, then a first byte, then the rest of
	// the head trickled past the timeout counted from the accept.
	began := time.Now()
	time.Sleep(250 * time.Millisecond)
	io.WriteString(c, "G")
	for _, part := range []string{"ET / HTTP/1.1\r\n", "Host: a\r\n", "X: 1\r\n", "\r\n"} {
		time.Sleep(50 * time.Millisecond)
		if _, err := io.WriteString(c, part); err != nil {
			break
		}
	}
	resp, err := http.ReadResponse(br, nil)
	if err == nil && resp.StatusCode == http.StatusOK {
		t.Fatalf("a head finished %v after the accept was served (timeout 300ms)", time.Since(began))
	}
}
