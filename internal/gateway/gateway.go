// Package gateway runs a model call for any inbound surface: it resolves
// the model, calls the provider, and accounts for the call in the ledger
// and the metrics, whatever the outcome. Inbound adapters decode and
// encode wire formats; everything between is here, once.
package gateway

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/governance"
	"github.com/junctionhq/junction/internal/guardrail"
	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/platform/metrics"
	"github.com/junctionhq/junction/internal/platform/tracing"
	"github.com/junctionhq/junction/internal/respcache"
	"github.com/junctionhq/junction/internal/router"
	"github.com/junctionhq/junction/internal/tokens"
	"github.com/junctionhq/junction/internal/wire/llm"
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
	// Timeout bounds each non-streamed attempt; zero means none.
	Timeout time.Duration
	// MaxAttempts bounds the upstream calls for one request across
	// deployments and fallbacks; zero means 1.
	MaxAttempts int
	// RetryBackoff is the base of the jittered wait between attempts.
	RetryBackoff time.Duration
	// Guardrails holds the guardrails calls may name; nil when none.
	Guardrails *guardrail.Registry
	// Governance admits calls under budgets and rate limits before their
	// first upstream attempt; nil admits every call.
	Governance *governance.Governor
	// Cache answers repeated requests to the models and routes that opted
	// in (cache.go); nil caches nothing.
	Cache *respcache.Cache
	// Endpoints runs invocations of hosted endpoints (Invoke); nil when
	// hosting is off.
	Endpoints Endpoints
}

// Call is one inbound request through its life: begun by its surface,
// routed (Routing), and ended exactly once (Outcome; see End). Its own
// fields are the request as the surface decoded it.
type Call struct {
	Surface   string
	RequestID string
	Key       *keys.Key
	// Tags are the request's tags, merged over the key's defaults.
	Tags  map[string]string
	Start time.Time
	// Model is the name the client asked for (a model or a route).
	Model string
	// Meta is the request's routing metadata.
	Meta router.Metadata
	// Prompt is the request, when the surface has decoded it; rules on
	// prompt size count its tokens.
	Prompt *llm.Request
	// Body is the client's body of Prompt, in Prompt's dialect, when the
	// surface lets it pass through: attempts that send Prompt as it is
	// carry it (llm.Request.Raw) for a provider of that dialect to forward.
	Body []byte

	Stream bool
	// Hosted marks an invocation of an endpoint Junction hosts (see
	// Invoke): Model is the endpoint, and the call costs nothing of its
	// own, since hosting is metered per instance-second.
	Hosted bool

	// GuardName ("ID" or "ID:VERSION") and GuardMode are the guardrail
	// the request asked for; the route's or model's applies otherwise.
	GuardName, GuardMode string
	// KeyGuard and KeyGuardMode are a guardrail the key enforces: the
	// request may not ask for another (see guard).
	KeyGuard, KeyGuardMode string
	// GuardTrace asks the surface to report the guardrail's assessments.
	GuardTrace bool
	// CacheControl is the request's Cache-Control header: no-cache skips
	// the response cache's lookup, no-store the cache altogether.
	CacheControl string
	// CacheMode is the request's X-Junction-Cache header: CacheExact
	// turns the semantic cache off for it.
	CacheMode string

	// Routing is where the call went; the gateway sets it.
	Routing
	// Outcome is what came of the call; the gateway sets it.
	Outcome

	// gov is the call's hold on its budgets and rate limits, taken by
	// govBy: copies of the call (attempts, judges) add to it, and the
	// call itself settles it (govern.go).
	gov   *governance.Admission
	govBy *Call
}

// Routing is the routing state of a call: the deployment that served it
// (or last tried) and how it got there.
type Routing struct {
	// Target is the deployment that served (or last tried) the call.
	Target *router.Target
	// Route, Reason and Attempts say how the call was routed.
	Route    string
	Reason   string
	Attempts int
	// Variant is the production variant that served (or failed) an
	// invocation of a hosted endpoint.
	Variant string
	// TargetModel is the model a multi-model endpoint was asked for; the
	// ledger records it as the upstream model, so that invocations (and
	// the instance cost they share) are attributed per model.
	TargetModel string
	// Counterfactual, when set, prices what the route's strongest
	// candidate would have cost, for the ledger's savings report.
	Counterfactual *ledger.Price

	plan     *router.Plan
	retries  int    // retries of the current deployment
	directed string // why the rules or preference changed the target
}

