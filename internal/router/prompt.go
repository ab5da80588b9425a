package router

import (
	"context"
	"math"
	"sort"

	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/llm"
	"github.com/junctionhq/junction/internal/promptroute"
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
// the prompt. It returns the price of the strongest candidate of a prompt
// route, for the ledger's savings report, or nil.
func (p *Plan) Prepare(ctx context.Context, req *llm.Request) *ledger.Price {
	p.ctx, p.req = ctx, req
	if pr := p.chain[0].prompt; pr != nil {
		return pr.strongest
	}
	return nil
}

// promptOrder is the order in which a prompt route's members are tried:
// the chosen candidate, then the stronger ones from cheapest up, then the
// weaker ones from strongest down.
func (p *Plan) promptOrder(rt *Route) ([]int, string) {
	pr := rt.prompt
	if p.req == nil {
		return nil, ""
	}
	ctx := p.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	chosen, reason, err := promptroute.Route(ctx, pr.scorer, p.req, pr.cands, pr.threshold)
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
