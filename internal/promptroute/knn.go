package promptroute

import (
	"context"
	"fmt"
	"strings"

	"github.com/junctionhq/junction/internal/vec"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// DefaultK is KNNScorer's number of neighbours when none is given.
const DefaultK = 10

// KNNScorer predicts from labelled feedback: it embeds the request's last
// user message, finds the labelled prompts most similar to it, and gives
// each candidate the similarity-weighted share of good outcomes among its
// k nearest neighbours labelled for that candidate. A candidate with
// fewer than k/2 such neighbours gets Fallback's prediction instead, so
// the scorer behaves as FeatureScorer until feedback covers a kind of
// prompt, and learns from then on.
//
// The neighbours are drawn from the k·m examples nearest overall, for m
// candidates, not from the k nearest: with k nearest overall, two
// candidates labelled on the same prompts would each hold about k/2 of
// them and three would each fall short, so the fallback would decide
// whenever several candidates have feedback. With one candidate the two
// are the same. Neighbours with a similarity of zero or less do not
// count.
type KNNScorer struct {
	embed EmbedFunc
	store *FeedbackStore
	k     int
	// Fallback predicts for candidates with too few labelled neighbours.
	Fallback FeatureScorer
}

// NewKNN returns a KNNScorer over store that embeds queries with embed
// (the same model the store's feedback was embedded with) and looks at k
// neighbours (DefaultK when k ≤ 0).
func NewKNN(embed EmbedFunc, store *FeedbackStore, k int) *KNNScorer {
	if k <= 0 {
		k = DefaultK
	}
	return &KNNScorer{embed: embed, store: store, k: k}
}

// Name returns "knn".
func (*KNNScorer) Name() string { return "knn" }

// Predict implements Scorer. With no feedback stored it answers from the
// fallback without embedding; it fails only when the embedding does, and
// then the router should route without the prompt router.
func (s *KNNScorer) Predict(ctx context.Context, req *llm.Request, cands []Candidate) ([]float64, error) {
	if s.store.Len() == 0 {
		return s.Fallback.Predict(ctx, req, cands)
	}
	out, err := s.embed(ctx, []string{embedText(queryText(req))})
	if err != nil {
		return nil, fmt.Errorf("embed the prompt: %w", err)
	}
	if len(out) != 1 {
		return nil, fmt.Errorf("embed the prompt: got %d embeddings for 1 text", len(out))
	}
	q := append([]float32(nil), out[0]...)
	if !vec.Normalize(q) {
		return s.Fallback.Predict(ctx, req, cands)
	}
	near, err := s.store.nearest(q, s.k*len(cands))
	if err != nil {
		return nil, err
	}
	probs := make([]float64, len(cands))
	var fallback []float64
	for i, c := range cands {
		var num, den float64
		n := 0
		for _, nb := range near {
			if nb.model != c.Model || nb.sim <= 0 {
				continue
			}
			if n == s.k {
				break
			}
			n++
			den += float64(nb.sim)
			if nb.good {
				num += float64(nb.sim)
			}
		}
		if 2*n < s.k {
			if fallback == nil {
				fallback = s.Fallback.probs(Difficulty(Extract(req)), cands)
			}
			probs[i] = fallback[i]
			continue
		}
		probs[i] = num / den
	}
	return probs, nil
}

// queryText is the text a request is searched by: its last user message,
// or, when it has none, all its text.
func queryText(req *llm.Request) string {
	if req == nil {
		return ""
	}
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if m := req.Messages[i]; m.Role == llm.RoleUser {
			if t := m.Text(); t != "" {
				return t
			}
		}
	}
	var b strings.Builder
	for _, m := range req.Messages {
		if t := m.Text(); t != "" {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(t)
		}
	}
	return b.String()
}
