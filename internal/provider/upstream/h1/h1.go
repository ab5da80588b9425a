// Package h1 is a lean HTTP/1.1 client transport for Junction's calls to
// upstream model servers over plain HTTP (vLLM, llama.cpp, a sidecar, the
// benchmark's fake): the request is written and the response read on the
// calling goroutine, on a pooled keep-alive connection, with none of the
// per-connection reader and writer goroutines, channels and selects of
// net/http's Transport. Everything else — https, proxies, bodies of
// unknown length — goes to the fallback transport (net/http's), so a
// Transport can stand wherever an http.RoundTripper does.
//
// It is not a general client: no HTTP/2, no TLS, no transparent gzip (it
// asks for none, so an upstream sends none), no redirects of its own (the
// http.Client above it follows them), no Expect: 100-continue.
package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Transport is an http.RoundTripper for plain-HTTP upstreams. Its zero
// value is not usable; set Fallback at least.
type Transport struct {
	// Fallback carries the requests this transport does not: not http,
	// through a proxy, a body of unknown length.
	Fallback http.RoundTripper
	// Proxy, when set, is asked for each request; one that goes through a
	// proxy takes Fallback.
	Proxy func(*http.Request) (*url.URL, error)
	// Dialer opens connections; nil is a net.Dialer with a 10 s timeout
	// and 30 s keep-alives.
	Dialer *net.Dialer
	// ResponseHeaderTimeout bounds the wait for a response's headers once
	// the request is written; zero means none.
	ResponseHeaderTimeout time.Duration
	// IdleTimeout closes a connection idle this long (default 90 s);
	// MaxIdlePerHost bounds the idle connections kept per host (default
	// 256).
	IdleTimeout    time.Duration
	MaxIdlePerHost int

	mu   sync.Mutex
	idle map[string][]*conn // by host:port, most recently used last
}

// conn is one keep-alive connection.
type conn struct {
	t    *Transport
	key  string
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	tp   textproto.Reader
	raw  syscall.RawConn // nc's, for alive; nil when it has none
	used time.Time       // when it went idle
	// reused is set once it has carried a request; written counts the
	// bytes of the current request that went out.
	reused  bool
	written int64
}

// Write writes to the connection, counting what goes out.
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.nc.Write(p)
	c.written += int64(n)
	return n, err
}

// aLongTimeAgo is a deadline in the past: setting it fails a blocked read
// or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.takes(req) {
		return t.Fallback.RoundTrip(req)
	}
	for try := 0; ; try++ {
		c, err := t.get(req)
		if err != nil {
			return nil, err
		}
		resp, err := c.roundTrip(req)
		if err == nil {
			return resp, nil
		}
		c.close()
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		// A pooled connection the server closed after get looked at it
		// fails the write: nothing of the request left, so the server never
		// saw it, and it is sent again on a new connection, as net/http
		// does. Once any of it went out, it is not: the server may be
		// answering it.
		if try > 0 || !c.reused || c.written > 0 || !staleConn(err) || !rewind(req) {
			return nil, err
		}
	}
}

// takes reports whether this transport carries req itself.
func (t *Transport) takes(req *http.Request) bool {
	if req.URL.Scheme != "http" || req.URL.Host == "" || req.URL.User != nil ||
		(req.Body != nil && req.Body != http.NoBody && req.ContentLength <= 0) {
		return false
	}
	if req.Header.Get("Expect") != "" || req.Header.Get("Upgrade") != "" {
		return false
	}
	if t.Proxy != nil {
		if u, err := t.Proxy(req); err != nil || u != nil {
			return false
		}
	}
	return true
}

// rewind gives req a fresh body for a second try.
func rewind(req *http.Request) bool {
	if req.Body == nil || req.Body == http.NoBody {
		return true
	}
	if req.GetBody == nil {
		return false
	}
	b, err := req.GetBody()
	if err != nil {
		return false
	}
	req.Body = b
	return true
}

// staleConn reports whether err is what a connection the server had
// closed gives: reset, or ended.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// hostPort is the address req goes to, with the default port.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// get returns an idle connection to req's host, or dials one.
func (t *Transport) get(req *http.Request) (*conn, error) {
	key := hostPort(req.URL)
	now := time.Now()
	t.mu.Lock()
	for list := t.idle[key]; len(list) > 0; list = t.idle[key] {
		c := list[len(list)-1]
		t.idle[key] = list[:len(list)-1]
		t.mu.Unlock()
		// A connection the server closed while it idled (its keep-alive
		// timeout passed, it restarted) is not used again.
		if now.Sub(c.used) < t.idleTimeout() && c.alive() {
			c.written = 0
			return c, nil
		}
		c.nc.Close()
		t.mu.Lock()
	}
	t.mu.Unlock()
	d := t.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	}
	nc, err := d.DialContext(req.Context(), "tcp", key)
	if err != nil {
		return nil, err
	}
	c := &conn{t: t, key: key, nc: nc, br: bufio.NewReaderSize(nc, 8<<10)}
	c.bw = bufio.NewWriterSize(c, 4<<10)
	c.tp.R = c.br
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	return c, nil
}

