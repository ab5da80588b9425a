package hosting

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/junctionhq/junction/internal/provider/upstream"
)

// maxResponseBytes bounds a model server's answer held in memory.
const maxResponseBytes = 64 << 20

// newClient is the client that calls model servers: upstream's one
// client setup, sized for local servers, continuing the invocation's
// trace (W3C traceparent).
func newClient() *http.Client { return upstream.NewClient(0, upstream.Local(), upstream.Traced()) }

// route finds an endpoint's routing now, or the error an invocation of
// it gets now (unroutable's).
func (p *plane) route(ctx context.Context, name string) (*routing, error) {
	ep := p.lookup(name)
	if ep != nil {
		if r := ep.route.Load(); r != nil {
			return r, nil
		}
	}
	return nil, p.unroutable(ctx, name, ep)
}

// unroutable is the error of an invocation of an endpoint this replica
// cannot route to now (ep, nil when it neither runs nor follows one of
// that name): a 400 for an endpoint that does not exist, has failed or
// is being deleted; a retryable 503 for one that exists and cannot route
// yet — being created, brought back after a restart, or not yet followed
// on this replica. An endpoint is never told not to exist while its spec
// is stored.
func (p *plane) unroutable(ctx context.Context, name string, ep *endpoint) *Error {
	status := StatusCreating
	if ep != nil {
		ep.mu.Lock()
		status = ep.status.Status
		ep.mu.Unlock()
	} else {
		ctx, cancel := context.WithTimeout(ctx, storeTimeout)
		defer cancel()
		sp, err := p.store.spec(ctx, name)
		switch {
		case err != nil:
			return unavailable("Endpoint %s cannot be looked up now; retry shortly.", name)
		case sp == nil:
			return Validation("Endpoint %s not found.", name)
		case sp.Deleting:
			status = StatusDeleting
		}
	}
	switch status {
	case StatusFailed, StatusDeleting:
		return Validation("Endpoint %s is %s and takes no invocations.", name, status)
	}
	return unavailable("Endpoint %s is %s and cannot take invocations yet (it is starting, or being brought back after a restart); retry shortly.", name, status)
}

// routeWait bounds how long an invocation waits for an endpoint that
// exists but cannot be routed to yet before it is told to retry; routeRecheck
// is how often it looks.
const (
	routeWait    = 2 * time.Second
	routeRecheck = 20 * time.Millisecond
)

// awaitRoute is route for an invocation: an endpoint that exists but
// cannot be routed to yet is waited for, briefly (routeWait, and at most
// half of what is left of ctx), before the retryable 503 is returned.
// Calls waiting at once are bounded by the hold queue's size.
func (p *plane) awaitRoute(ctx context.Context, name string) (*routing, error) {
	r, err := p.route(ctx, name)
	if r != nil || !retryable(err) {
		return r, err
	}
	if p.routeWaiters.Add(1) > int64(p.opts.HoldQueue) {
		p.routeWaiters.Add(-1)
		return nil, err
	}
	defer p.routeWaiters.Add(-1)
	wait := routeWait
	if dl, ok := ctx.Deadline(); ok && time.Until(dl)/2 < wait {
		wait = time.Until(dl) / 2
	}
	limit := time.NewTimer(wait)
	defer limit.Stop()
	tick := time.NewTicker(routeRecheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-limit.C:
			return nil, err
		case <-tick.C:
		}
		// Only the in-memory view is read again: the store said the
		// endpoint exists.
		ep := p.lookup(name)
		if ep == nil {
			continue
		}
		if r := ep.route.Load(); r != nil {
			return r, nil
		}
		if err = p.unroutable(ctx, name, ep); !retryable(err) {
			return nil, err
		}
	}
}

// retryable reports whether err is a 503 a client may retry.
func retryable(err error) bool {
	var he *Error
	return errors.As(err, &he) && he.Code == ErrServiceUnavailable
}

// choose picks the variant an invocation goes to: the target variant if
// named, else one of the fleet that the traffic split picked, by weight.
func (r *routing) choose(endpoint, target string) (*variant, *fleet, error) {
	f := r.active
	if r.pending != nil && rand.Float64() < r.share {
		f = r.pending
	}
	if target == "" {
		return f.pickVariant(), f, nil
	}
	if v := f.variant(target); v != nil {
		return v, f, nil
	}
	for _, other := range []*fleet{r.active, r.pending} {
		if other != nil {
			if v := other.variant(target); v != nil {
				return v, other, nil
			}
		}
	}
	return nil, nil, Validation("Variant %s not found for endpoint %s; its variants are: %s.", target, endpoint, r.active.variantNames())
}