// Outcome is what came of a call besides its answer: what its guardrail
// did, and whether (and how) it was recorded.
type Outcome struct {
	// Guardrail records what the guardrail did, for the ledger.
	Guardrail string
	// GuardID is the guardrail applied, and GuardInput and GuardOutput
	// its results, for surfaces that report them (Bedrock's trace).
	GuardID                 string
	GuardInput, GuardOutput *guardrail.Result
	// ModelLatency is the time a hosted endpoint's model server took to
	// answer an invocation; zero when none answered.
	ModelLatency time.Duration

	// guardOutput, when set, checks the answer before it is recorded.
	guardOutput *guardrail.Guard
	// estimated marks usage that Junction counted because the upstream
	// reported none (a stream cut or abandoned before its usage).
	estimated bool
	// ended is set once the call is recorded; stream is its stream while
	// one is open, for End to finish.
	ended  bool
	stream *Stream
	// cacheHit marks a call answered from the response cache, and
	// cacheSaved what the answer cost when it was made.
	cacheHit   bool
	cacheSaved *float64
	// cacheProbe is the call's request as the semantic cache sees it.
	cacheProbe *respcache.Probe
}

// Served is the name of the model that answered (or last tried) the call:
// the deployment's model, which a fallback makes differ from the name the
// client asked for. Responses carry it in their model field, as OpenAI's
// own API names the model that answered.
func (c *Call) Served() string {
	if c.Target == nil {
		return c.Model
	}
	return c.Target.Model
}

// RouteHeaders sets the headers that tell a client how its request was
// routed: the model it asked for and the one that served among them.
func (c *Call) RouteHeaders(h http.Header) {
	if c.Target == nil {
		return
	}
	// The names are canonical already: they go into the map as h.Set
	// would put them, without its check, and the values share one array.
	vals := [7]string{c.Model, c.Served(), c.Route, c.Target.Model, c.Reason, strconv.Itoa(c.Attempts), c.Guardrail}
	h["X-Junction-Requested-Model"] = vals[0:1:1]
	h["X-Junction-Served-Model"] = vals[1:2:2]
	h["X-Junction-Route"] = vals[2:3:3]
	h["X-Junction-Deployment"] = vals[3:4:4]
	h["X-Junction-Route-Reason"] = vals[4:5:5]
	h["X-Junction-Attempts"] = vals[5:6:6]
	if c.Guardrail != "" {
		h["X-Junction-Guardrail-Action"] = vals[6:7:7]
	}
}

// Resolve plans the call's routing — the model preference and rules
// first, then the route — and fails with a 404 for an unknown model.
func (g *Gateway) Resolve(c *Call) error {
	name, why := g.Router.Direct(router.Request{Model: c.Model, Meta: c.Meta, Tags: c.Tags, Tokens: func() int {
		if c.Prompt == nil {
			return -1
		}
		return tokens.Request(c.Model, c.Prompt)
	}})
	p, err := g.Router.PlanWith(name, c.Meta)
	if err != nil {
		return err
	}
	c.directed = why
	c.plan = p
	c.Route = p.Route()
	return nil
}

// next moves the call to its next deployment, or reports none is left.
func (g *Gateway) next(c *Call, lastErr error) (*router.Deployment, bool) {
	if c.Attempts >= g.maxAttempts() {
		return nil, false
	}
	if lastErr != nil && !llm.Retryable(lastErr) && !isRefusal(lastErr) {
		// Too long for this route's models, or refused on policy: go to
		// the route's context or policy fallbacks, if it has them.
		kind := divertKind(lastErr)
		if kind == "" || !c.plan.Divert(kind) {
			return nil, false
		}
	}
	d, ok := c.plan.Next()
	if !ok {
		return nil, false
	}
	c.Target, c.Route, c.Reason = d.Target, c.plan.Route(), c.plan.Reason
	if c.directed != "" {
		c.Reason = c.directed + ", " + c.Reason
	}
	if lastErr != nil {
		c.Reason += ", after " + describe(lastErr)
	}
	c.Attempts++
	return d, true
}

