package gateway

import (
	"context"
	"net/http"

	"github.com/junctionhq/junction/internal/governance"
	"github.com/junctionhq/junction/internal/governance/budget"
	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/router"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Governance hooks into a call at two points: admission, before the first
// upstream attempt (govern), and settlement, when the call's last ledger
// record is written (Finish). Every record of the call (attempts, cascade
// steps, judges) adds its tokens and cost; the call's own record settles.

// judgeFrame bounds the tokens a cascade judge's prompt adds to the
// question and answer it grades, and judgeOutput its answer.
const (
	judgeFrame  = 512
	judgeOutput = 8
)

// governChat admits a chat call. When a hard budget reserved a default
// output for a request that names no max_tokens, the request is given
// that max_tokens, so the reservation holds.
func (g *Gateway) governChat(ctx context.Context, c *Call, req *llm.Request) error {
	if err := checkMaxTokens(c, req); err != nil {
		return err
	}
	var maxOut int64
	if req.MaxTokens != nil {
		maxOut = int64(*req.MaxTokens)
	}
	a, err := g.govern(ctx, c, governance.InputBound(req), maxOut)
	if err == nil && a != nil && a.MaxTokens > 0 && req.MaxTokens == nil {
		n := a.MaxTokens
		req.MaxTokens = &n
	}
	return err
}

// checkMaxTokens refuses a max_tokens that no deployment the call may
// reach would accept: above the largest of their documented output
// limits (the catalog's or config's max_output_tokens). A deployment
// with no known limit lifts the cap; the worst-case arithmetic saturates
// then, so a huge max_tokens is refused by any hard budget instead.
func checkMaxTokens(c *Call, req *llm.Request) error {
	if req.MaxTokens == nil || c.plan == nil {
		return nil
	}
	n := *req.MaxTokens
	if n < 0 {
		return llm.Errorf(http.StatusBadRequest, llm.ErrInvalidRequest, "max_tokens must not be negative (got %d)", n)
	}
	limit, known, model := 0, true, ""
	c.plan.Reach(func(r *router.Route) {
		for _, m := range r.Members {
			l := 0
			if p := m.D.Target.Price; p != nil {
				l = p.MaxOutputTokens
			}
			if l == 0 {
				known = false
			}
			if l > limit {
				limit, model = l, m.D.Model
			}
		}
	})
	if known && limit > 0 && n > limit {
		return llm.Errorf(http.StatusBadRequest, llm.ErrInvalidRequest,
			"max_tokens %d is more than %s allows: its output limit is %d tokens; lower max_tokens to at most %d", n, model, limit, limit)
	}
	return nil
}

// govern admits the call under the budgets and rate limits that apply to
// its key; calls without a key (Junction's own) are not governed.
func (g *Gateway) govern(ctx context.Context, c *Call, in, maxOut int64) (*governance.Admission, error) {
	if g.Governance == nil || c.Key == nil || c.plan == nil {
		return nil, nil
	}
	k := c.Key
	// The key's own tags name its team and project: a request's tags
	// cannot move it to another team's budget.
	r := governance.Request{
		Subject: governance.Subject{Key: k.ID, Team: k.Tags["team"], Project: k.Tags["project"], Model: c.Model, Tags: c.Tags},
		KeyRPM:  k.RPM, KeyTPM: k.TPM, Input: in, MaxOutput: maxOut,
		Spend: func(in, out int64) budget.Nanos { return g.worstCase(c, in, out) },
	}
	a, err := g.Governance.Admit(ctx, &r)
	c.gov, c.govBy = a, c
	return a, err
}

// worstCase is the most the call may cost for in input and out output
// tokens: on the dearest deployment its route and fallbacks may reach,
// times the answers a refusal diverted to policy fallbacks may add; for a
// cascade, every step and judge.
func (g *Gateway) worstCase(c *Call, in, out int64) budget.Nanos {
	rt := c.plan.Current()
	if rt.Config.Type == config.RouteCascade {
		var sum budget.Nanos
		for i, m := range rt.Members {
			sum = sum.Plus(price(m.D).Cost(in, out))
			if j := rt.Config.Judge; j != nil && i < len(rt.Members)-1 {
				if d := g.Router.Deployment(j.Model); d != nil {
					sum = sum.Plus(price(d).Cost(budget.SumTokens(budget.SumTokens(in, out), judgeFrame), judgeOutput))
				}
			}
		}
		return sum
	}
	var most budget.Nanos
	answers := int64(1)
	c.plan.Reach(func(r *router.Route) {
		if len(r.Config.PolicyFallbacks) > 0 {
			answers = int64(g.maxAttempts())
		}
		for _, m := range r.Members {
			most = max(most, price(m.D).Cost(in, out))
		}
	})
	return budget.Times(answers, most)
}

// price is a deployment's per-token price for worst cases: an input token
// at the dearest of its input, cached and (where the provider bills them)
// cache-write prices.
func price(d *router.Deployment) governance.Price {
	p := d.Target.Price
	if p == nil {
		return governance.Price{} // unpriced: recorded, never charged
	}
	in := governance.PerToken(p.InputPer1K)
	// Only Anthropic and Bedrock report (and bill) prompt-cache writes.
	if t := d.Target.ProviderType; t == config.TypeAnthropic || t == config.TypeBedrock {
		write := governance.PerToken(p.InputPer1K * ledger.CacheWriteMultiplier)
		if p.CacheWritePer1K != nil {
			write = governance.PerToken(*p.CacheWritePer1K)
		}
		in = max(in, write)
	}
	if p.CachedInputPer1K != nil {
		in = max(in, governance.PerToken(*p.CachedInputPer1K))
	}
	return governance.Price{Input: in, Output: governance.PerToken(p.OutputPer1K)}
}

// settle adds a ledger record's tokens and cost to the call's admission,
// and settles it when the record is the call's own.
func (c *Call) settle(usage llm.Usage, costUSD *float64) {
	if c.gov == nil {
		return
	}
	c.gov.Record(usage.InputTokens+usage.OutputTokens, costUSD)
	if c.govBy == c {
		c.gov.Done()
	}
}

// LimitHeaders sets OpenAI's x-ratelimit-* headers (and Retry-After on a
// refusal) for the rate limits the call met; nothing when none applied.
func (c *Call) LimitHeaders(h http.Header) { c.gov.SetHeaders(h) }
