// Package router decides which deployment serves a request. A model name
// is either a configured model (one deployment), PROVIDER/MODEL, or a route
// (a group of deployments with a balancing strategy and fallbacks). For
// each request the router hands out a Plan: the deployments to try in
// order, skipping those that already failed it or are cooling down.
package router

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Route is a public name served by a group of deployments.
type Route struct {
	Name      string
	Members   []Member
	Balancer  Balancer
	Fallbacks []string
	// Config is the route's configuration (zero for a plain model).
	Config config.Route
	// prompt is set for prompt_router routes.
	prompt *promptRoute
	// single is true for the implicit route of a plain model.
	single bool
}

// Router resolves model names to plans.
type Router struct {
	routes    map[string]*Route
	names     []string // public names: models and routes, sorted
	deploys   map[string]*Deployment
	providers map[string]providerEntry
	catalog   *ledger.Catalog
	health    *Health
	intN      IntN
	rules     []config.Rule
	policy    config.Router

	// dynamic holds PROVIDER/MODEL deployments made on first use.
	dynMu   sync.Mutex
	dynamic map[string]*Route
	// endpoints reports self-hosted endpoints routable by their own name,
	// and listEndpoints names them.
	endpoints     func(name string) bool
	listEndpoints func() []string
	// cold reports a self-hosted endpoint with no ready instance, and
	// wait predicts a call's wait on one (spill.go).
	cold func(name string) bool
	wait func(name string) (time.Duration, bool)
}

type providerEntry struct {
	p   llm.Provider
	typ string
}

// Factory builds a provider adapter from its config.
type Factory func(ctx context.Context, p config.Provider) (llm.Provider, error)

// Options tunes a Router.
type Options struct {
	// IntN is the random source of the balancers; nil means math/rand/v2.
	IntN IntN
	// Endpoints is the provider of self-hosted endpoints, registered as
	// config.EndpointProvider; nil when hosting is off.
	Endpoints llm.Provider
	// ServesEndpoint reports whether a name is a self-hosted endpoint
	// with an OpenAI-compatible server; such a name routes to it even
	// though no model of that name is configured.
	ServesEndpoint func(name string) bool
	// ListEndpoints names the endpoints ServesEndpoint accepts now, for
	// model lists.
	ListEndpoints func() []string
	// EndpointCold reports whether an endpoint has no ready instance (and
	// asks it to start one); a route's spill target answers meanwhile.
	EndpointCold func(name string) bool
	// EndpointWait predicts how long a call to an endpoint would wait
	// before its model server begins on it, and false when it cannot say;
	// a route's spill target answers a call whose wait exceeds its
	// latency budget.
	EndpointWait func(name string) (time.Duration, bool)
}

