package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// server is a loopback upstream that counts the connections it accepts.
type server struct {
	*httptest.Server
	conns atomic.Int64
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	s := &server{}
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// failing is a fallback that must not be used.
type failing struct{ t *testing.T }

func (f failing) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("%s %s went to the fallback", r.Method, r.URL)
	return nil, errors.New("fallback")
}

func client(t *testing.T, tr *Transport) *http.Client {
	if tr.Fallback == nil {
		tr.Fallback = failing{t}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func post(t *testing.T, c *http.Client, ctx context.Context, url, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-x")
	return c.Do(req)
}

func TestPlainAnswersShareOneConnection(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer sk-x" || r.ContentLength != int64(len(b)) || r.Host == "" {
			t.Errorf("request arrived as %s %v %q", r.Host, r.Header, b)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Seen", r.URL.RawQuery)
		fmt.Fprintf(w, `{"echo":%q}`, b)
	})
	c := client(t, &Transport{})
	for i := range 5 {
		resp, err := post(t, c, context.Background(), s.URL+"/v1/chat?x=1", fmt.Sprintf("body %d", i))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(b) != fmt.Sprintf(`{"echo":"body %d"}`, i) || resp.Header.Get("X-Seen") != "x=1" ||
			resp.Status != "200 OK" || resp.ContentLength != int64(len(b)) {
			t.Fatalf("answer %d: %d %q %v %q %v", i, resp.StatusCode, resp.Status, err, b, resp.Header)
		}
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("5 requests in turn used %d connections, want 1", n)
	}
}

func TestStreamArrivesChunkByChunk(t *testing.T) {
	next := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			<-next // the client has read it
		}
	})
	c := client(t, &Transport{})
	resp, err := post(t, c, context.Background(), s.URL, "{}")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.TransferEncoding == nil || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("transfer encoding %v", resp.TransferEncoding)
	}
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		br.ReadString('\n')
		next <- struct{}{}
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after the stream: %q %v", rest, err)
	}
	// The connection went back to the pool: the next request reuses it.
	resp, err = post(t, c, context.Background(), s.URL, "{}")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range 3 {
			next <- struct{}{}
		}
	}()
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n := s.conns.Load(); n != 1 {
		t.Errorf("two streams in turn used %d connections, want 1", n)
	}
}

func TestCancelStopsAStreamAndDropsItsConnection(t *testing.T) {
	gone := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the client hung up
		close(gone)
	})
	c := client(t, &Transport{})
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := post(t, c, ctx, s.URL, "{}")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := resp.Body.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "data: first") {
		t.Fatalf("first read: %q %v", buf[:n], err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := resp.Body.Read(buf) // blocks: nothing more comes
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("read after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not end the read")
	}
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream did not see the connection close")
	}
}

func TestEarlyCloseDropsTheConnection(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		for i := range 5 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done() // the rest of the stream never comes
	})
	c := client(t, &Transport{})
	for range 2 {
		resp, err := post(t, c, context.Background(), s.URL, "{}")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Read(make([]byte, 8))
		resp.Body.Close()
		if _, err := resp.Body.Read(make([]byte, 8)); err == nil {
			t.Error("a closed body read on")
		}
	}
	if n := s.conns.Load(); n != 2 {
		t.Errorf("bodies closed early left %d connections used, want 2 (none reused)", n)
	}
}

func TestStaleKeepAliveConnectionIsRetried(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		io.WriteString(w, "ok")
	})
	tr := &Transport{}
	c := client(t, tr)
	for i := range 3 {
		if i == 1 {
			// The server drops its idle connections, as one whose idle
			// timeout passed does.
			s.CloseClientConnections()
		}
		resp, err := post(t, c, context.Background(), s.URL, "hello")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" {
			t.Fatalf("request %d: %q", i, b)
		}
	}
	if n := s.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the pooled one the server dropped, then a new one", n)
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	defer close(release)
	c := client(t, &Transport{ResponseHeaderTimeout: 50 * time.Millisecond})
	_, err := post(t, c, context.Background(), s.URL, "{}")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

func TestInformationalAnswersAreSkipped(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "short and stout")
	})
	c := client(t, &Transport{})
	resp, err := post(t, c, context.Background(), s.URL, "{}")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || string(b) != "short and stout" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
}

