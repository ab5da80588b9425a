package hosting

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// A call for a variant with no ready instance (scaled to zero, or every
// instance still starting) is held rather than failed: it waits in its
// endpoint's bounded hold queue; the first one held asks for an instance
// if the variant has none (one start, however many calls arrive); when an
// instance becomes ready the held calls are let go in the order they
// arrived. A call that cannot be held (the queue is full) gets 429, one
// that waited its limit out 503, each in its surface's shape.

// holdRecheck is how often a held call looks again without being woken:
// an instance readied while it enqueued, or a start to retry.
const holdRecheck = 250 * time.Millisecond

// holdQueue is an endpoint's calls waiting for a ready instance, oldest
// first.
type holdQueue struct {
	mu      sync.Mutex
	waiters []chan struct{}
}

// join adds a waiter, or reports false when the queue has max already.
func (q *holdQueue) join(max int) (chan struct{}, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiters) >= max {
		return nil, false
	}
	ch := make(chan struct{})
	q.waiters = append(q.waiters, ch)
	return ch, true
}

// leave removes a waiter that gave up.
func (q *holdQueue) leave(ch chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, w := range q.waiters {
		if w == ch {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			return
		}
	}
}

// wake lets every waiter go, in arrival order.
func (q *holdQueue) wake() {
	q.mu.Lock()
	ws := q.waiters
	q.waiters = nil
	q.mu.Unlock()
	for _, ch := range ws {
		close(ch)
	}
}

// readied is told that an instance of endpoint became ready: its held
// calls go.
func (p *plane) readied(in *instance) {
	in.v.scale.starting.Store(false)
	if ep := p.endpoints()[in.endpoint]; ep != nil {
		ep.hold.wake()
	}
}

