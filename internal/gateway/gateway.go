// Package gateway runs a model call for any inbound surface: it resolves
// the model, calls the provider, and accounts for the call in the ledger
// and the metrics, whatever the outcome. Inbound adapters decode and
// encode wire formats; everything between is here, once.
package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/keys"
	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/llm"
	"github.com/junctionhq/junction/internal/metrics"
	"github.com/junctionhq/junction/internal/router"
)

// StatusClientClosed is recorded for requests whose client hung up.
const StatusClientClosed = 499

// Ledger receives usage records.
type Ledger interface {
	Add(ledger.Record) error
}

// Gateway runs calls.
type Gateway struct {
	Router  *router.Router
	Ledger  Ledger
	Metrics *metrics.Metrics
	// Timeout bounds a non-streamed call; zero means none.
	Timeout time.Duration
}

// Call describes one inbound request for accounting.
type Call struct {
	Surface   string
	RequestID string
	Key       *keys.Key
	// Tags are the request's tags, merged over the key's defaults.
	Tags  map[string]string
	Start time.Time
	// Model is the name the client asked for; Target is set by Resolve.
	Model  string
	Target *router.Target
	Stream bool
}

// Resolve finds the call's target.
func (g *Gateway) Resolve(c *Call) error {
	t, err := g.Router.Resolve(c.Model)
	if err != nil {
		return err
	}
	c.Target = t
	return nil
}

// Chat runs a non-streamed chat call and records it. c.Target must be set.
func (g *Gateway) Chat(ctx context.Context, c *Call, req *llm.Request) (*llm.Response, error) {
	req.Model = c.Target.UpstreamModel
	if g.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.Timeout)
		defer cancel()
	}
	resp, err := c.Target.Upstream.Chat(ctx, req)
	err = timeoutError(ctx, c, err)
	var usage llm.Usage
	if resp != nil {
		usage = resp.Usage
	}
	g.Finish(c, usage, nil, err)
	return resp, err
}

// Embed runs an embeddings call and records it.
func (g *Gateway) Embed(ctx context.Context, c *Call, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	e, ok := c.Target.Upstream.(llm.Embedder)
	if !ok {
		err := llm.Errorf(http.StatusBadRequest, llm.ErrInvalidRequest, "model %q is served by provider %s (%s), which has no embeddings API",
			c.Model, c.Target.Provider, c.Target.ProviderType)
		err.Param = "model"
		g.Finish(c, llm.Usage{}, nil, err)
		return nil, err
	}
	req.Model = c.Target.UpstreamModel
	if g.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.Timeout)
		defer cancel()
	}
	resp, err := e.Embed(ctx, req)
	err = timeoutError(ctx, c, err)
	var usage llm.Usage
	if resp != nil {
		usage = resp.Usage
	}
	g.Finish(c, usage, nil, err)
	return resp, err
}

// timeoutError turns Junction's own deadline into a 504 naming the
// provider.
func timeoutError(ctx context.Context, c *Call, err error) error {
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && errors.Is(err, context.DeadlineExceeded) {
		return &llm.Error{Status: http.StatusGatewayTimeout, Type: llm.ErrTimeout, Provider: c.Target.Provider,
			Message: "upstream did not answer in time", Err: err}
	}
	return err
}

// ChatStream starts a streamed call. The returned Stream must be finished
// with Finish; the call is recorded then.
func (g *Gateway) ChatStream(ctx context.Context, c *Call, req *llm.Request) (*Stream, error) {
	req.Model = c.Target.UpstreamModel
	c.Stream = true
	s, err := c.Target.Upstream.ChatStream(ctx, req)
	if err != nil {
		g.Finish(c, llm.Usage{}, nil, err)
		return nil, err
	}
	return &Stream{g: g, c: c, s: s}, nil
}

// Stream is a streamed call in progress. It tracks time to first token
// and usage for the ledger.
type Stream struct {
	g     *Gateway
	c     *Call
	s     llm.Stream
	usage llm.Usage
	ttft  time.Duration
	done  bool
}

// Recv returns the next event (see llm.Stream).
func (s *Stream) Recv() (llm.Event, error) {
	ev, err := s.s.Recv()
	if err != nil {
		return ev, err
	}
	switch ev.Type {
	case llm.EventText, llm.EventToolCall, llm.EventToolArgs:
		if s.ttft == 0 {
			s.ttft = time.Since(s.c.Start)
		}
	case llm.EventUsage:
		s.usage = *ev.Usage
	}
	return ev, nil
}

// Finish closes the upstream stream and records the call. err is what
// ended the stream (nil or io.EOF for success).
func (s *Stream) Finish(err error) {
	if s.done {
		return
	}
	s.done = true
	s.s.Close()
	if errors.Is(err, io.EOF) {
		err = nil
	}
	var ttft *time.Duration
	if s.ttft > 0 {
		ttft = &s.ttft
	}
	s.g.Finish(s.c, s.usage, ttft, err)
}

// Finish records a call's outcome in the ledger and the metrics. It is
// exported for surfaces that fail before reaching a provider.
func (g *Gateway) Finish(c *Call, usage llm.Usage, ttft *time.Duration, err error) {
	latency := time.Since(c.Start)
	status := http.StatusOK
	errType := ""
	if err != nil {
		switch {
		case errors.Is(err, context.Canceled):
			status, errType = StatusClientClosed, "client_closed"
		default:
			e := llm.AsError(err)
			status, errType = e.Status, string(e.Type)
		}
	}
	rec := ledger.Record{
		Time: c.Start, RequestID: c.RequestID, Tags: c.Tags, Surface: c.Surface, Model: c.Model, Stream: c.Stream,
		InputTokens: usage.InputTokens, OutputTokens: usage.OutputTokens, CachedTokens: usage.CachedInputTokens,
		Status: status, ErrorType: errType, LatencyMS: float64(latency.Microseconds()) / 1000,
	}
	if c.Key != nil {
		rec.KeyID, rec.KeyName = c.Key.ID, c.Key.Name
	}
	provider := ""
	if t := c.Target; t != nil {
		rec.Provider, rec.UpstreamModel = t.Provider, t.UpstreamModel
		provider = t.Provider
		if t.Price != nil {
			cost := t.Price.Cost(usage.InputTokens, usage.CachedInputTokens, usage.OutputTokens)
			rec.CostUSD = &cost
		}
	}
	if ttft != nil {
		ms := float64(ttft.Microseconds()) / 1000
		rec.TTFTMS = &ms
	}
	if m := g.Metrics; m != nil {
		m.Requests.WithLabelValues(c.Surface, c.Model, provider, strconv.Itoa(status)).Inc()
		m.Latency.WithLabelValues(c.Model, provider).Observe(latency.Seconds())
		if ttft != nil {
			m.TTFT.WithLabelValues(c.Model, provider).Observe(ttft.Seconds())
		}
		if usage.InputTokens > 0 || usage.OutputTokens > 0 {
			m.Tokens.WithLabelValues(c.Model, provider, "input").Add(float64(usage.InputTokens))
			m.Tokens.WithLabelValues(c.Model, provider, "output").Add(float64(usage.OutputTokens))
			m.Tokens.WithLabelValues(c.Model, provider, "cached").Add(float64(usage.CachedInputTokens))
		}
		if rec.CostUSD != nil {
			m.Cost.WithLabelValues(c.Model, provider).Add(*rec.CostUSD)
		} else if c.Target != nil && status < 400 {
			m.Unpriced.WithLabelValues(c.Model, provider).Inc()
		}
	}
	if g.Ledger != nil {
		g.Ledger.Add(rec)
	}
}
