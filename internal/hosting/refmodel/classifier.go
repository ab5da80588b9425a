package refmodel

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// example is one labelled line of the intent corpus.
type example struct {
	label, text string
}

// classifierSpec is the "classifier" object of model.json: raw counts, from
// which Load derives the log-probabilities.
type classifierSpec struct {
	// Alpha is the additive (Laplace) smoothing constant.
	Alpha float64 `json:"alpha"`
	// Features lists every unigram and bigram seen in training, sorted.
	Features []string `json:"features"`
	// Labels holds one entry per class, sorted by name.
	Labels []labelSpec `json:"labels"`
}

// labelSpec holds the counts for one class.
type labelSpec struct {
	Name string `json:"name"`
	// Docs is the number of training lines with this label.
	Docs int `json:"docs"`
	// Counts is flattened pairs (feature index, occurrences), by index.
	Counts []int32 `json:"counts"`
}

// trainClassifier counts features per label.
func trainClassifier(examples []example, alpha float64) classifierSpec {
	perLabel := map[string]map[string]int32{}
	docs := map[string]int{}
	vocab := map[string]bool{}
	for _, ex := range examples {
		counts := perLabel[ex.label]
		if counts == nil {
			counts = map[string]int32{}
			perLabel[ex.label] = counts
		}
		docs[ex.label]++
		eachFeature(ex.text, func(f []byte) {
			counts[string(f)]++
			vocab[string(f)] = true
		})
	}
	spec := classifierSpec{Alpha: alpha, Features: make([]string, 0, len(vocab))}
	for f := range vocab {
		spec.Features = append(spec.Features, f)
	}
	sort.Strings(spec.Features)
	index := make(map[string]int32, len(spec.Features))
	for i, f := range spec.Features {
		index[f] = int32(i)
	}
	names := make([]string, 0, len(perLabel))
	for name := range perLabel {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ls := labelSpec{Name: name, Docs: docs[name]}
		ids := make([]int32, 0, len(perLabel[name]))
		for f := range perLabel[name] {
			ids = append(ids, index[f])
		}
		slices.Sort(ids)
		for _, id := range ids {
			ls.Counts = append(ls.Counts, id, perLabel[name][spec.Features[id]])
		}
		spec.Labels = append(spec.Labels, ls)
	}
	return spec
}

// classifier is multinomial naive Bayes ready for inference.
type classifier struct {
	labels   []string
	logPrior []float64
	// index maps a feature to its row in logLik.
	index map[string]int32
	// logLik[row*len(labels)+label] is log P(feature | label).
	logLik []float64
}

// newClassifier validates spec and derives the smoothed log-probabilities:
// P(label) = docs/total docs and P(f | label) = (count+α)/(tokens+α·|V|).
func newClassifier(spec classifierSpec) (*classifier, error) {
	nl, nf := len(spec.Labels), len(spec.Features)
	if nl < 2 {
		return nil, fmt.Errorf("classifier.labels: %d labels, need at least 2", nl)
	}
	if !(spec.Alpha > 0) {
		return nil, fmt.Errorf("classifier.alpha: %v, must be > 0", spec.Alpha)
	}
	c := &classifier{
		labels:   make([]string, nl),
		logPrior: make([]float64, nl),
		index:    make(map[string]int32, nf),
		logLik:   make([]float64, nf*nl),
	}
	for i, f := range spec.Features {
		if _, dup := c.index[f]; dup || f == "" {
			return nil, fmt.Errorf("classifier.features[%d]: %q is empty or repeated", i, f)
		}
		c.index[f] = int32(i)
	}
	totalDocs := 0
	for l, ls := range spec.Labels {
		if ls.Name == "" || ls.Docs < 1 {
			return nil, fmt.Errorf("classifier.labels[%d]: needs a name and docs >= 1", l)
		}
		totalDocs += ls.Docs
	}
	counts := make([]float64, nf)
	for l, ls := range spec.Labels {
		c.labels[l] = ls.Name
		c.logPrior[l] = math.Log(float64(ls.Docs) / float64(totalDocs))
		if len(ls.Counts)%2 != 0 {
			return nil, fmt.Errorf("classifier.labels[%d].counts: odd length %d, want (feature, count) pairs", l, len(ls.Counts))
		}
		clear(counts)
		total := 0.0
		for k := 0; k < len(ls.Counts); k += 2 {
			f, n := ls.Counts[k], ls.Counts[k+1]
			if f < 0 || int(f) >= nf || n < 1 {
				return nil, fmt.Errorf("classifier.labels[%d].counts[%d]: feature %d count %d out of range", l, k, f, n)
			}
			counts[f] += float64(n)
			total += float64(n)
		}
		denom := math.Log(total + spec.Alpha*float64(nf))
		for f := range nf {
			c.logLik[f*nl+l] = math.Log(counts[f]+spec.Alpha) - denom
		}
	}
	return c, nil
}

// add adds the log-likelihoods of feature f to scores; unseen features add
// nothing.
func (c *classifier) add(scores []float64, f []byte) {
	row, ok := c.index[string(f)]
	if !ok {
		return
	}
	nl := len(scores)
	lik := c.logLik[int(row)*nl : int(row)*nl+nl]
	for l := range scores {
		scores[l] += lik[l]
	}
}

// posteriorInto writes P(label | text) for every label into probs and
// returns the index of the most probable label (the lowest index on a
// tie). Features never seen in training are ignored; a text with none at
// all gets the prior.
func (c *classifier) posteriorInto(text string, probs []float64) int {
	nl := len(c.labels)
	probs = probs[:nl]
	copy(probs, c.logPrior)
	var arr [256]byte
	buf := arr[:0]
	cur := newFeatureCursor(text)
	for {
		var word, bigram []byte
		var ok bool
		if buf, word, bigram, ok = cur.next(buf); !ok {
			break
		}
		c.add(probs, word)
		if bigram != nil {
			c.add(probs, bigram)
		}
	}
	best := 0
	for l := 1; l < nl; l++ {
		if probs[l] > probs[best] {
			best = l
		}
	}
	top, sum := probs[best], 0.0
	for l := range probs {
		probs[l] = math.Exp(probs[l] - top)
		sum += probs[l]
	}
	for l := range probs {
		probs[l] /= sum
	}
	return best
}