// holdErr is a call that could not be held or waited too long.
func holdErr(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// awaitReady returns a variant with a ready instance for a call to
// endpoint: v (of fleet f) itself when it has one, else, after holding the call until
// an instance is ready, the one the endpoint's routing chooses then.
func (p *plane) awaitReady(ctx context.Context, endpoint, target string, v *variant, f *fleet) (*variant, *fleet, error) {
	for v.readyCount() == 0 {
		ep := p.lookup(endpoint)
		if ep == nil {
			return nil, nil, p.unroutable(ctx, endpoint, nil)
		}
		ch, ok := ep.hold.join(p.opts.HoldQueue)
		if !ok {
			return nil, nil, holdErr(http.StatusTooManyRequests, ErrModelNotReady,
				"Endpoint %s is starting an instance and already holds %d requests; retry shortly.", endpoint, p.opts.HoldQueue)
		}
		if err := p.holdOn(ctx, ep, v, ch); err != nil {
			return nil, nil, err
		}
		r, err := p.route(ctx, endpoint)
		if err != nil {
			return nil, nil, err
		}
		if v, f, err = r.choose(endpoint, target); err != nil {
			return nil, nil, err
		}
	}
	return v, f, nil
}

// holdOn waits in ep's hold queue until ch is closed or v has a ready
// instance, asking for a start while v has none.
func (p *plane) holdOn(ctx context.Context, ep *endpoint, v *variant, ch chan struct{}) error {
	v.scale.held.Add(1)
	defer v.scale.held.Add(-1)
	p.coldStart(ep, v)
	limit := time.NewTimer(p.opts.HoldTimeout)
	defer limit.Stop()
	tick := time.NewTicker(holdRecheck)
	defer tick.Stop()
	for {
		select {
		case <-ch:
			return nil
		case <-tick.C:
			if v.readyCount() > 0 {
				ep.hold.leave(ch)
				return nil
			}
			p.coldStart(ep, v)
		case <-limit.C:
			ep.hold.leave(ch)
			v.scale.starting.Store(false) // a start that never came may be asked for again
			return unavailable("No instance of variant %s of endpoint %s became ready within %s (cold start); retry shortly.", v.spec.Name, ep.name, p.opts.HoldTimeout)
		case <-ctx.Done():
			ep.hold.leave(ch)
			return ctx.Err()
		}
	}
}

// coldStart asks for one instance of a variant scaled to zero, once: the
// first held call asks, the rest find the start under way. A variant
// whose instances are merely starting needs nothing asked.
func (p *plane) coldStart(ep *endpoint, v *variant) {
	if v.count.Load() > 0 || !v.scale.starting.CompareAndSwap(false, true) {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(p.ctx, specTimeout)
		defer cancel()
		held := v.scale.held.Load()
		if err := p.spec.SetInstanceCount(ctx, ep.name, v.spec.Name, 1); err != nil {
			// Busy (an update or a scale-in under way): a held call asks
			// again at its next recheck.
			v.scale.starting.Store(false)
			if p.log != nil {
				p.log.Info("hosting: cold start not asked yet", "endpoint", ep.name, "variant", v.spec.Name, "err", err)
			}
			return
		}
		p.spec.Event(ep.name, fmt.Sprintf("cold start: variant %s had no instance and %d request(s) held; asked for 1 instance", v.spec.Name, held))
	}()
}

// awaitChat holds a chat call for an endpoint's variant v as awaitReady
// does, with the gateway's error shape.
func (p *plane) awaitChat(ctx context.Context, endpoint string, v *variant) (*variant, error) {
	v, _, err := p.awaitReady(ctx, endpoint, "", v, nil)
	if err != nil {
		return nil, endpointErr(err, false)
	}
	return v, nil
}

// endpointErr is a chat call's failure to reach an endpoint, in the
// gateway's taxonomy: a hold refused for room stays a 429 (unless
// unavailable says every failure is to be a 503); anything else of
// hosting's is a 503, so that a route falls back to its other
// deployments.
func endpointErr(err error, unavailable bool) error {
	var he *Error
	if !errors.As(err, &he) {
		return err
	}
	le := he.LLM()
	le.Provider, le.Code = "endpoint", ""
	if unavailable || le.Status != http.StatusTooManyRequests {
		le.Status, le.Type = http.StatusServiceUnavailable, llm.ErrOverloaded
	}
	return le
}

// Wait predicts how long a call to an endpoint would wait now before its
// model server begins on it: the calls in flight on the ready instance
// with the fewest (where least-outstanding routing would send it), each
// taking the variant's recent typical latency, as if the server ran one
// call at a time. That is exact for a server with one device and an
// upper bound for one that runs calls side by side. It reports false when
// there is nothing to go on: no such endpoint, no ready instance (see
// Cold), or no call answered yet. The router spills a call whose
// predicted wait exceeds its latency budget (spill:queue).
func (p *plane) Wait(name string) (time.Duration, bool) {
	ep := p.endpoints()[name]
	if ep == nil {
		return 0, false
	}
	r := ep.route.Load()
	if r == nil {
		return 0, false
	}
	v, _, err := r.choose(name, "")
	if err != nil {
		return 0, false
	}
	ahead := int64(-1)
	for _, in := range v.instances() {
		if o := in.outstanding.Load(); in.ready.Load() && (ahead < 0 || o < ahead) {
			ahead = o
		}
	}
	typical := v.stats.typical()
	if ahead < 0 || typical == 0 {
		return 0, false
	}
	return time.Duration(ahead) * typical, true
}

// Cold reports whether an endpoint in service has no ready instance in
// the variant a call would go to, and if so asks for a start, as a held
// call would: the router spills to another model meanwhile, and traffic
// returns once an instance is ready.
func (p *plane) Cold(name string) bool {
	ep := p.endpoints()[name]
	if ep == nil {
		return false
	}
	r := ep.route.Load()
	if r == nil {
		return false
	}
	v, _, err := r.choose(name, "")
	if err != nil || v.readyCount() > 0 {
		return false
	}
	p.coldStart(ep, v)
	return true
}