// Invoke sends an invocation to one of the endpoint's instances and
// copies it to the shadow variants.
func (p *plane) Invoke(ctx context.Context, inv *Invocation) (*Result, error) {
	r, err := p.awaitRoute(ctx, inv.Endpoint)
	if err != nil {
		return nil, err
	}
	v, f, err := r.choose(inv.Endpoint, inv.TargetVariant)
	if err != nil {
		return nil, err
	}
	release, err := v.admit(inv.Endpoint)
	if err != nil {
		return nil, err
	}
	defer release()
	if v, f, err = p.awaitReady(ctx, inv.Endpoint, inv.TargetVariant, v, f); err != nil {
		return nil, err
	}
	res, err := p.invokeVariant(ctx, v, inv)
	var he *Error
	if errors.As(err, &he) && he.Code == ErrServiceUnavailable {
		// The fleet chosen may have been retired while this call was on
		// its way (an update finished and its instances stopped): the
		// call never reached a server, so it goes to the current fleet.
		if now, rerr := p.route(ctx, inv.Endpoint); rerr == nil && now != r {
			if v, f, err = now.choose(inv.Endpoint, inv.TargetVariant); err != nil {
				return nil, err
			}
			res, err = p.invokeVariant(ctx, v, inv)
		}
	}
	if len(f.shadows) > 0 {
		p.mirror(f, inv)
	}
	if err == nil {
		p.capture(f, inv, res)
	}
	return res, err
}

// invokeVariant calls a variant's instances until one answers; a
// connection that fails before the request is sent moves on to another.
func (p *plane) invokeVariant(ctx context.Context, v *variant, inv *Invocation) (*Result, error) {
	if v.spec.Mode == ModeMultiModel || inv.TargetModel != "" {
		return p.invokeMultiModel(ctx, v, inv)
	}
	start := time.Now()
	var res *Result
	_, err := v.try(func(in *instance) (bool, bool, error) {
		var err error
		var retry bool
		if batchable(v, inv) {
			res, err, retry = p.sendBatched(ctx, in, inv)
		} else {
			res, err, retry = p.send(ctx, in, inv)
		}
		return false, retry, err
	})
	if err == nil && res != nil {
		v.stats.record(msSince(start), false)
		p.billServerless(inv.Endpoint, v, res.Instance, start, time.Now())
		return res, nil
	}
	if err == nil {
		err = Unavailable("No instance of variant %s of endpoint %s is ready (%d starting or restarting); try again shortly.",
			v.spec.Name, inv.Endpoint, len(v.instances()))
	}
	// A container's 4xx is the caller's mistake, not the variant's fault:
	// it does not count against the variant's alarms.
	var he *Error
	clientFault := errors.As(err, &he) && he.Code == ErrModel && he.OriginalStatus >= 400 && he.OriginalStatus < 500
	v.stats.record(msSince(start), !clientFault)
	return nil, err
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// send makes one call to an instance. retry is true when the request
// never reached the server, so another instance can take it.
func (p *plane) send(ctx context.Context, in *instance, inv *Invocation) (*Result, error, bool) {
	return p.post(ctx, in, inv, "/invocations")
}

// post sends an invocation to path on an instance.
func (p *plane) post(ctx context.Context, in *instance, inv *Invocation, path string) (*Result, error, bool) {
	base := in.base.Load()
	if base == nil {
		return nil, Unavailable("instance %s has no address", in.ID()), true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *base+path, bytes.NewReader(inv.Body))
	if err != nil {
		return nil, err, false
	}
	setInvocationHeaders(req, inv)
	sent := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		terr, retry := p.transportError(ctx, in, err)
		return nil, terr, retry
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	model := time.Since(sent)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err(), false
		}
		return nil, ModelFailed(in.v.spec.Name, resp.StatusCode, "the model server's answer was cut off: "+err.Error()), false
	}
	if len(body) > maxResponseBytes {
		return nil, ModelFailed(in.v.spec.Name, resp.StatusCode, fmt.Sprintf("the model server's answer exceeds %d bytes", maxResponseBytes)), false
	}
	if resp.StatusCode/100 != 2 {
		return nil, ModelFailed(in.v.spec.Name, resp.StatusCode, strings.TrimSpace(string(body))), false
	}
	return &Result{Variant: in.v.spec.Name, Instance: in.ID(), ContentType: resp.Header.Get("Content-Type"),
		CustomAttributes: resp.Header.Get("X-Amzn-SageMaker-Custom-Attributes"), Body: body, ModelLatency: model}, nil, false
}