func (g *Gateway) maxAttempts() int {
	if g.MaxAttempts < 1 {
		return 1
	}
	return g.MaxAttempts
}

// nextTry moves the call to its next attempt after lastErr, which ended
// an attempt on last (nil before the first): the same deployment again
// when the failure is worth repeating there (retry.go), else the next
// deployment after a backoff. It reports false when no try is left; an
// error is the context's, ending the wait.
func (g *Gateway) nextTry(ctx context.Context, c *Call, last *router.Deployment, lastErr error) (*router.Deployment, bool, error) {
	if last != nil {
		if wait, ok := g.retrySame(ctx, c, last, lastErr); ok {
			if err := sleep(ctx, wait); err != nil {
				return nil, false, err
			}
			c.Attempts++
			c.retries++
			c.Reason += ", retried after " + describe(lastErr)
			return last, true, nil
		}
	}
	d, ok := g.next(c, lastErr)
	if !ok {
		return nil, false, nil
	}
	c.retries = 0
	if c.Attempts > 1 {
		if err := g.backoff(ctx, c.Attempts); err != nil {
			return nil, false, err
		}
	}
	return d, true, nil
}

// end ends an attempt on d: its outcome feeds the deployment's health, and
// a probe the call held on it is released.
func (g *Gateway) end(c *Call, d *router.Deployment, latency, ttft time.Duration, err error) {
	d.End(latency, ttft, err)
	c.plan.Done(d)
}

// divertKind says which fallbacks an error calls for, if any.
func divertKind(err error) string {
	switch llm.AsError(err).Type {
	case llm.ErrContextWindow:
		return "context"
	case llm.ErrContentPolicy:
		return "policy"
	}
	return ""
}

// refusal stands for an answer that finished with content_filter: the
// model refused. It is only ever the last error of a call that has already
// been diverted to its policy fallbacks.
type refusal struct{ provider string }

func (r *refusal) Error() string { return "content-policy refusal from " + r.provider }

func isRefusal(err error) bool {
	_, ok := err.(*refusal)
	return ok
}

func describe(err error) string {
	if r, ok := err.(*refusal); ok {
		return r.Error()
	}
	e := llm.AsError(err)
	if e.Provider != "" {
		return strconv.Itoa(e.Status) + " from " + e.Provider
	}
	return strconv.Itoa(e.Status)
}

// backoff waits before attempt n (n >= 2) with full jitter, or until ctx
// ends.
func (g *Gateway) backoff(ctx context.Context, n int) error { return sleep(ctx, g.jitter(n)) }

// jitter is the full-jitter backoff before attempt n (n >= 2): random up
// to the base doubled per attempt.
func (g *Gateway) jitter(n int) time.Duration {
	base := g.RetryBackoff
	if base <= 0 {
		return 0
	}
	limit := base << min(max(n-2, 0), 5)
	return time.Duration(rand.Int64N(int64(limit) + 1))
}

// Chat runs a non-streamed chat call, failing over between deployments on
// retryable errors, and records it. Resolve must have succeeded.
func (g *Gateway) Chat(ctx context.Context, c *Call, req *llm.Request) (*llm.Response, error) {
	gd, _, err := g.admit(ctx, c, req)
	if err != nil {
		return nil, err
	}
	key, lookup := g.cacheKey(c, req, gd != nil)
	if lookup {
		if resp, ok := g.cacheHit(ctx, c, key); ok {
			return resp, nil
		}
	}
	var resp *llm.Response
	if gd != nil {
		resp, err = g.guardedChat(ctx, c, gd, req)
	} else {
		resp, err = g.chat(ctx, c, req)
	}
	if err == nil && key != "" {
		g.cachePut(ctx, c, key, resp)
	}
	return resp, err
}

