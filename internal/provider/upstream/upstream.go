// Package upstream holds what every HTTP provider adapter shares: the one
// HTTP client setup, and the mapping of upstream statuses and transport
// failures to *llm.Error, so that a 429 or a reset connection means the same
// thing whichever provider it came from.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/junctionhq/junction/internal/platform/tracing"
	"github.com/junctionhq/junction/internal/provider/upstream/h1"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// NewClient returns the HTTP client used to call upstreams — the one
// client setup in Junction: timeouts, keep-alive, pool sizes and trace
// propagation are set here. timeout bounds the wait for response headers;
// a streamed body may take longer, bounded by the caller's context. opts
// say what differs from the defaults, which suit remote provider APIs.
func NewClient(timeout time.Duration, opts ...Option) *http.Client {
	var o clientSetup
	for _, opt := range opts {
		opt(&o)
	}
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer(dialTimeout).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       idleTimeout,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	if o.local {
		t.Proxy = nil
		t.DialContext = dialer(localDialTimeout).DialContext
		t.ForceAttemptHTTP2 = false
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 4096, 512
		t.DisableCompression = true
		t.ResponseHeaderTimeout = 0
	}
	c := &http.Client{Transport: t}
	if o.lean {
		c.Transport = &h1.Transport{Fallback: t, Proxy: t.Proxy, ResponseHeaderTimeout: t.ResponseHeaderTimeout,
			IdleTimeout: t.IdleConnTimeout, MaxIdlePerHost: t.MaxIdleConnsPerHost, Dialer: dialer(dialTimeout)}
	}
	if o.traced {
		c.Transport = tracing.Transport(c.Transport)
	}
	return c
}

// Option is what differs between the clients NewClient builds.
type Option func(*clientSetup)

type clientSetup struct{ local, lean, traced bool }

// Local sizes the client for servers on this machine or its network —
// the model servers Junction hosts: connections are dialled within 2 s,
// kept idle by the hundred per server, never proxied or transparently
// compressed, and only the caller's context bounds the wait for an
// answer (an invocation's own timeout, which may be long).
func Local() Option { return func(o *clientSetup) { o.local = true } }

// Lean puts the lean HTTP/1.1 transport (internal/provider/upstream/h1)
// in front: requests to plain-HTTP upstreams (a vLLM or llama.cpp server,
// a sidecar) are written and read on the calling goroutine, without
// net/http's per-connection goroutines; the rest (https, proxies) go to
// net/http's transport as before.
func Lean() Option { return func(o *clientSetup) { o.lean = true } }

// Traced makes every request continue the caller's trace (W3C
// traceparent).
func Traced() Option { return func(o *clientSetup) { o.traced = true } }

// The dial and keep-alive settings of NewClient's clients.
const (
	dialTimeout      = 10 * time.Second
	localDialTimeout = 2 * time.Second
	idleTimeout      = 90 * time.Second
)

// dialer opens connections to upstreams.
func dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
}

// StatusError turns a non-2xx upstream answer into an *llm.Error. message
// and code are what the upstream's error body said, if it could be read.
func StatusError(provider string, status int, header http.Header, message, code string) *llm.Error {
	e := &llm.Error{Provider: provider, Code: code}
	if message == "" {
		message = http.StatusText(status)
	}
	e.Message = fmt.Sprintf("upstream answered %d: %s", status, message)
	switch {
	case status == http.StatusTooManyRequests:
		e.Status, e.Type = http.StatusTooManyRequests, llm.ErrRateLimit
		e.RetryAfter = header.Get("Retry-After")
	case status == 529: // Anthropic's "overloaded"
		e.Status, e.Type = http.StatusServiceUnavailable, llm.ErrOverloaded
		e.RetryAfter = header.Get("Retry-After")
	case status == http.StatusServiceUnavailable:
		e.Status, e.Type = http.StatusServiceUnavailable, llm.ErrOverloaded
		e.RetryAfter = header.Get("Retry-After")
	case status == http.StatusGatewayTimeout || status == http.StatusRequestTimeout:
		e.Status, e.Type = http.StatusGatewayTimeout, llm.ErrTimeout
	case status >= 500:
		e.Status, e.Type = http.StatusBadGateway, llm.ErrUpstream
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		// The client's key is fine; Junction's key for the upstream is not.
		e.Status, e.Type = http.StatusBadGateway, llm.ErrUpstream
		e.Message = fmt.Sprintf("upstream rejected Junction's credentials (%d): %s", status, message)
	case status == http.StatusNotFound:
		e.Status, e.Type = http.StatusNotFound, llm.ErrNotFound
	case status == http.StatusRequestEntityTooLarge:
		e.Status, e.Type = http.StatusRequestEntityTooLarge, llm.ErrTooLarge
	default:
		e.Status, e.Type = http.StatusBadRequest, llm.ErrInvalidRequest
		Classify(e, message)
	}
	return e
}

// Classify refines a 400 from an upstream into a context-window or
// content-policy error, which a route may send elsewhere, by the codes and
// wording OpenAI, Anthropic and Bedrock use.
func Classify(e *llm.Error, message string) {
	m := strings.ToLower(message + " " + e.Code)
	switch {
	case strings.Contains(m, "context_length_exceeded"), strings.Contains(m, "maximum context length"),
		strings.Contains(m, "prompt is too long"), strings.Contains(m, "input is too long"),
		strings.Contains(m, "too many input tokens"), strings.Contains(m, "context window"):
		e.Type = llm.ErrContextWindow
	case strings.Contains(m, "content_policy_violation"), strings.Contains(m, "content_filter"),
		strings.Contains(m, "content management policy"), strings.Contains(m, "flagged by our safety"):
		e.Type = llm.ErrContentPolicy
	}
}

// TransportError turns a failure to reach or read from an upstream into an
// *llm.Error: 504 for a timeout, 502 otherwise. A cancellation by the
// caller's context is returned as the context's error, unwrapped.
func TransportError(ctx context.Context, provider string, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) || errors.Is(err, context.Canceled) {
		return ctx.Err()
	}
	e := &llm.Error{Provider: provider, Err: err}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		e.Status, e.Type = http.StatusGatewayTimeout, llm.ErrTimeout
		e.Message = "upstream timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Status, e.Type = http.StatusBadGateway, llm.ErrUpstream
		e.Message = "upstream is unreachable (connection refused)"
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		e.Status, e.Type = http.StatusBadGateway, llm.ErrUpstream
		e.Message = "upstream closed the connection unexpectedly"
	default:
		e.Status, e.Type = http.StatusBadGateway, llm.ErrUpstream
		e.Message = "upstream is unreachable: " + describe(err)
	}
	return e
}

// Garbage reports an upstream answer that could not be parsed.
func Garbage(provider string, err error) *llm.Error {
	return &llm.Error{Status: http.StatusBadGateway, Type: llm.ErrUpstream, Provider: provider,
		Message: "upstream sent a response Junction could not parse: " + describe(err), Err: err}
}

// describe returns an error's text without the request URL, which may
// carry secrets in its query.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// maxSized is the largest body ReadBody reads into a buffer of the length
// the upstream announced; a larger one grows as it is read.
const maxSized = 8 << 20

// ReadBody reads resp's body whole: into one buffer of its length when
// the upstream sent a Content-Length, rather than the doubling buffers of
// io.ReadAll. A body shorter than announced is an error
// (io.ErrUnexpectedEOF), as the transport reports it.
func ReadBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n > 0 && n <= maxSized {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(resp.Body)
}