// setInvocationHeaders passes the invocation's headers to the container.
// Invocations are not marked idempotent: the transport resends one only
// when nothing of it was written (a pooled connection the server had
// closed), never after a server died while answering it — a request that
// crashed one instance must not be replayed onto the next.
func setInvocationHeaders(req *http.Request, inv *Invocation) {
	if inv.ContentType != "" {
		req.Header.Set("Content-Type", inv.ContentType)
	}
	if inv.Accept != "" {
		req.Header.Set("Accept", inv.Accept)
	}
	if inv.CustomAttributes != "" {
		req.Header.Set("X-Amzn-SageMaker-Custom-Attributes", inv.CustomAttributes)
	}
	if inv.InferenceID != "" {
		req.Header.Set("X-Amzn-SageMaker-Inference-Id", inv.InferenceID)
	}
	if inv.TargetModel != "" {
		req.Header.Set(headerTargetModel, inv.TargetModel)
	}
}

// transportError classifies a failed call: a refused connection never
// reached the server (retry elsewhere); a cut connection did (report it).
func (p *plane) transportError(ctx context.Context, in *instance, err error) (error, bool) {
	if ctx.Err() != nil {
		return ctx.Err(), false
	}
	if refused(err) {
		return Unavailable("instance %s of variant %s refused the connection", in.ID(), in.v.spec.Name), true
	}
	return ModelFailed(in.v.spec.Name, 0, "the connection to the model server failed: "+unwrapURL(err)), false
}

func unwrapURL(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}

// InvokeStream sends an invocation and returns the model server's answer
// as it arrives.
func (p *plane) InvokeStream(ctx context.Context, inv *Invocation) (*StreamResult, error) {
	r, err := p.awaitRoute(ctx, inv.Endpoint)
	if err != nil {
		return nil, err
	}
	v, _, err := r.choose(inv.Endpoint, inv.TargetVariant)
	if err != nil {
		return nil, err
	}
	if v, _, err = p.awaitReady(ctx, inv.Endpoint, inv.TargetVariant, v, nil); err != nil {
		return nil, err
	}
	if v.spec.Mode == ModeMultiModel || inv.TargetModel != "" {
		return nil, Validation("Endpoint %s: multi-model endpoints answer InvokeEndpoint, not streamed invocations.", inv.Endpoint)
	}
	start := time.Now()
	var out *StreamResult
	_, err = v.try(func(in *instance) (bool, bool, error) {
		base := in.base.Load()
		if base == nil {
			return false, true, Unavailable("instance %s has no address", in.ID())
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, *base+"/invocations", bytes.NewReader(inv.Body))
		if err != nil {
			return false, false, err
		}
		setInvocationHeaders(req, inv)
		sent := time.Now()
		resp, err := p.client.Do(req)
		if err != nil {
			terr, retry := p.transportError(ctx, in, err)
			return false, retry, terr
		}
		model := new(atomic.Int64)
		model.Store(int64(time.Since(sent)))
		if resp.StatusCode/100 != 2 {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			return false, false, ModelFailed(v.spec.Name, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		// The stream keeps the instance until the caller closes it.
		out = &StreamResult{Variant: v.spec.Name, Instance: in.ID(), ContentType: resp.Header.Get("Content-Type"),
			CustomAttributes: resp.Header.Get("X-Amzn-SageMaker-Custom-Attributes"),
			Body:             &streamBody{ReadCloser: resp.Body, in: in, start: start, model: model}, model: model}
		return true, false, nil
	})
	if err == nil && out != nil {
		return out, nil
	}
	if err == nil {
		err = Unavailable("No instance of variant %s of endpoint %s is ready; try again shortly.", v.spec.Name, inv.Endpoint)
	}
	v.stats.record(msSince(start), true)
	return nil, err
}

// streamBody releases the instance and records the call when the stream
// is closed, and adds the time each Read waits on the model server to
// model.
type streamBody struct {
	io.ReadCloser
	in     *instance
	start  time.Time
	model  *atomic.Int64
	failed bool
	closed bool
}

func (b *streamBody) Read(p []byte) (int, error) {
	began := time.Now()
	n, err := b.ReadCloser.Read(p)
	b.model.Add(int64(time.Since(began)))
	if err != nil && err != io.EOF {
		b.failed = true
	}
	return n, err
}

func (b *streamBody) Close() error {
	if !b.closed {
		b.closed = true
		b.in.release()
		b.in.v.stats.record(msSince(b.start), b.failed)
	}
	return b.ReadCloser.Close()
}

// mirror copies an invocation to a fleet's shadow variants. The answers
// are discarded; their latency and errors are recorded. When too many
// shadow calls are in flight, the copy is dropped rather than slowing
// live traffic.
func (p *plane) mirror(f *fleet, inv *Invocation) {
	cp := *inv
	cp.TargetVariant = ""
	for _, sv := range f.shadows {
		select {
		case p.shadowSem <- struct{}{}:
		default:
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() { <-p.shadowSem }()
			ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
			defer cancel()
			p.invokeVariant(ctx, sv, &cp)
		}()
	}
}