func (t *Transport) idleTimeout() time.Duration {
	if t.IdleTimeout > 0 {
		return t.IdleTimeout
	}
	return 90 * time.Second
}

// put keeps c for the next request to its host, or closes it when the
// pool is full.
func (t *Transport) put(c *conn) {
	c.used, c.reused = time.Now(), true
	max := t.MaxIdlePerHost
	if max <= 0 {
		max = 256
	}
	t.mu.Lock()
	if t.idle == nil {
		t.idle = map[string][]*conn{}
	}
	list := t.idle[c.key]
	if len(list) >= max {
		t.mu.Unlock()
		c.nc.Close()
		return
	}
	// The oldest idle connection goes when it has idled too long.
	var stale *conn
	if len(list) > 0 && c.used.Sub(list[0].used) >= t.idleTimeout() {
		stale, list = list[0], list[1:]
	}
	t.idle[c.key] = append(list, c)
	t.mu.Unlock()
	if stale != nil {
		stale.nc.Close()
	}
}

// CloseIdleConnections closes the idle connections, and the fallback's.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.nc.Close()
		}
	}
	if f, ok := t.Fallback.(interface{ CloseIdleConnections() }); ok {
		f.CloseIdleConnections()
	}
}

func (c *conn) close() { c.nc.Close() }

// readable reports whether something can be read from c without waiting.
func (c *conn) readable() bool {
	if c.br.Buffered() > 0 {
		return true
	}
	if c.raw == nil {
		return false
	}
	ok := false
	c.raw.Read(func(fd uintptr) bool {
		ok = peekReady(fd)
		return true
	})
	return ok
}

// alive reports whether a pooled connection is still open and quiet: the
// server has neither closed it nor sent anything unasked. It peeks at the
// socket without waiting: one system call.
func (c *conn) alive() bool {
	if c.raw == nil || c.br.Buffered() > 0 {
		return c.br.Buffered() == 0
	}
	ok := false
	err := c.raw.Read(func(fd uintptr) bool {
		ok = peekEmpty(fd)
		return true // never wait
	})
	return err == nil && ok
}

// roundTrip writes req and reads the response's head.
func (c *conn) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// A cancelled request fails whatever read or write is under way.
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		return nil, err
	}
	if err := c.writeRequest(req); err != nil {
		return fail(err)
	}
	if d := c.t.ResponseHeaderTimeout; d > 0 {
		c.nc.SetReadDeadline(time.Now().Add(d))
	}
	var status int
	var proto, statusText string
	var h textproto.MIMEHeader
	for {
		line, err := c.tp.ReadLine()
		if err != nil {
			return fail(err)
		}
		proto, status, statusText, err = parseStatusLine(line)
		if err != nil {
			return fail(err)
		}
		if h, err = c.tp.ReadMIMEHeader(); err != nil {
			return fail(err)
		}
		if status >= 200 || status == http.StatusSwitchingProtocols {
			break // 1xx answers before the real one are skipped
		}
	}
	if c.t.ResponseHeaderTimeout > 0 {
		c.nc.SetReadDeadline(time.Time{})
	}
	resp := &http.Response{Status: statusText, StatusCode: status, Proto: proto,
		ProtoMajor: 1, ProtoMinor: 1, Header: http.Header(h), Request: req, ContentLength: -1}
	if proto == "HTTP/1.0" {
		resp.ProtoMinor = 0
	}
	resp.Close = hasToken(h["Connection"], "close") || (proto == "HTTP/1.0" && !hasToken(h["Connection"], "keep-alive")) ||
		req.Close || hasToken(req.Header["Connection"], "close")
	b := &body{c: c, stop: stop, ctx: ctx, keep: !resp.Close}
	switch {
	case req.Method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified:
		resp.ContentLength = 0
		b.r = strings.NewReader("")
	case hasToken(h["Transfer-Encoding"], "chunked"):
		resp.TransferEncoding = []string{"chunked"}
		delete(resp.Header, "Transfer-Encoding")
		b.r, b.chunked = httputil.NewChunkedReader(c.br), true
	case len(h["Transfer-Encoding"]) > 0:
		return fail(errors.New("h1: unsupported transfer encoding " + strings.Join(h["Transfer-Encoding"], ", ")))
	default:
		if cl := h.Get("Content-Length"); cl != "" {
			n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64)
			if err != nil || n < 0 {
				return fail(errors.New("h1: bad Content-Length " + strconv.Quote(cl)))
			}
			resp.ContentLength = n
			b.r = &fixedReader{r: c.br, n: n}
		} else {
			b.r, b.keep = c.br, false // read to the end of the connection
		}
	}
	resp.Body = b
	if resp.ContentLength == 0 {
		b.done(nil) // nothing to read: the connection is free now
	}
	return resp, nil
}

