package router

import (
	"time"

	"github.com/junctionhq/junction/internal/platform/config"
)

// Route reasons of a request a route's spill target answered in place of
// the self-hosted endpoint it picked. The ledger records them with the
// request, so what spillover costs can be priced.
const (
	// SpillColdStart: the endpoint had no ready instance (scaled to
	// zero, or starting).
	SpillColdStart = "spill:cold-start"
	// SpillQueue: the request's predicted wait on the endpoint exceeded
	// its latency budget (X-Junction-Max-Latency-Ms) or the route's
	// spill_wait.
	SpillQueue = "spill:queue"
)

// spill returns the deployment that answers in d's stead, and why, when d
// is a self-hosted endpoint that is cold or whose predicted wait exceeds
// the request's bound, and the route names a spill target
// (routes[].spill); else nil. Asking whether the endpoint is cold also
// asks it to start an instance, so traffic returns to it once warm.
func (p *Plan) spill(rt *Route, d *Deployment) (*Deployment, string) {
	if rt.Config.Spill == "" || p.r.cold == nil || d.Target.Provider != config.EndpointProvider {
		return nil, ""
	}
	why := SpillColdStart
	if !p.r.cold(d.Target.UpstreamModel) {
		if !p.overWait(rt, d) {
			return nil, ""
		}
		why = SpillQueue
	}
	s := p.r.deployment(rt.Config.Spill)
	if s == nil || p.seen[s] {
		return nil, ""
	}
	p.markSeen(s)
	return s, why
}

// overWait reports whether a warm endpoint's predicted wait exceeds the
// tighter of the request's latency budget and the route's spill_wait.
func (p *Plan) overWait(rt *Route, d *Deployment) bool {
	bound := rt.Config.SpillWait
	if b := time.Duration(p.meta.MaxLatencyMs) * time.Millisecond; b > 0 && (bound == 0 || b < bound) {
		bound = b
	}
	if bound == 0 || p.r.wait == nil {
		return false
	}
	w, ok := p.r.wait(d.Target.UpstreamModel)
	return ok && w > bound
}
