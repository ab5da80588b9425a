package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/junctionhq/junction/internal/guardrail"
	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/router"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// ChatStream starts a streamed call. Until the stream's first content
// arrives nothing has reached the client, so any failure — including no
// first token within first_token_timeout — fails over to the next
// deployment. A stream that breaks after that is continued on the next
// deployment where it can be (relay.go). The returned Stream must be ended
// with Finish; the call is recorded then.
func (g *Gateway) ChatStream(ctx context.Context, c *Call, req *llm.Request) (*Stream, error) {
	c.Stream = true
	gd, mode, err := g.admit(ctx, c, req)
	if err != nil {
		return nil, err
	}
	key, lookup := g.cacheKey(c, req, gd != nil)
	if lookup {
		if resp, ok := g.cacheHit(ctx, c, key); ok {
			// A cached answer replays as a stream.
			return &Stream{g: g, c: c, s: newReplay(resp.ID, resp.Model, resp), recorded: true}, nil
		}
	}
	if gd != nil {
		greq, blocked, err := g.guardInput(ctx, c, gd, req)
		if err != nil {
			return nil, err
		}
		if blocked != nil {
			return &Stream{g: g, c: c, s: newReplay(blocked.ID, req.Model, blocked), recorded: true}, nil
		}
		req = greq
	}
	wrap := func(s llm.Stream) llm.Stream {
		if gd == nil {
			return s
		}
		return guardrail.WrapStream(ctx, gd, s, mode)
	}
	c.Counterfactual = g.prepare(ctx, c, req)
	if rt := c.plan.Current(); rt.Config.Type == config.RouteCascade {
		// A cascade must judge a whole answer before the client sees it:
		// run it, then stream the answer that passed.
		resp, err := g.cascade(ctx, c, rt, req)
		if err != nil {
			return nil, err
		}
		return &Stream{g: g, c: c, s: wrap(newReplay(resp.ID, resp.Model, resp)), recorded: true}, nil
	}
	r := &relay{g: g, c: c, ctx: ctx, req: req}
	var d *router.Deployment
	for {
		var ok bool
		var werr error
		d, ok, werr = g.nextTry(ctx, c, d, err)
		if werr != nil {
			err = werr
		}
		if !ok {
			break
		}
		var a *attempt
		if a, err = r.open(d, req); err == nil {
			r.cur = a
			if err = r.prime(); err == nil {
				s := wrap(r)
				if key != "" {
					s = &capture{Stream: s, g: g, c: c, ctx: ctx, key: key}
				}
				c.stream = &Stream{g: g, c: c, s: s, r: r}
				return c.stream, nil
			}
			r.fail(err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err == nil {
		err = llm.Errorf(http.StatusServiceUnavailable, llm.ErrOverloaded, "no deployment of %q is available", c.Model)
	}
	g.Finish(c, llm.Usage{}, nil, err)
	return nil, err
}

// Stream is a streamed call in progress, as a surface relays it.
type Stream struct {
	g *Gateway
	c *Call
	s llm.Stream
	// r is the relay under s; nil for a replayed answer.
	r    *relay
	done bool
	// recorded is set when the call was already recorded (a replay).
	recorded bool
}

// Recv returns the next event (see llm.Stream).
func (s *Stream) Recv() (llm.Event, error) { return s.s.Recv() }

// Pending reports whether the next event is already at hand, so that a
// surface may write it together with the current one.
func (s *Stream) Pending() bool {
	p, ok := s.s.(interface{ Pending() bool })
	return ok && p.Pending()
}

// Served is the name of the model answering now: it changes when a broken
// stream is continued on another deployment.
func (s *Stream) Served() string { return s.c.Served() }

// Finish ends the stream and records the call. err is what ended the
// stream (nil or io.EOF for success; the client's context error when it
// hung up).
func (s *Stream) Finish(err error) {
	if s.done {
		return
	}
	s.done = true
	if errors.Is(err, io.EOF) {
		err = nil
	}
	if s.r != nil {
		s.r.finish(err)
	}
	s.s.Close()
	s.c.stream = nil
}

// attemptRecord records an attempt of a call that another continued,
// under the request id with a ".N" suffix: its own deployment, tokens and
// cost.
func (g *Gateway) attemptRecord(c *Call, a *attempt, u usage, err error) {
	rec := *c
	rec.Target = a.d.Target
	rec.RequestID = c.RequestID + "." + strconv.Itoa(a.n)
	rec.estimated = u.estimated
	g.Finish(&rec, u.Usage, nil, err)
}