// chat is Chat without the guardrail.
func (g *Gateway) chat(ctx context.Context, c *Call, req *llm.Request) (*llm.Response, error) {
	c.Counterfactual = g.prepare(ctx, c, req)
	if rt := c.plan.Current(); rt.Config.Type == config.RouteCascade {
		return g.cascade(ctx, c, rt, req)
	}
	var err error
	var refused *llm.Response
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
		var resp *llm.Response
		resp, err = g.chatOnce(ctx, c, d, req)
		if err == nil && resp.StopReason == llm.StopContentFilter && c.Attempts < g.maxAttempts() && c.plan.Divert("policy") {
			// The model refused; the route sends refusals elsewhere. The
			// refused answer is recorded as an attempt of its own.
			g.attempt(c, c.Attempts-1, resp.Usage, nil)
			err, refused, d = &refusal{provider: d.Provider}, resp, nil
			continue
		}
		if err == nil {
			return g.succeed(ctx, c, resp)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if isRefusal(err) {
		// No policy fallback could be tried after all: the refusal stands.
		return g.succeed(ctx, c, refused)
	}
	if err == nil {
		err = llm.Errorf(http.StatusServiceUnavailable, llm.ErrOverloaded, "no deployment of %q is available", c.Model)
	}
	g.Finish(c, llm.Usage{}, nil, err)
	return nil, err
}

// prepare runs the route's per-request planning (prompt routing scores
// the prompt here), traced as the routing span.
func (g *Gateway) prepare(ctx context.Context, c *Call, req *llm.Request) *ledger.Price {
	ctx, span := tracing.Start(ctx, "route")
	defer span.End()
	return c.plan.Prepare(ctx, req)
}

// succeed finishes a call that got its answer: the answer goes through
// the call's guardrail (if any) first, so that the ledger records what the
// guardrail did to it.
func (g *Gateway) succeed(ctx context.Context, c *Call, resp *llm.Response) (*llm.Response, error) {
	if c.guardOutput != nil {
		gctx, span := tracing.Start(ctx, "guardrail output")
		r, out, err := guardrail.GuardResponse(gctx, c.guardOutput, resp)
		tracing.Guarded(span, r.Action, err)
		if err != nil {
			g.Finish(c, resp.Usage, nil, err)
			return nil, err
		}
		g.outcome(c, c.guardOutput, "output", r)
		resp = out
	}
	g.Finish(c, resp.Usage, nil, nil)
	return resp, nil
}

func (g *Gateway) chatOnce(ctx context.Context, c *Call, d *router.Deployment, req *llm.Request) (*llm.Response, error) {
	r := *req
	r.Model = d.UpstreamModel
	r.Raw = c.raw(req)
	if g.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.Timeout)
		defer cancel()
	}
	start := time.Now()
	d.Begin()
	resp, err := d.Upstream.Chat(ctx, &r)
	err = timeoutError(ctx, c, err)
	g.end(c, d, time.Since(start), 0, err)
	return resp, err
}

// raw is the client's body for an attempt that sends req: only when req is
// the request the surface decoded from it, which no guardrail rewrote and
// no continuation extended (they make new requests).
func (c *Call) raw(req *llm.Request) []byte {
	if req != c.Prompt {
		return nil
	}
	return c.Body
}

// Embed runs an embeddings call on the call's first deployment and
// records it.
func (g *Gateway) Embed(ctx context.Context, c *Call, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	if _, err := g.govern(ctx, c, governance.EmbedInputBound(req), -1); err != nil {
		g.Finish(c, llm.Usage{}, nil, err)
		return nil, err
	}
	d, ok := g.next(c, nil)
	if !ok {
		err := llm.Errorf(http.StatusServiceUnavailable, llm.ErrOverloaded, "no deployment of %q is available", c.Model)
		g.Finish(c, llm.Usage{}, nil, err)
		return nil, err
	}
	e, ok := d.Upstream.(llm.Embedder)
	if !ok {
		err := llm.Errorf(http.StatusBadRequest, llm.ErrInvalidRequest, "model %q is served by provider %s (%s), which has no embeddings API",
			c.Model, c.Target.Provider, c.Target.ProviderType)
		err.Param = "model"
		g.Finish(c, llm.Usage{}, nil, err)
		return nil, err
	}
	r := *req
	r.Model = d.UpstreamModel
	if g.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.Timeout)
		defer cancel()
	}
	start := time.Now()
	d.Begin()
	resp, err := e.Embed(ctx, &r)
	err = timeoutError(ctx, c, err)
	g.end(c, d, time.Since(start), 0, err)
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