// New builds a Router from cfg. Configured models are served under their
// names. When cfg names no models, each provider also serves the catalog's
// models of its kind under their catalog ids. Any provider model can be
// reached as "PROVIDER/MODEL". Routes group them.
func New(ctx context.Context, cfg *config.Config, catalog *ledger.Catalog, build Factory, opts ...Options) (*Router, error) {
	r := &Router{routes: map[string]*Route{}, deploys: map[string]*Deployment{}, providers: map[string]providerEntry{},
		catalog: catalog, dynamic: map[string]*Route{},
		health: &Health{FailureThreshold: cfg.Router.FailureThreshold, Cooldown: cfg.Router.Cooldown, MaxCooldown: cfg.Router.MaxCooldown,
			RetriesPerSecond: cfg.Router.RetriesPerSecond},
		policy: cfg.Router}
	for _, o := range opts {
		r.intN = o.IntN
		if o.Endpoints != nil {
			r.providers[config.EndpointProvider] = providerEntry{p: o.Endpoints, typ: "openai"}
			r.endpoints, r.listEndpoints, r.cold, r.wait = o.ServesEndpoint, o.ListEndpoints, o.EndpointCold, o.EndpointWait
		}
	}
	r.rules = cfg.Rules
	if r.intN == nil {
		r.intN = rand.IntN
	}
	if r.health.FailureThreshold == 0 {
		r.health.FailureThreshold = 3
	}
	for _, pc := range cfg.Providers {
		p, err := build(ctx, pc)
		if err != nil {
			return nil, fmt.Errorf("provider %s: %w", pc.Name, err)
		}
		r.providers[pc.Name] = providerEntry{p: p, typ: pc.Type}
	}
	for _, m := range cfg.Models {
		up := m.UpstreamModel
		if up == "" {
			up = m.Name
		}
		t := r.target(m.Name, m.Provider, up)
		if m.Price != nil {
			limit := m.Price.MaxOutputTokens
			if limit == 0 && t.Price != nil {
				limit = t.Price.MaxOutputTokens // the catalog's
			}
			t.Price = &ledger.Price{InputPer1K: m.Price.InputPer1K, OutputPer1K: m.Price.OutputPer1K,
				CachedInputPer1K: m.Price.CachedInputPer1K, CacheWritePer1K: m.Price.CacheWritePer1K, MaxOutputTokens: limit}
		}
		t.Guardrail, t.GuardrailMode, t.GuardrailEnforced = m.Guardrail, m.GuardrailMode, m.GuardrailEnforced
		t.Streams = m.Streams
		if m.Prefill != nil {
			t.prefill.Store(*m.Prefill)
		}
		r.addModel(t)
	}
	if len(cfg.Models) == 0 {
		for _, pc := range cfg.Providers {
			for _, id := range catalog.ModelsFor(pc.Type) {
				if _, taken := r.routes[id]; !taken {
					r.addModel(r.target(id, pc.Name, id))
				}
			}
		}
	}
	for _, rc := range cfg.Routes {
		b, err := NewBalancer(rc.Strategy, r.intN)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", rc.Name, err)
		}
		route := &Route{Name: rc.Name, Balancer: b, Fallbacks: rc.Fallbacks, Config: rc}
		for _, dc := range rc.Deployments {
			d := r.deployment(dc.Model)
			if d == nil {
				return nil, fmt.Errorf("route %s: %q is not a model", rc.Name, dc.Model)
			}
			route.Members = append(route.Members, Member{D: d, Weight: dc.Weight})
		}
		if rc.Type == config.RoutePromptRouter {
			route.prompt = newPromptRoute(route)
		}
		r.routes[rc.Name] = route
		r.names = append(r.names, rc.Name)
	}
	sort.Strings(r.names)
	return r, nil
}

func (r *Router) target(name, provider, upstream string) *Target {
	pe := r.providers[provider]
	t := &Target{Model: name, Provider: provider, ProviderType: pe.typ, Upstream: pe.p, UpstreamModel: upstream}
	// Anthropic's Messages API continues a trailing assistant message.
	t.prefill.Store(pe.typ == "anthropic")
	if p, ok := r.catalog.Lookup(upstream); ok {
		t.Price = &p
	}
	if provider == config.EndpointProvider {
		// A self-hosted endpoint costs its instance hours, which the
		// ledger meters separately; per token it is free, not unknown.
		t.Price = &ledger.Price{}
	}
	return t
}

func (r *Router) addModel(t *Target) {
	d := &Deployment{Target: t, health: r.health}
	r.deploys[t.Model] = d
	b, _ := NewBalancer("weighted", r.intN)
	r.routes[t.Model] = &Route{Name: t.Model, Members: []Member{{D: d, Weight: 1}}, Balancer: b, single: true}
	r.names = append(r.names, t.Model)
}

// deployment returns the deployment of a model or PROVIDER/MODEL name.
func (r *Router) deployment(name string) *Deployment {
	if d, ok := r.deploys[name]; ok {
		return d
	}
	if rt := r.dynamicRoute(name); rt != nil {
		return rt.Members[0].D
	}
	return nil
}

// dynamicRoute returns the implicit route of a PROVIDER/MODEL name, made
// on first use so that its statistics persist.
func (r *Router) dynamicRoute(name string) *Route {
	prov, up, ok := strings.Cut(name, "/")
	if !ok || up == "" {
		// A self-hosted endpoint is routable by its own name.
		if r.endpoints == nil || !r.endpoints(name) {
			return nil
		}
		prov, up = config.EndpointProvider, name
	}
	if _, known := r.providers[prov]; !known {
		return nil
	}
	r.dynMu.Lock()
	defer r.dynMu.Unlock()
	if rt, ok := r.dynamic[name]; ok {
		return rt
	}
	if len(r.dynamic) >= 10000 {
		// Bound the table: past this, names still work, without memory.
		d := &Deployment{Target: r.target(name, prov, up), health: r.health}
		b, _ := NewBalancer("weighted", r.intN)
		return &Route{Name: name, Members: []Member{{D: d, Weight: 1}}, Balancer: b, single: true}
	}
	d := &Deployment{Target: r.target(name, prov, up), health: r.health}
	b, _ := NewBalancer("weighted", r.intN)
	rt := &Route{Name: name, Members: []Member{{D: d, Weight: 1}}, Balancer: b, single: true}
	r.dynamic[name] = rt
	return rt
}

