package router

import (
	"context"
	"math"
	"sort"

	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/promptroute"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// promptRoute is the state of a prompt_router route: its candidates,
// cheapest first, and the scorer that predicts which are good enough.
type promptRoute struct {
	scorer    promptroute.Scorer
	cands     []promptroute.Candidate
	threshold float64
	// strongest prices what the best candidate would have cost.
	strongest *ledger.Price
}

// Scorers makes the scorers prompt routes use. KNN is nil when no
// feedback store is configured; routes that ask for it then use the
// feature scorer.
type Scorers struct {
	Features promptroute.Scorer
	KNN      promptroute.Scorer
}

// SetScorers gives the prompt routes their scorers. It must be called
// before the router serves requests.
func (r *Router) SetScorers(s Scorers) {
	if s.Features == nil {
		s.Features = promptroute.FeatureScorer{}
	}
	for _, rt := range r.routes {
		if rt.prompt == nil {
			continue
		}
		rt.prompt.scorer = s.Features
		if rt.Config.Scorer == "knn" && s.KNN != nil {
			rt.prompt.scorer = s.KNN
		}
	}
}

// newPromptRoute orders a route's members by price and builds its state.
func newPromptRoute(rt *Route) *promptRoute {
	sort.SliceStable(rt.Members, func(i, j int) bool {
		return rt.Members[i].D.unitPrice() < rt.Members[j].D.unitPrice()
	})
	pr := &promptRoute{scorer: promptroute.FeatureScorer{}, threshold: rt.Config.Threshold}
	quality := map[string]float64{}
	for _, d := range rt.Config.Deployments {
		quality[d.Model] = d.Quality
	}
	best := -1.0
	for _, m := range rt.Members {
		q := quality[m.D.Model]
		price := m.D.unitPrice()
		if math.IsInf(price, 1) {
			price = math.MaxFloat64
		}
		pr.cands = append(pr.cands, promptroute.Candidate{Model: m.D.Model, Quality: q, Price: price})
		if q > best {
			best, pr.strongest = q, m.D.Price
		}
	}
	return pr
}

// Prepare tells the plan the request it routes, for routes that choose by
// the prompt: a prompt route's scorer scores the request here, on ctx —
// the one place routing may call out (the knn scorer embeds the prompt),
// so that the call is the request's and Next does no I/O. It returns the
// price of the strongest candidate of a prompt route, for the ledger's
// savings report, or nil.
func (p *Plan) Prepare(ctx context.Context, req *llm.Request) *ledger.Price {
	p.req = req
	rt := p.chain[0]
	if rt.prompt == nil {
		return nil
	}
	p.scored = rt
	p.scoredOrder, p.scoredReason = p.promptOrder(ctx, rt, rt.prompt.scorer)
	return rt.prompt.strongest
}

// orderOf is a prompt route's try order when Next reaches it: the one
// Prepare scored for the plan's own route; for a prompt route reached as
// a fallback, the order its prompt features give, which makes no call.
func (p *Plan) orderOf(rt *Route) ([]int, string) {
	if rt == p.scored {
		return p.scoredOrder, p.scoredReason
	}
	return p.promptOrder(context.Background(), rt, promptroute.FeatureScorer{})
}

// promptOrder is the order in which a prompt route's members are tried,
// as scorer predicts them: the chosen candidate, then the stronger ones
// from cheapest up, then the weaker ones from strongest down.
func (p *Plan) promptOrder(ctx context.Context, rt *Route, scorer promptroute.Scorer) ([]int, string) {
	pr := rt.prompt
	if p.req == nil {
		return nil, ""
	}
	chosen, reason, err := promptroute.Route(ctx, scorer, p.req, pr.cands, pr.threshold)
	if err != nil {
		// A scorer that cannot answer (an embeddings model down) must not
		// fail the request: fall back to the features.
		chosen, reason, _ = promptroute.Route(ctx, promptroute.FeatureScorer{}, p.req, pr.cands, pr.threshold)
		reason += " (knn scorer failed: " + err.Error() + ")"
	}
	order := []int{chosen}
	for i := range pr.cands {
		if i != chosen && pr.cands[i].Quality >= pr.cands[chosen].Quality {
			order = append(order, i)
		}
	}
	var weaker []int
	for i := range pr.cands {
		if pr.cands[i].Quality < pr.cands[chosen].Quality {
			weaker = append(weaker, i)
		}
	}
	sort.SliceStable(weaker, func(a, b int) bool { return pr.cands[weaker[a]].Quality > pr.cands[weaker[b]].Quality })
	return append(order, weaker...), reason
}