// End ends a call its surface began, exactly once: surfaces defer it as
// soon as they have the call. A call already recorded is left alone; an
// open stream is finished (its upstream closed, its usage recorded); a
// call that ended with no outcome — a panic, or a path that forgot to say
// — is recorded as a 500, and the panic goes on.
func (g *Gateway) End(c *Call) {
	p := recover()
	if p == nil && c.ended && c.stream == nil {
		return // recorded already, as calls end: no error to build
	}
	err := error(llm.Errorf(http.StatusInternalServerError, llm.ErrInternal, "the call ended without an outcome"))
	if p != nil {
		err = llm.Errorf(http.StatusInternalServerError, llm.ErrInternal, "the call failed: %v", p)
	}
	if s := c.stream; s != nil {
		s.Finish(err)
	}
	g.Finish(c, llm.Usage{}, nil, err)
	if p != nil {
		panic(p)
	}
}

// Finish records a call's outcome in the ledger and the metrics. It is
// exported for surfaces that fail before reaching a provider.
func (g *Gateway) Finish(c *Call, usage llm.Usage, ttft *time.Duration, err error) {
	if c.ended {
		return // a call is recorded once, whatever path ended it
	}
	c.ended = true
	latency := time.Since(c.Start)
	status := http.StatusOK
	errType := ""
	if err != nil {
		switch {
		case errors.Is(err, context.Canceled):
			status, errType = StatusClientClosed, "client_closed"
		case c.Hosted:
			status, errType = invocationError(err)
		default:
			e := llm.AsError(err)
			status, errType = e.Status, string(e.Type)
		}
	}
	rec := ledger.Record{
		Time: c.Start, RequestID: c.RequestID, Tags: c.Tags, Surface: c.Surface, Model: c.Model, Stream: c.Stream,
		InputTokens: usage.InputTokens, OutputTokens: usage.OutputTokens, CachedTokens: usage.CachedInputTokens,
		Status: status, ErrorType: errType, LatencyMS: float64(latency.Microseconds()) / 1000,
		Route: c.Route, Attempts: c.Attempts, RouteReason: c.Reason, Guardrail: c.Guardrail,
		Estimated: c.estimated,
	}
	if c.Key != nil {
		rec.KeyID, rec.KeyName = c.Key.ID, c.Key.Name
	}
	provider, model := "", c.Model
	if c.Hosted {
		zero := 0.0
		rec.Provider, rec.Deployment, rec.CostUSD = HostedProvider, c.Variant, &zero
		rec.UpstreamModel = c.TargetModel
		provider = HostedProvider
		if c.Variant == "" {
			// No variant took the call: the endpoint named may not exist,
			// so it is not made a label (clients cannot grow the set).
			model = ""
		}
	}
	if t := c.Target; t != nil {
		rec.Provider, rec.UpstreamModel, rec.Deployment = t.Provider, t.UpstreamModel, t.Model
		provider = t.Provider
		if t.Price != nil {
			cost := t.Price.CostWithWrites(usage.InputTokens, usage.CachedInputTokens, usage.CacheWriteTokens, usage.OutputTokens)
			rec.CostUSD = &cost
		}
	}
	if c.Counterfactual != nil && rec.CostUSD != nil {
		cf := c.Counterfactual.CostWithWrites(usage.InputTokens, usage.CachedInputTokens, usage.CacheWriteTokens, usage.OutputTokens)
		rec.CounterfactualUSD = &cf
	}
	if c.cacheHit {
		// A cache hit costs nothing; what the answer cost when made is
		// what it saved (the ledger's counterfactual less the cost).
		zero := 0.0
		rec.CostUSD, rec.CounterfactualUSD = &zero, c.cacheSaved
	}
	if ttft != nil {
		ms := float64(ttft.Microseconds()) / 1000
		rec.TTFTMS = &ms
	}
	c.settle(usage, rec.CostUSD)
	if m := g.Metrics; m != nil {
		m.Observe(metrics.Observation{Surface: c.Surface, Model: model, Provider: provider, Status: status,
			Latency: latency, TTFT: ttft, Input: usage.InputTokens, Output: usage.OutputTokens, Cached: usage.CachedInputTokens,
			CostUSD: rec.CostUSD, Unpriced: rec.CostUSD == nil && c.Target != nil && status < 400,
			Invocation: c.Hosted, Variant: c.Variant, ModelLatency: c.ModelLatency})
	}
	if g.Ledger != nil {
		g.Ledger.Add(rec)
	}
}
