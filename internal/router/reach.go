package router

// Reach calls fn once for each route the plan may send its request
// through: the route asked for, then, transitively, its fallbacks,
// context fallbacks and policy fallbacks. Budget admission prices the
// dearest deployment among them.
func (p *Plan) Reach(fn func(*Route)) {
	seen := map[*Route]bool{}
	var walk func(rt *Route)
	walk = func(rt *Route) {
		if rt == nil || seen[rt] {
			return
		}
		seen[rt] = true
		fn(rt)
		for _, list := range [][]string{rt.Fallbacks, rt.Config.ContextFallbacks, rt.Config.PolicyFallbacks} {
			for _, name := range list {
				walk(p.r.route(name))
			}
		}
	}
	walk(p.chain[0])
}
