package gateway

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/junctionhq/junction/internal/respcache"
	"github.com/junctionhq/junction/internal/router"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// cacheKey is the response-cache key of a call, or "" when the cache is
// not consulted: no cache, a model or route that has not opted in, or a
// request that said Cache-Control: no-cache (which also stores nothing
// unless it allows it: no-cache only bypasses the lookup). It also sets
// the call's semantic probe, unless the request asked for exact matches
// only (X-Junction-Cache: exact), cannot be answered by meaning, or is
// guarded: a hit skips the input guardrail, which an exact repeat has
// passed but a message only close in meaning has not.
func (g *Gateway) cacheKey(c *Call, req *llm.Request, guarded bool) (key string, lookup bool) {
	if !g.Cache.Enabled(c.Model) || cacheDirective(c.CacheControl, "no-store") {
		return "", false
	}
	// The team tag comes from the key (a request cannot set it).
	keyID, team := "", c.Tags["team"]
	if c.Key != nil {
		keyID = c.Key.ID
	}
	scope := g.Cache.ScopeOf(keyID, team)
	if c.CacheMode != CacheExact && !guarded {
		c.cacheProbe = g.Cache.Probe(scope, c.Model, req)
	}
	return respcache.Key(scope, c.Model, req), !cacheDirective(c.CacheControl, "no-cache")
}

// CacheExact is the X-Junction-Cache value that limits a request to exact
// matches: the semantic cache neither answers nor indexes it.
const CacheExact = "exact"

func cacheDirective(header, d string) bool {
	for _, f := range strings.Split(header, ",") {
		if strings.EqualFold(strings.TrimSpace(f), d) {
			return true
		}
	}
	return false
}

// cacheHit answers the call from the cache if it holds the answer, and
// records the hit: no tokens billed, cost zero, and the cost the answer
// had when made as what the hit saved. An exact miss is looked up by
// meaning when the call has a semantic probe.
func (g *Gateway) cacheHit(ctx context.Context, c *Call, key string) (*llm.Response, bool) {
	reason := "cache hit"
	e, ok := g.Cache.Get(ctx, key)
	if !ok && c.cacheProbe != nil {
		var sim float64
		e, sim, ok = g.Cache.Similar(ctx, c.cacheProbe)
		reason = fmt.Sprintf("semantic cache hit (similarity %.3f)", sim)
	}
	if !ok {
		return nil, false
	}
	c.Target = &router.Target{Model: e.Served, Provider: e.Provider, UpstreamModel: e.UpstreamModel}
	c.Route, c.Reason = c.plan.Route(), reason
	c.cacheHit, c.cacheSaved = true, e.CostUSD
	g.Finish(c, llm.Usage{}, nil, nil)
	return e.Response, true
}

// cachePut stores a call's answer: only a whole answer (stop or tool
// calls) that no guardrail changed, with what it cost.
func (g *Gateway) cachePut(ctx context.Context, c *Call, key string, resp *llm.Response) {
	if resp.StopReason != llm.StopEnd && resp.StopReason != llm.StopToolCalls || c.Target == nil ||
		strings.Contains(c.Guardrail, "INTERVENED") {
		return
	}
	e := &respcache.Entry{Response: resp, Served: c.Target.Model, Provider: c.Target.Provider, UpstreamModel: c.Target.UpstreamModel}
	if p := c.Target.Price; p != nil {
		u := resp.Usage
		cost := p.CostWithWrites(u.InputTokens, u.CachedInputTokens, u.CacheWriteTokens, u.OutputTokens)
		e.CostUSD = &cost
	}
	ctx = context.WithoutCancel(ctx)
	g.Cache.Put(ctx, key, e)
	g.Cache.Index(ctx, c.cacheProbe, key)
}

// capture is a stream that keeps what it relays, and stores the answer
// once the stream has ended whole.
type capture struct {
	llm.Stream
	g    *Gateway
	c    *Call
	ctx  context.Context
	key  string
	resp llm.Response
	text strings.Builder
}

func (s *capture) Recv() (llm.Event, error) {
	ev, err := s.Stream.Recv()
	if err == io.EOF {
		if s.text.Len() > 0 {
			s.resp.Content = append([]llm.Part{{Type: llm.PartText, Text: s.text.String()}}, s.resp.Content...)
		}
		s.g.cachePut(s.ctx, s.c, s.key, &s.resp)
		return ev, err
	}
	if err != nil {
		return ev, err
	}
	switch ev.Type {
	case llm.EventStart:
		s.resp.ID, s.resp.Model = ev.ID, ev.Model
	case llm.EventText:
		s.text.WriteString(ev.Text)
	case llm.EventToolCall:
		tc := *ev.ToolCall
		s.resp.Content = append(s.resp.Content, llm.Part{Type: llm.PartToolCall, ToolCall: &tc})
	case llm.EventToolArgs:
		if n := ev.Index; ev.ToolCall != nil {
			for i := range s.resp.Content {
				if n == 0 {
					s.resp.Content[i].ToolCall.Arguments += ev.ToolCall.Arguments
					break
				}
				n--
			}
		}
	case llm.EventStop:
		s.resp.StopReason = ev.StopReason
	case llm.EventUsage:
		if ev.Usage != nil {
			s.resp.Usage = *ev.Usage
		}
	}
	return ev, nil
}

// Pending passes on the stream's own.
func (s *capture) Pending() bool {
	p, ok := s.Stream.(interface{ Pending() bool })
	return ok && p.Pending()
}
