package h1srv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Connection states, for Shutdown: only an idle connection (waiting for a
// request) may be closed under a client's feet.
const (
	stateIdle int32 = iota
	stateActive
	stateClosed
)

// aLongTimeAgo is a deadline in the past: setting it fails a blocked read
// at once.
var aLongTimeAgo = time.Unix(1, 0)

// conn is one client connection, served by one goroutine.
type conn struct {
	s          *Server
	nc         net.Conn
	remoteAddr string
	br         *bufio.Reader
	bw         *bufio.Writer
	head       []byte // the request head's bytes, reused
	wbuf       []byte // the held-back response body, reused
	state      atomic.Int32

	// The watch: while a handler runs with the request fully read, a
	// goroutine waits on a one-byte read so that a client hanging up
	// cancels the request's context (net/http's background read). It
	// starts only once the handler has run for watchDelay (watchTimer
	// fires then), so a request answered sooner costs no goroutine, read
	// or deadline for it. A byte it reads (the next pipelined request's
	// first) is kept in watchByte and read first. watching is the conn
	// goroutine's: startWatch armed a watch that stopWatch has not ended.
	// watchMu orders the timer's start against stopWatch, and guards
	// watch, the watch's state.
	watching   bool
	watchMu    sync.Mutex
	watch      int
	watchTimer *time.Timer
	watchDone  chan error
	watchByte  [1]byte
	hasByte    bool
	cancel     context.CancelFunc // the current request's
	// linger is set when the connection closes with a request body
	// unread (see lingerClose).
	linger bool
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, remoteAddr: nc.RemoteAddr().String(), watchDone: make(chan error, 1)}
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(c)
	c.bw = writers.Get().(*bufio.Writer)
	c.bw.Reset(nc)
	return c
}

// Read reads from the connection for the buffered reader, the watch's
// byte first.
func (c *conn) Read(p []byte) (int, error) {
	if c.hasByte {
		c.hasByte = false
		p[0] = c.watchByte[0]
		return 1, nil
	}
	return c.nc.Read(p)
}

func (c *conn) close() {
	c.state.Store(stateClosed)
	if c.linger {
		c.lingerClose()
	}
	c.nc.Close()
	c.s.remove(c)
	c.release()
}

// lingerClose ends a connection whose last request body was left unread:
// closing it at once would answer the client's unread bytes with a
// reset, which can destroy the response before the client reads it. So
// the write side is shut first (the client sees the response, then EOF)
// and what the client still sends is read and dropped until it closes
// too, for up to half a second (net/http waits as long).
func (c *conn) lingerClose() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	var buf [4096]byte
	for {
		if _, err := c.nc.Read(buf[:]); err != nil {
			return
		}
	}
}

// lingerTime bounds lingerClose.
const lingerTime = 500 * time.Millisecond

func (c *conn) release() {
	if c.br != nil {
		c.br.Reset(nil)
		readers.Put(c.br)
		c.bw.Reset(nil)
		writers.Put(c.bw)
		c.br, c.bw = nil, nil
	}
}

// serve reads and answers requests until the connection ends.
func (c *conn) serve() {
	handedOff := false
	defer func() {
		if handedOff {
			c.s.remove(c)
			return
		}
		c.close()
	}()
	s := c.s
	maxHead := s.MaxHeaderBytes
	if maxHead <= 0 {
		maxHead = http.DefaultMaxHeaderBytes
	}
	maxHead += 4096 // room for the request line, as net/http allows
	accepted := time.Now()
	for first := true; ; first = false {
		// Until a request's first byte arrives the connection is idle:
		// Shutdown may close it. That includes a new one, which a client
		// may have opened only to keep in its pool.
		if c.br.Buffered() == 0 && !c.hasByte {
			wait := s.ReadHeaderTimeout
			if !first && s.IdleTimeout > 0 {
				wait = s.IdleTimeout
			}
			c.setReadDeadline(wait)
			if _, err := c.br.Peek(1); err != nil {
				return
			}
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return // Shutdown closed it
		}
		// A head's time runs from its first byte; the first request's
		// from the connection's accept, as in net/http.
		start := time.Now()
		if first {
			start = accepted
		}
		if s.ReadHeaderTimeout > 0 {
			c.nc.SetReadDeadline(start.Add(s.ReadHeaderTimeout))
		} else if s.ReadTimeout > 0 {
			c.nc.SetReadDeadline(start.Add(s.ReadTimeout))
		} else {
			c.nc.SetReadDeadline(time.Time{})
		}
		var err error
		c.head, err = readHead(c.br, c.head, maxHead)
		if err != nil {
			switch {
			case err == errHeadTooLarge:
				c.refuse(http.StatusRequestHeaderFieldsTooLarge, "request header too large")
			case isTimeout(err) && len(c.head) > 0:
				c.refuse(http.StatusRequestTimeout, "request head did not arrive in time")
			}
			return
		}
		r, err := parseHead(string(c.head))
		if err != nil {
			var he *headError
			if errors.As(err, &he) {
				c.refuse(he.status, he.msg)
			}
			return
		}
		if r.handOff {
			handedOff = c.handOff()
			if !handedOff {
				c.refuse(http.StatusNotImplemented, "protocol not served here")
			}
			return
		}
		if s.ReadTimeout > 0 {
			c.nc.SetReadDeadline(start.Add(s.ReadTimeout))
		} else {
			c.nc.SetReadDeadline(time.Time{})
		}
		if !c.serveRequest(r) {
			return
		}
		if !c.state.CompareAndSwap(stateActive, stateIdle) {
			return
		}
	}
}