// rawServer answers each connection with the given bytes, then closes it.
func rawServer(t *testing.T, answer string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, answer)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestBodyToTheEndOfTheConnection(t *testing.T) {
	u := rawServer(t, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
	c := client(t, &Transport{})
	resp, err := post(t, c, context.Background(), u, "{}")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "until the end" || !resp.Close {
		t.Fatalf("%q %v close=%v", b, err, resp.Close)
	}
}

func TestTruncatedAnswersFail(t *testing.T) {
	for _, answer := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
	} {
		c := client(t, &Transport{})
		resp, err := post(t, c, context.Background(), rawServer(t, answer), "{}")
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: err %v, want io.ErrUnexpectedEOF", answer, err)
		}
	}
	for _, answer := range []string{"SPDY/3 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"} {
		c := client(t, &Transport{})
		if _, err := post(t, c, context.Background(), rawServer(t, answer), "{}"); err == nil {
			t.Errorf("%q was taken for an answer", answer)
		}
	}
}

func TestOtherRequestsTakeTheFallback(t *testing.T) {
	var fell atomic.Int64
	fallback := roundTripper(func(r *http.Request) (*http.Response, error) {
		fell.Add(1)
		return &http.Response{StatusCode: 200, Body: io.NopCloser(bytes.NewReader(nil)), Request: r}, nil
	})
	proxy := func(r *http.Request) (*url.URL, error) {
		if r.URL.Hostname() == "proxied.example" {
			return url.Parse("http://proxy.example:3128")
		}
		return nil, nil
	}
	c := &http.Client{Transport: &Transport{Fallback: fallback, Proxy: proxy}}
	for _, u := range []string{"https://api.openai.com/v1/chat", "http://proxied.example/v1", "http://user:pw@127.0.0.1:1/"} {
		resp, err := post(t, c, context.Background(), u, "{}")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/", io.NopCloser(strings.NewReader("unknown length")))
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
	}
	if fell.Load() != 4 {
		t.Errorf("%d requests went to the fallback, want 4", fell.Load())
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestHeaderInjectionIsRefused(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { t.Error("a request with a bad header was sent") })
	c := client(t, &Transport{})
	req, _ := http.NewRequest(http.MethodPost, s.URL, strings.NewReader("{}"))
	req.Header["X-Evil"] = []string{"a\r\nInjected: yes"}
	if _, err := c.Do(req); err == nil {
		t.Fatal("a header value with CRLF was sent")
	}
}

func TestRefusedConnectionIsAnError(t *testing.T) {
	c := client(t, &Transport{})
	_, err := post(t, c, context.Background(), "http://127.0.0.1:1/v1", "{}")
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Fatalf("err = %v, want the dial's *net.OpError", err)
	}
}

// BenchmarkRoundTrip compares a plain POST through this transport and
// through net/http's, on loopback, one at a time.
func BenchmarkRoundTrip(b *testing.B) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"x","choices":[]}`)
	}))
	defer s.Close()
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{{"net-http", &http.Transport{MaxIdleConnsPerHost: 8}}, {"h1", &Transport{Fallback: http.DefaultTransport}}} {
		b.Run(tc.name, func(b *testing.B) {
			c := &http.Client{Transport: tc.rt}
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, s.URL, bytes.NewReader(body))
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			c.CloseIdleConnections()
		})
	}
}

// TestResetAfterTheRequestIsNotRetried: once the request went out, the
// server may be answering it; a reset then is the caller's to handle (the
// gateway's retry policy), never sent again here, as net/http does for a
// POST.
func TestResetAfterTheRequestIsNotRetried(t *testing.T) {
	var seen atomic.Int64
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		if seen.Add(1) == 2 {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
			return
		}
		io.WriteString(w, "ok")
	})
	c := client(t, &Transport{})
	resp, err := post(t, c, context.Background(), s.URL, "one")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if _, err := post(t, c, context.Background(), s.URL, "two"); err == nil {
		t.Fatal("a reset answer was taken for one")
	}
	if n := seen.Load(); n != 2 {
		t.Errorf("the server got %d requests, want 2: the reset one was sent again", n)
	}
}

// keepAliveServer answers every request on a connection with answer,
// written at once, and counts the connections it accepts.
func keepAliveServer(t *testing.T, answer string) (string, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					io.WriteString(c, answer)
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String(), &conns
}

// TestClosingAtTheLastEventKeepsTheConnection: a reader that stops at a
// stream's last event and closes the body leaves only the end of the
// chunked body, which Close reads, so the next stream reuses the
// connection.
func TestClosingAtTheLastEventKeepsTheConnection(t *testing.T) {
	const events = "data: {\"x\":1}\n\ndata: [DONE]\n\n"
	u, conns := keepAliveServer(t, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(events), events))
	c := client(t, &Transport{})
	for i := range 3 {
		resp, err := post(t, c, context.Background(), u, "{}")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(events))
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != events {
			t.Fatalf("stream %d: %q %v", i, buf, err)
		}
		resp.Body.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("3 streams closed at their last event used %d connections, want 1", n)
	}
}