func (r *Router) route(name string) *Route {
	if rt, ok := r.routes[name]; ok {
		return rt
	}
	return r.dynamicRoute(name)
}

// Plan starts routing a request for a model or route name, or returns a
// 404 *llm.Error that lists the names that exist.
func (r *Router) Plan(model string) (*Plan, error) { return r.PlanWith(model, Metadata{}) }

// PlanWith is Plan for a request with metadata: a latency budget keeps to
// deployments whose observed p90 latency fits it, the cheapest first; an
// economy tier prefers the cheapest deployment, a premium tier the
// fastest.
func (r *Router) PlanWith(model string, meta Metadata) (*Plan, error) {
	rt := r.route(model)
	if rt == nil {
		e := llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "model %q does not exist; available models: %s", model, r.describeModels())
		e.Param = "model"
		e.Code = "model_not_found"
		return nil, e
	}
	return &Plan{r: r, chain: []*Route{rt}, meta: meta}, nil
}

// Resolve returns the first deployment's target for a model name: a
// shortcut for callers that do not fail over.
func (r *Router) Resolve(model string) (*Target, error) {
	p, err := r.Plan(model)
	if err != nil {
		return nil, err
	}
	d, _ := p.Next()
	if d == nil {
		return nil, llm.Errorf(http.StatusServiceUnavailable, llm.ErrOverloaded, "no deployment of %q is available", model)
	}
	return d.Target, nil
}

func (r *Router) describeModels() string {
	if len(r.names) == 0 && len(r.providers) == 0 {
		return "none (no providers are configured: set OPENAI_API_KEY, ANTHROPIC_API_KEY or AWS_REGION, or pass --config)"
	}
	list := strings.Join(r.names, ", ")
	if len(r.providers) > 0 {
		provs := make([]string, 0, len(r.providers))
		for p := range r.providers {
			provs = append(provs, p+"/MODEL")
		}
		sort.Strings(provs)
		if list != "" {
			list += "; "
		}
		list += "or any upstream model as " + strings.Join(provs, ", ")
	}
	return list
}

// Endpoints names the self-hosted endpoints routable by their own name
// that are not also configured model names.
func (r *Router) Endpoints() []string {
	if r.listEndpoints == nil {
		return nil
	}
	var out []string
	for _, name := range r.listEndpoints() {
		if _, taken := r.routes[name]; !taken {
			out = append(out, name)
		}
	}
	return out
}

// Models returns the targets of every configured model, sorted by name.
func (r *Router) Models() []*Target {
	out := make([]*Target, 0, len(r.names))
	for _, n := range r.names {
		if rt := r.routes[n]; rt.single {
			out = append(out, rt.Members[0].D.Target)
		}
	}
	return out
}

// Names returns every public name: models and routes, sorted.
func (r *Router) Names() []string { return append([]string(nil), r.names...) }

// IsRoute reports whether name is a configured route.
func (r *Router) IsRoute(name string) bool {
	rt, ok := r.routes[name]
	return ok && !rt.single
}

// Plan is one request's way through its route and fallbacks.
type Plan struct {
	r     *Router
	chain []*Route // the route, then fallbacks as they are reached
	pos   int      // index in chain of the route being tried
	tried []bool   // members of chain[pos] already tried
	seen  map[*Deployment]bool
	meta  Metadata
	// req is the request being routed, for prompt routes; scored is the
	// prompt route Prepare scored it for, with the order it gave.
	req          *llm.Request
	scored       *Route
	scoredOrder  []int
	scoredReason string
	// order is a prompt route's try order, and orderReason why.
	order       []int
	orderReason string
	// diverted is the kind of the last Divert, for the reason.
	diverted string
	// probes are the tripped deployments this plan holds the probe of.
	probes []*Deployment
	// Reason says why the last deployment handed out was chosen.
	Reason string
}

// Done ends the plan's attempt on d: a probe it held is released.
func (p *Plan) Done(d *Deployment) {
	for i, pd := range p.probes {
		if pd == d {
			d.probing.Store(false)
			p.probes = append(p.probes[:i], p.probes[i+1:]...)
			return
		}
	}
}