// writeRequest writes req's head and body, and flushes them: one write
// for a request that fits the buffer.
func (c *conn) writeRequest(req *http.Request) error {
	w := c.bw
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !validValue(host) || !validValue(method) {
		return errors.New("h1: invalid method or host")
	}
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(req.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	if _, ok := req.Header["User-Agent"]; !ok {
		w.WriteString("User-Agent: Go-http-client/1.1\r\n")
	}
	for k, vs := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if !validName(k) {
			return errors.New("h1: invalid header name " + strconv.Quote(k))
		}
		for _, v := range vs {
			if !validValue(v) {
				return errors.New("h1: invalid value for header " + k)
			}
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	if req.Body != nil && req.Body != http.NoBody {
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(req.ContentLength, 10))
		w.WriteString("\r\n\r\n")
		n, err := io.Copy(w, req.Body)
		req.Body.Close()
		if err != nil {
			return err
		}
		if n != req.ContentLength {
			return errors.New("h1: the request body's length is not its Content-Length")
		}
	} else {
		if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
			w.WriteString("Content-Length: 0\r\n")
		}
		w.WriteString("\r\n")
	}
	return w.Flush()
}

func validName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// parseStatusLine reads "HTTP/1.1 200 OK"; text is "200 OK".
func parseStatusLine(line string) (proto string, status int, text string, err error) {
	proto, text, ok := strings.Cut(line, " ")
	text = strings.TrimLeft(text, " ")
	if !ok || (proto != "HTTP/1.1" && proto != "HTTP/1.0") || len(text) < 3 {
		return "", 0, "", errors.New("h1: malformed status line " + strconv.Quote(line))
	}
	status, err = strconv.Atoi(text[:3])
	if err != nil || status < 100 || (len(text) > 3 && text[3] != ' ') {
		return "", 0, "", errors.New("h1: malformed status line " + strconv.Quote(line))
	}
	return proto, status, text, nil
}

// hasToken reports whether a comma-separated header holds token, in any
// case.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// fixedReader reads a body of n bytes: one that ends sooner is cut.
type fixedReader struct {
	r io.Reader
	n int64
}

func (f *fixedReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	if err == io.EOF && f.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && f.n == 0 {
		err = io.EOF
	}
	return n, err
}

// errClosed is what reading a closed body gives.
var errClosed = errors.New("h1: read on a closed response body")

// body is a response body on a pooled connection: read to its end, the
// connection goes back to the pool; closed early, or failed, it is closed.
// One goroutine reads it; Close may come from another, and then fails the
// read under way.
type body struct {
	c       *conn
	r       io.Reader
	ctx     context.Context
	stop    func() bool
	keep    bool
	chunked bool
	closed  atomic.Bool

	mu    sync.Mutex // guards ended, err and the end of the connection's use
	ended bool
	err   error
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errClosed
	}
	b.mu.Lock()
	ended, err := b.ended, b.err
	b.mu.Unlock()
	if ended {
		if err == nil {
			err = io.EOF
		}
		return 0, err
	}
	n, err := b.r.Read(p)
	if err == nil {
		return n, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.ended: // closed under the read
		return n, errClosed
	case err == io.EOF:
		if b.chunked {
			// The trailer section (usually just the blank line) ends
			// the message.
			if _, terr := b.c.tp.ReadMIMEHeader(); terr != nil {
				b.keep = false
			}
		}
		b.done(nil)
		return n, io.EOF
	case b.ctx.Err() != nil:
		err = b.ctx.Err()
	case errors.Is(err, io.EOF):
		err = io.ErrUnexpectedEOF
	}
	b.keep = false
	b.done(err)
	return n, err
}

// done ends the body (b.mu held, or b not shared yet): the connection is
// pooled when the message ended cleanly and no cancellation touched it.
func (b *body) done(err error) {
	if b.ended {
		return
	}
	b.ended, b.err = true, err
	if b.stop() && b.keep && err == nil {
		b.c.t.put(b.c)
		return
	}
	b.c.close()
}

// Close implements io.Closer. A body not read to its end closes its
// connection (the rest of a stream is not wanted) — unless its end has
// already arrived: a reader that stops at the last event of a stream
// ("data: [DONE]") leaves only the end of the chunked body, which is read
// here, without waiting, so the connection serves the next request
// instead of a new one being dialled.
func (b *body) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.ended && b.keep && b.chunked && b.ctx.Err() == nil && b.c.readable() {
		b.drain()
	}
	if !b.ended {
		b.keep = false
		b.done(errClosed)
	}
	return nil
}

// maxDrain bounds what Close reads to reach the end of a body.
const maxDrain = 4 << 10

// drain reads the rest of a chunked body that has already arrived (b.mu
// held); it ends the body when it reaches the end. A deadline keeps it
// from waiting on an end that has not come after all.
func (b *body) drain() {
	b.c.nc.SetReadDeadline(time.Now().Add(time.Millisecond))
	var buf [512]byte
	for n := 0; n < maxDrain; {
		k, err := b.r.Read(buf[:])
		n += k
		if err == io.EOF {
			if _, terr := b.c.tp.ReadMIMEHeader(); terr == nil {
				b.c.nc.SetReadDeadline(time.Time{})
				b.done(nil)
			}
			return
		}
		if err != nil {
			return
		}
	}
}
