// Package h1srv is a lean HTTP/1.1 server for Junction's hot path: plain
// text HTTP/1.1 requests served by an ordinary http.Handler, with one
// goroutine per connection, pooled buffers, a request head parsed from one
// string and a response written with as few allocations and system calls
// as the exchange allows.
//
// It is not a general server. Whatever it does not serve itself goes,
// unchanged, to a standard net/http server (Fallback) through a listener
// shim: HTTP/2 with prior knowledge (the "PRI * HTTP/2.0" preface),
// Upgrade requests and CONNECT. TLS is not its business at all: a caller
// that serves TLS uses net/http directly. Request trailers are read and
// dropped; response trailers are not written; obsolete line folding in
// request headers is refused with 400.
package h1srv

import (
	"bufio"
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves HTTP/1.1 on a listener. Set Handler and Fallback before
// Serve; the other fields are optional.
type Server struct {
	// Handler answers every request this server parses.
	Handler http.Handler
	// Fallback serves the connections handed over: HTTP/2 with prior
	// knowledge, Upgrade and CONNECT requests. Its Handler is normally the
	// same as Handler. Serve starts it on a listener shim; Shutdown and
	// Close stop it. Nil refuses those requests (505 for the preface, 501
	// for the others).
	Fallback *http.Server
	// ReadHeaderTimeout bounds the wait for a request's head once its
	// first byte arrived (and for the first request of a connection).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, head and body; it is
	// lifted once the body has been read, so it never cuts a response.
	ReadTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long between
	// requests; zero is ReadHeaderTimeout's value, or no limit.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps a request's head; a larger one gets 431. Zero is
	// http.DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// ErrorLog receives handler panics and accept errors; nil is the log
	// package's standard logger.
	ErrorLog *log.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	shim      *shimListener
	fallback  chan error // the fallback's Serve result, once started
	shutting  atomic.Bool
}

// Serve accepts connections on ln and serves each on its own goroutine
// until Shutdown or Close; it then returns http.ErrServerClosed. Any
// other accept error is returned as it is.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(ln, true) {
		return http.ErrServerClosed
	}
	defer s.track(ln, false)
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logf("h1srv: accept error: %v; retrying in %v", err, backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := newConn(s, nc)
		if !s.add(c) {
			nc.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

// isTemporary reports an accept error worth retrying (too many open
// files, a connection aborted before it was accepted).
func isTemporary(err error) bool {
	type temporary interface{ Temporary() bool }
	var t temporary
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) track(ln net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.listeners, ln)
		return true
	}
	if s.shutting.Load() {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) add(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) remove(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// handOff gives nc, whose first bytes were already read (prefix), to the
// fallback server, starting it on first use. It reports false when there
// is no fallback or the server is closing.
func (s *Server) handOff(nc net.Conn) bool {
	s.mu.Lock()
	if s.Fallback == nil || s.shutting.Load() {
		s.mu.Unlock()
		return false
	}
	if s.shim == nil {
		s.shim = &shimListener{conns: make(chan net.Conn), done: make(chan struct{}), addr: nc.LocalAddr()}
		s.fallback = make(chan error, 1)
		go func(shim *shimListener, errc chan error) { errc <- s.Fallback.Serve(shim) }(s.shim, s.fallback)
	}
	shim := s.shim
	s.mu.Unlock()
	return shim.give(nc)
}

// Shutdown stops accepting, closes idle connections and waits for the
// ones serving a request to finish it (each closes after its response),
// then shuts the fallback server down. It returns ctx's error if that
// ends first, leaving the remaining connections open (Close ends them).
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	var fallbackErr chan error
	s.mu.Lock()
	if s.shim != nil {
		fallbackErr = make(chan error, 1)
		go func() { fallbackErr <- s.Fallback.Shutdown(ctx) }()
	}
	s.mu.Unlock()
	wait := time.Millisecond
	t := time.NewTimer(wait)
	defer t.Stop()
	for !s.closeIdle() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
		t.Reset(wait)
	}
	if fallbackErr != nil {
		return <-fallbackErr
	}
	return nil
}

// Close closes the listeners and every connection at once, and the
// fallback server.
func (s *Server) Close() error {
	err := s.closeListeners()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	shim := s.shim
	s.mu.Unlock()
	if shim != nil {
		if ferr := s.Fallback.Close(); err == nil {
			err = ferr
		}
	}
	return err
}

func (s *Server) closeListeners() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutting.Store(true)
	var err error
	for ln := range s.listeners {
		if cerr := ln.Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	}
	if s.shim != nil {
		s.shim.Close()
	}
	return err
}

// closeIdle closes the connections waiting for a request and reports
// whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.nc.Close()
		}
	}
	return len(s.conns) == 0
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// Pools of per-connection buffers: a connection holds one of each while
// it lives.
var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

// shimListener is the listener the fallback server accepts handed-over
// connections from.
type shimListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func (l *shimListener) give(nc net.Conn) bool {
	select {
	case l.conns <- nc:
		return true
	case <-l.done:
		return false
	}
}

// Accept implements net.Listener.
func (l *shimListener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.conns:
		return nc, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *shimListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener.
func (l *shimListener) Addr() net.Addr { return l.addr }

// replayConn is a connection handed over with the bytes already read
// from it put back in front.
type replayConn struct {
	net.Conn
	prefix []byte
}

// Read implements net.Conn.
func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
