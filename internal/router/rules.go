package router

import "github.com/junctionhq/junction/internal/platform/config"

// Request is what the router knows about a request when it picks a route.
type Request struct {
	// Model is the name the client asked for.
	Model string
	Meta  Metadata
	Tags  map[string]string
	// Tokens counts the prompt's tokens (-1 when unknown). It is called
	// only when a rule bounds the prompt size, and at most once.
	Tokens func() int
}

// Direct applies the model preference and the rules to a request and
// returns the model or route name to serve it, and why. With nothing to
// apply it returns the requested name and an empty reason.
func (r *Router) Direct(req Request) (string, string) {
	name, reason := req.Model, ""
	if p := req.Meta.Preference; p != "" && p != name && r.route(p) != nil {
		name, reason = p, "model preference "+p
	}
	counted := false
	n := -1
	count := func() int {
		if !counted && req.Tokens != nil {
			n, counted = req.Tokens(), true
		}
		return n
	}
	for _, rule := range r.rules {
		if matches(rule.When, name, req, count) {
			if reason != "" {
				reason += ", "
			}
			return rule.Route, reason + "rule " + rule.Name
		}
	}
	return name, reason
}

func matches(w config.RuleMatch, model string, req Request, tokens func() int) bool {
	if w.Model != "" && w.Model != "*" && w.Model != model {
		return false
	}
	if w.CostTier != "" {
		tier := req.Meta.CostTier
		if tier == "" {
			tier = TierStandard
		}
		if tier != w.CostTier {
			return false
		}
	}
	for k, v := range w.Tags {
		if req.Tags[k] != v {
			return false
		}
	}
	for k, v := range w.Metadata {
		if req.Meta.Values[k] != v {
			return false
		}
	}
	if w.MinInputTokens > 0 || w.MaxInputTokens > 0 {
		n := tokens()
		if n < 0 || n < w.MinInputTokens || w.MaxInputTokens > 0 && n > w.MaxInputTokens {
			return false
		}
	}
	if w.MaxLatencyMsBelow > 0 && (req.Meta.MaxLatencyMs == 0 || req.Meta.MaxLatencyMs >= w.MaxLatencyMsBelow) {
		return false
	}
	return true
}