// hasFallback reports whether the plan has somewhere to go after rt.
func (p *Plan) hasFallback(rt *Route) bool {
	if p.pos+1 < len(p.chain) {
		return true
	}
	for _, f := range rt.Fallbacks {
		if fr := p.r.route(f); fr != nil && !p.inChain(fr) {
			return true
		}
	}
	return false
}

// Retries is how many times the current route retries a deployment
// before moving on.
func (p *Plan) Retries() int {
	if n := p.chain[p.pos].Config.RetriesPerDeployment; n != nil {
		return *n
	}
	return p.r.policy.RetriesPerDeployment
}

// MaxRetryWait caps the Retry-After waited for before a retry.
func (p *Plan) MaxRetryWait() time.Duration { return p.r.policy.MaxRetryWait }

// StrictStreams reports whether a malformed stream event ends the stream.
func (p *Plan) StrictStreams() bool { return p.r.policy.StrictStreams }

// Streams are the stream timeouts for an attempt on d: the requested
// route's, else the model's, else the router's, field by field.
func (p *Plan) Streams(d *Deployment) config.Streams {
	s := p.chain[0].Config.Streams
	if s.FirstTokenTimeout == 0 {
		s.FirstTokenTimeout = d.Streams.FirstTokenTimeout
	}
	if s.FirstTokenTimeout == 0 {
		s.FirstTokenTimeout = p.r.policy.FirstTokenTimeout
	}
	if s.StreamIdleTimeout == 0 {
		s.StreamIdleTimeout = d.Streams.StreamIdleTimeout
	}
	if s.StreamIdleTimeout == 0 {
		s.StreamIdleTimeout = p.r.policy.StreamIdleTimeout
	}
	return s
}

// Route is the name of the route the plan is on now.
func (p *Plan) Route() string { return p.chain[p.pos].Name }

// Current is the route the plan is on now.
func (p *Plan) Current() *Route { return p.chain[p.pos] }

// GuardrailEnforced reports whether the guardrail that Guardrail returns
// is enforced: a request may not replace it.
func (p *Plan) GuardrailEnforced() bool {
	rt := p.chain[0]
	if rt.Config.Guardrail != "" {
		return rt.Config.GuardrailEnforced
	}
	return rt.single && rt.Members[0].D.Target.GuardrailEnforced
}

// Guardrail is the guardrail the requested route or model names, and its
// stream mode: the route's own, or for a plain model the model's.
func (p *Plan) Guardrail() (string, string) {
	rt := p.chain[0]
	if rt.Config.Guardrail != "" {
		return rt.Config.Guardrail, rt.Config.GuardrailMode
	}
	if rt.single {
		t := rt.Members[0].D.Target
		return t.Guardrail, t.GuardrailMode
	}
	return "", ""
}

// Deployment returns the deployment of a model name, for callers that need
// a specific one (a cascade's judge).
func (r *Router) Deployment(name string) *Deployment { return r.deployment(name) }

// Next returns the next deployment to try, or nil when none is left.
// Deployments cooling down are skipped while any other is available.
func (p *Plan) Next() (*Deployment, bool) {
	for p.pos < len(p.chain) {
		rt := p.chain[p.pos]
		if p.tried == nil {
			p.tried = make([]bool, len(rt.Members))
			for i, m := range rt.Members {
				p.tried[i] = p.seen[m.D]
			}
			p.order = nil
			if rt.prompt != nil {
				p.order, p.orderReason = p.orderOf(rt)
			}
		}
		if p.order != nil {
			if d, ok := p.nextInOrder(rt); ok {
				return d, true
			}
			p.advance(rt)
			continue
		}
		now := time.Now().UnixNano()
		skip := make([]bool, len(rt.Members))
		anyHealthy := false
		for i, m := range rt.Members {
			// A deployment cooling down, or tripped and already being
			// probed by another request, is left alone.
			skip[i] = p.tried[i] || m.D.CoolingDown(now) || m.D.Tripped() && m.D.probing.Load()
			anyHealthy = anyHealthy || !skip[i]
		}
		bal := rt.Balancer
		reason := bal.Name()
		probe := anyHealthy
		if !anyHealthy {
			if p.hasFallback(rt) {
				p.advance(rt) // the circuit is open: the fallbacks serve
				continue
			}
			copy(skip, p.tried) // all cooling down, nowhere else: try them anyway
			reason += ", all deployments cooling down"
		}
		if len(rt.Members) > 1 {
			bal, reason = p.constrain(rt, skip, bal, reason)
		}
		if i := bal.Pick(rt.Members, skip); i >= 0 {
			d := rt.Members[i].D
			if probe && d.Tripped() {
				// Half-open: this request is the one probe, unless another
				// took it first.
				if !d.tryProbe() {
					p.tried[i] = p.seen[d]
					continue
				}
				p.probes = append(p.probes, d)
				reason += ", probing after failures"
			}
			p.tried[i] = true
			p.markSeen(d)
			if p.pos > 0 {
				reason = p.fallbackReason() + ", " + reason
			}
			if rt.single {
				reason = "model"
				if p.pos > 0 {
					reason = p.fallbackReason()
				}
			}
			if s, why := p.spill(rt, d); s != nil {
				d, reason = s, why
			}
			p.Reason = reason
			return d, true
		}
		p.advance(rt)
	}
	return nil, false
}

