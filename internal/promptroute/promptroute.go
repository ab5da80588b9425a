// Package promptroute predicts, for a prompt, whether each candidate
// model would answer it well enough, so that the router can send it to
// the cheapest candidate that probably will: RouteLLM's idea (route by a
// predicted win rate against a cost threshold), with scorers that need
// no GPU and no training run. It scores and chooses; it does not call
// models, and it does not escalate after a bad answer (cascades do that).
//
// Two scorers implement Scorer:
//
//   - FeatureScorer reads the prompt's Features (length, code, maths,
//     steps, analysis, requested output length, turns, tools, images),
//     maps them to a Difficulty in [0, 1], and predicts
//     logistic(Slope × (Quality − Difficulty)) for a candidate of
//     configured Quality. It costs microseconds.
//   - KNNScorer embeds the last user message, finds the k nearest
//     labelled prompts in a FeedbackStore, and predicts each candidate's
//     similarity-weighted share of good outcomes among the neighbours
//     labelled for it (RouteLLM's sw_ranking in spirit), falling back to
//     FeatureScorer where the labels are too few. It learns from
//     feedback posted to the admin API, at the cost of an embeddings call.
//
// # Difficulty
//
// Difficulty is a hand-set weighted sum of the features, clamped to
// [0, 1]:
//
//	feature                 contribution
//	PromptTokens            0.15 × log scale from 100 tokens (0) to 4,000 (1)
//	HasCode                 0.25
//	HasMath                 0.30
//	Steps                   0.07 per step, at most 0.28
//	Reasoning               0.05 per analysis word, at most 0.15
//	Technical               0.02 per signal after the second, at most 0.10
//	RequestedOutputTokens   0.40 × log scale from 400 tokens (0) to 4,000 (1)
//	Turns                   0.02 per user turn after the first, at most 0.08
//	Tools                   0.05 when the request defines tools
//	Images                  0.05 when it carries images
//
// A short factual question scores about 0; one strong signal alone
// (code, maths, a 1,000-token answer) 0.15 to 0.35; a multi-step maths
// or code task, or a long piece of writing, 0.37 and more. With the
// default slope of 10 and a threshold of 0.7, a candidate of quality q is
// chosen up to difficulty q − 0.085: so quality 0.45 serves prompts up to
// 0.365 (the small-model class, e.g. gpt-4o-mini) and 0.9 up to 0.815.
// The weights are not learned; KNNScorer is the part that learns.
package promptroute

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// Candidate is a model the router may send the request to.
type Candidate struct {
	// Model is the name the router knows the model by; feedback is
	// labelled with the same names.
	Model string
	// Quality is the model's capability from config, from 0 to 1.
	Quality float64
	// Price is the input plus output price per 1K tokens, for ordering.
	Price float64
}

// Scorer predicts how likely each candidate is to answer a request well
// enough.
type Scorer interface {
	// Predict returns, for each candidate, the probability that it
	// answers req well enough.
	Predict(ctx context.Context, req *llm.Request, cands []Candidate) ([]float64, error)
	// Name says which scorer this is, for logs and metrics.
	Name() string
}

// DefaultSlope is FeatureScorer's slope when none is set.
const DefaultSlope = 10

// FeatureScorer predicts from the prompt's features alone:
// logistic(Slope × (Quality − Difficulty)).
type FeatureScorer struct {
	// Slope is how sharply the probability falls as the difficulty
	// passes the candidate's quality; 0 means DefaultSlope.
	Slope float64
}

// Name returns "features".
func (FeatureScorer) Name() string { return "features" }

// Predict implements Scorer. It never fails.
func (s FeatureScorer) Predict(_ context.Context, req *llm.Request, cands []Candidate) ([]float64, error) {
	return s.probs(Difficulty(Extract(req)), cands), nil
}

func (s FeatureScorer) probs(difficulty float64, cands []Candidate) []float64 {
	slope := s.Slope
	if slope == 0 {
		slope = DefaultSlope
	}
	out := make([]float64, len(cands))
	for i, c := range cands {
		out[i] = 1 / (1 + math.Exp(-slope*(c.Quality-difficulty)))
	}
	return out
}

// reasonPrefix opens every reason, so that logs can be searched for it.
const reasonPrefix = "prompt_router: "

// Choose returns the index of the cheapest candidate (by Price; the first
// of equal prices) whose probability is at least threshold, or, when none
// is, of the candidate with the highest probability (the cheapest of
// equals); and a reason such as
// "prompt_router: chose gpt-4o-mini (p=0.81 ≥ 0.70)". A missing
// probability counts as 0. It returns -1 when there are no candidates.
func Choose(probs []float64, cands []Candidate, threshold float64) (int, string) {
	if len(cands) == 0 {
		return -1, reasonPrefix + "no candidates"
	}
	p := func(i int) float64 {
		if i < len(probs) && !math.IsNaN(probs[i]) {
			return probs[i]
		}
		return 0
	}
	pick := -1
	for i, c := range cands {
		if p(i) >= threshold && (pick < 0 || c.Price < cands[pick].Price) {
			pick = i
		}
	}
	if pick >= 0 {
		return pick, fmt.Sprintf("%schose %s (p=%.2f ≥ %.2f)", reasonPrefix, cands[pick].Model, p(pick), threshold)
	}
	pick = 0
	for i, c := range cands {
		if p(i) > p(pick) || p(i) == p(pick) && c.Price < cands[pick].Price {
			pick = i
		}
	}
	return pick, fmt.Sprintf("%sno candidate reached p ≥ %.2f, chose %s (p=%.2f, the highest)", reasonPrefix, threshold, cands[pick].Model, p(pick))
}

// Route scores req with s and chooses among cands as Choose does; its
// reason also gives the prompt's difficulty, e.g.
// "prompt_router: difficulty 0.62, chose gpt-4o-mini (p=0.81 ≥ 0.70)".
// When the scorer fails it returns the error and -1: the router then
// routes as if there were no prompt router.
func Route(ctx context.Context, s Scorer, req *llm.Request, cands []Candidate, threshold float64) (int, string, error) {
	probs, err := s.Predict(ctx, req, cands)
	if err != nil {
		return -1, "", fmt.Errorf("prompt router %s: %w", s.Name(), err)
	}
	i, reason := Choose(probs, cands, threshold)
	d := Difficulty(Extract(req))
	return i, reasonPrefix + fmt.Sprintf("difficulty %.2f, ", d) + strings.TrimPrefix(reason, reasonPrefix), nil
}
