package router

import "github.com/junctionhq/junction/internal/config"

// SpillColdStart is the route reason of a request a route's spill target
// answered because the self-hosted endpoint it picked had no ready
// instance (scaled to zero, or starting). The ledger records it with the
// request, so what spillover costs can be priced.
const SpillColdStart = "spill:cold-start"

// spill returns the deployment that answers in d's stead when d is a
// self-hosted endpoint with no ready instance and the route names a spill
// target (routes[].spill), or nil. Asking whether the endpoint is cold
// also asks it to start an instance, so traffic returns to it once warm.
func (p *Plan) spill(rt *Route, d *Deployment) *Deployment {
	if rt.Config.Spill == "" || p.r.cold == nil || d.Target.Provider != config.EndpointProvider {
		return nil
	}
	if !p.r.cold(d.Target.UpstreamModel) {
		return nil
	}
	s := p.r.deployment(rt.Config.Spill)
	if s == nil || p.seen[s] {
		return nil
	}
	p.markSeen(s)
	return s
}