// Divert moves the plan to the current route's context or policy
// fallbacks (kind "context" or "policy"), skipping what is left of the
// route: its other deployments would fail the same way. It reports false
// when the route names none.
func (p *Plan) Divert(kind string) bool {
	rt := p.chain[p.pos]
	list := rt.Config.ContextFallbacks
	if kind == "policy" {
		list = rt.Config.PolicyFallbacks
	}
	var next []*Route
	for _, f := range list {
		if fr := p.r.route(f); fr != nil && !p.inChain(fr) {
			next = append(next, fr)
		}
	}
	if len(next) == 0 {
		return false
	}
	p.chain = append(p.chain[:p.pos+1], next...)
	p.pos++
	p.tried = nil
	p.diverted = kind
	return true
}

// advance moves past an exhausted route to its fallbacks.
func (p *Plan) advance(rt *Route) {
	for _, f := range rt.Fallbacks {
		if fr := p.r.route(f); fr != nil && !p.inChain(fr) {
			p.chain = append(p.chain, fr)
		}
	}
	p.pos++
	p.tried = nil
}

// nextInOrder hands out a prompt route's next untried member in its order.
func (p *Plan) nextInOrder(rt *Route) (*Deployment, bool) {
	for k, i := range p.order {
		if p.tried[i] {
			continue
		}
		p.tried[i] = true
		d := rt.Members[i].D
		p.markSeen(d)
		p.Reason = p.orderReason
		if k > 0 {
			p.Reason += ", escalated to " + d.Model
		}
		if p.pos > 0 {
			p.Reason = p.fallbackReason() + ", " + p.Reason
		}
		return d, true
	}
	return nil, false
}

func (p *Plan) fallbackReason() string {
	switch p.diverted {
	case "context":
		return "context fallback from " + p.chain[0].Name
	case "policy":
		return "policy fallback from " + p.chain[0].Name
	}
	return "fallback from " + p.chain[0].Name
}

func (p *Plan) markSeen(d *Deployment) {
	if p.seen == nil {
		p.seen = map[*Deployment]bool{}
	}
	p.seen[d] = true
}

func (p *Plan) inChain(rt *Route) bool {
	for _, c := range p.chain {
		if c == rt {
			return true
		}
	}
	return false
}

// constrain applies the request's metadata to the choice among a route's
// members: it may narrow skip and change the balancer.
func (p *Plan) constrain(rt *Route, skip []bool, bal Balancer, reason string) (Balancer, string) {
	if budget := float64(p.meta.MaxLatencyMs); budget > 0 {
		fits := make([]bool, len(rt.Members))
		anyFits := false
		for i, m := range rt.Members {
			// An unmeasured deployment may fit; measuring it is how we learn.
			fits[i] = !skip[i] && m.D.P90() <= budget
			anyFits = anyFits || fits[i]
		}
		if anyFits {
			for i := range skip {
				skip[i] = skip[i] || !fits[i]
			}
			return LowestCost{p.r.intN}, fmt.Sprintf("p90 within %dms, lowest_cost", p.meta.MaxLatencyMs)
		}
		return LowestLatency{p.r.intN}, fmt.Sprintf("no deployment's p90 within %dms, lowest_latency", p.meta.MaxLatencyMs)
	}
	switch p.meta.CostTier {
	case TierEconomy:
		return LowestCost{p.r.intN}, "cost tier economy, lowest_cost"
	case TierPremium:
		return LowestLatency{p.r.intN}, "cost tier premium, lowest_latency"
	}
	return bal, reason
}