func (c *conn) setReadDeadline(d time.Duration) {
	if d > 0 {
		c.nc.SetReadDeadline(time.Now().Add(d))
	} else {
		c.nc.SetReadDeadline(time.Time{})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// handOff gives the connection, with the bytes read so far put back, to
// the fallback server.
func (c *conn) handOff() bool {
	prefix := make([]byte, 0, len(c.head)+c.br.Buffered())
	prefix = append(prefix, c.head...)
	buffered, _ := c.br.Peek(c.br.Buffered())
	prefix = append(prefix, buffered...)
	c.nc.SetReadDeadline(time.Time{})
	if !c.s.handOff(&replayConn{Conn: c.nc, prefix: prefix}) {
		return false
	}
	c.release()
	return true
}

// refuse answers a request that cannot be served, and the connection
// closes after.
func (c *conn) refuse(status int, msg string) {
	fmt.Fprintf(c.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n%d %s: %s",
		status, http.StatusText(status), status, http.StatusText(status), msg)
	c.bw.Flush()
}

// serveRequest runs the handler for r and finishes its response. It
// reports whether the connection may carry another request.
func (c *conn) serveRequest(r *request) (keep bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.cancel = cancel
	if c.wbuf == nil {
		c.wbuf = make([]byte, 0, bufferedBody)
	}
	w := &response{c: c, status: http.StatusOK, header: make(http.Header, 16), contentLength: -1, buf: c.wbuf[:0]}
	w.head = r.method == http.MethodHead
	w.wantsClose = r.close
	w.http10 = r.minor == 0
	b := &w.body
	b.c, b.w = c, w
	var reqBody io.ReadCloser = http.NoBody
	if r.chunked || r.contentLength > 0 {
		b.remaining, b.chunked, b.expectContinue = r.contentLength, r.chunked, r.expectContinue
		if r.chunked {
			b.init()
		}
		reqBody = b
	} else {
		b.done = true
		c.startWatch()
	}
	var tmp http.Request
	tmp.Method = r.method
	tmp.URL = r.url
	tmp.Proto, tmp.ProtoMajor, tmp.ProtoMinor = r.proto, r.major, r.minor
	tmp.Header = r.header
	tmp.Body = reqBody
	tmp.ContentLength = r.contentLength
	if r.chunked {
		tmp.TransferEncoding = []string{"chunked"}
	}
	tmp.Close = r.close
	tmp.Host = r.host
	tmp.RemoteAddr = c.remoteAddr
	tmp.RequestURI = r.target
	req := tmp.WithContext(ctx)
	w.req = req

	if !c.runHandler(w, req) {
		c.stopWatch()
		return false
	}
	keep = w.finish()
	if !c.stopWatch() {
		keep = false
	}
	b.closed = true
	c.linger = !keep && reqBody != http.NoBody && !b.done && w.err == nil
	return keep && !c.s.shutting.Load()
}

// runHandler calls the handler, recovering a panic: it reports false when
// the handler panicked (the connection then closes without finishing the
// response, so the client sees it cut).
func (c *conn) runHandler(w *response, req *http.Request) (ok bool) {
	defer func() {
		if err := recover(); err != nil {
			if err != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.s.logf("h1srv: panic serving %v: %v\n%s", c.remoteAddr, err, buf)
			}
			ok = false
		}
	}()
	c.s.Handler.ServeHTTP(w, req)
	return true
}

// watchDelay is how long a handler runs, its request read whole, before
// the connection is watched for the client hanging up. Answers sooner
// than that (most requests to a fast upstream, refusals, errors) never
// start a watch; a client that hangs up during a longer one cancels it at
// most watchDelay later than an immediate watch would have.
const watchDelay = 50 * time.Millisecond

// The watch's states.
const (
	watchOff     = iota // no request is being watched
	watchArmed          // watchTimer runs: the watch starts when it fires
	watchReading        // the watch goroutine reads
)

// startWatch arms the watch for a client hanging up, once the request
// has been read whole. It does not when bytes of a next request are
// already buffered (a pipelining client is there).
func (c *conn) startWatch() {
	if c.watching || c.br.Buffered() > 0 || c.hasByte {
		return
	}
	c.watching = true
	c.watchMu.Lock()
	c.watch = watchArmed
	c.watchMu.Unlock()
	if c.watchTimer == nil {
		c.watchTimer = time.AfterFunc(watchDelay, c.watchLater)
	} else {
		c.watchTimer.Reset(watchDelay)
	}
}

// watchLater, on its timer's goroutine, starts the watch unless the
// request has ended since.
func (c *conn) watchLater() {
	c.watchMu.Lock()
	if c.watch != watchArmed {
		c.watchMu.Unlock()
		return
	}
	c.watch = watchReading
	cancel := c.cancel
	// The request's read deadline no longer applies: it bounded reading
	// the request, which is over.
	c.nc.SetReadDeadline(time.Time{})
	c.watchMu.Unlock()
	c.watchRead(cancel)
}

func (c *conn) watchRead(cancel context.CancelFunc) {
	n, err := c.nc.Read(c.watchByte[:])
	if n == 1 {
		c.watchDone <- nil
		return
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		cancel() // the client hung up (or the connection broke)
	}
	c.watchDone <- err
}

// stopWatch stops the watch and reports whether the connection is still
// good for another request.
func (c *conn) stopWatch() bool {
	if !c.watching {
		return true
	}
	c.watching = false
	c.watchMu.Lock()
	state := c.watch
	c.watch = watchOff
	if state == watchArmed {
		c.watchMu.Unlock()
		c.watchTimer.Stop() // a late fire finds the watch off
		return true
	}
	c.nc.SetReadDeadline(aLongTimeAgo)
	c.watchMu.Unlock()
	err := <-c.watchDone
	if err == nil {
		c.hasByte = true
		return true
	}
	return errors.Is(err, os.ErrDeadlineExceeded)
}
