package refmodel

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// Sentence markers of the language model. Every training sentence is read
// as <s> <s> w1 … wn </s>; <s> is only ever context, </s> ends generation.
const (
	bosToken = "<s>"
	eosToken = "</s>"
)

// lmSpec is the "language_model" object of model.json: n-gram counts.
type lmSpec struct {
	// Backoff is the stupid-backoff factor applied once per order dropped.
	Backoff float64 `json:"backoff"`
	// Vocab lists every token, sorted; the other fields refer to tokens by
	// their index here.
	Vocab []string `json:"vocab"`
	// Unigrams holds the count of each vocab token (0 for <s>).
	Unigrams []int32 `json:"unigrams"`
	// Bigrams is flattened triples (u, v, count), sorted.
	Bigrams []int32 `json:"bigrams"`
	// Trigrams is flattened quadruples (u, v, w, count), sorted.
	Trigrams []int32 `json:"trigrams"`
}

// trainLM counts unigrams, bigrams and trigrams over the sentences of prose.
func trainLM(prose string, backoff float64) lmSpec {
	var sentences [][]string
	var cur []string
	for _, tok := range lmTokens(prose) {
		cur = append(cur, tok)
		if endsSentence(tok) {
			sentences = append(sentences, cur)
			cur = nil
		}
	}
	if len(cur) > 0 {
		sentences = append(sentences, cur)
	}
	seen := map[string]bool{bosToken: true, eosToken: true}
	for _, s := range sentences {
		for _, t := range s {
			seen[t] = true
		}
	}
	spec := lmSpec{Backoff: backoff}
	for t := range seen {
		spec.Vocab = append(spec.Vocab, t)
	}
	slices.Sort(spec.Vocab)
	index := map[string]int32{}
	for i, t := range spec.Vocab {
		index[t] = int32(i)
	}
	spec.Unigrams = make([]int32, len(spec.Vocab))
	bi := map[[2]int32]int32{}
	tri := map[[3]int32]int32{}
	bos, eos := index[bosToken], index[eosToken]
	for _, s := range sentences {
		ids := []int32{bos, bos}
		for _, t := range s {
			ids = append(ids, index[t])
		}
		ids = append(ids, eos)
		for i := 2; i < len(ids); i++ {
			spec.Unigrams[ids[i]]++
			bi[[2]int32{ids[i-1], ids[i]}]++
			tri[[3]int32{ids[i-2], ids[i-1], ids[i]}]++
		}
	}
	biKeys := make([][2]int32, 0, len(bi))
	for k := range bi {
		biKeys = append(biKeys, k)
	}
	slices.SortFunc(biKeys, func(a, b [2]int32) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	for _, k := range biKeys {
		spec.Bigrams = append(spec.Bigrams, k[0], k[1], bi[k])
	}
	triKeys := make([][3]int32, 0, len(tri))
	for k := range tri {
		triKeys = append(triKeys, k)
	}
	slices.SortFunc(triKeys, func(a, b [3]int32) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]), cmp.Compare(a[2], b[2]))
	})
	for _, k := range triKeys {
		spec.Trigrams = append(spec.Trigrams, k[0], k[1], k[2], tri[k])
	}
	return spec
}

// next is one continuation of a context: token w with relative frequency p.
type next struct {
	w int32
	p float64
}

// span is a range of lm.nexts.
type span struct{ lo, hi int32 }

// lm is the trigram model ready for generation. Every field is read-only
// after newLM, so one lm serves any number of goroutines.
type lm struct {
	vocab []string
	// spaced[i] is vocab[i] as it is appended to running text: with a
	// leading space, except for punctuation.
	spaced []string
	index  map[string]int32
	punct  []bool
	// base[w] is backoff²·c(w)/N, the score of a token seen after neither
	// context word; 0 for <s>.
	base     []float64
	bigrams  map[int32]span
	trigrams map[uint64]span
	nexts    []next
	backoff  float64
	bos, eos int32
}

func pairKey(u, v int32) uint64 { return uint64(uint32(u))<<32 | uint64(uint32(v)) }

// newLM validates spec and indexes its continuations.
func newLM(spec lmSpec) (*lm, error) {
	nv := int32(len(spec.Vocab))
	if !(spec.Backoff > 0 && spec.Backoff < 1) {
		return nil, fmt.Errorf("language_model.backoff: %v, must be in (0, 1)", spec.Backoff)
	}
	if len(spec.Unigrams) != len(spec.Vocab) {
		return nil, fmt.Errorf("language_model.unigrams: %d counts for %d vocab entries", len(spec.Unigrams), nv)
	}
	m := &lm{
		vocab:    spec.Vocab,
		spaced:   make([]string, nv),
		index:    make(map[string]int32, nv),
		punct:    make([]bool, nv),
		base:     make([]float64, nv),
		bigrams:  map[int32]span{},
		trigrams: map[uint64]span{},
		backoff:  spec.Backoff,
	}
	for i, t := range spec.Vocab {
		if _, dup := m.index[t]; dup || t == "" {
			return nil, fmt.Errorf("language_model.vocab[%d]: %q is empty or repeated", i, t)
		}
		m.index[t] = int32(i)
		m.punct[i] = len(t) == 1 && isPunctToken(rune(t[0]))
		m.spaced[i] = " " + t
		if m.punct[i] {
			m.spaced[i] = t
		}
	}
	var ok bool
	if m.bos, ok = m.index[bosToken]; !ok {
		return nil, fmt.Errorf("language_model.vocab: no %s token", bosToken)
	}
	if m.eos, ok = m.index[eosToken]; !ok {
		return nil, fmt.Errorf("language_model.vocab: no %s token", eosToken)
	}
	total := 0.0
	for i, c := range spec.Unigrams {
		if c < 0 {
			return nil, fmt.Errorf("language_model.unigrams[%d]: negative count", i)
		}
		total += float64(c)
	}
	if total == 0 {
		return nil, fmt.Errorf("language_model.unigrams: all zero")
	}
	for i, c := range spec.Unigrams {
		m.base[i] = spec.Backoff * spec.Backoff * float64(c) / total
	}
	m.base[m.bos] = 0
	err := m.addContinuations("bigrams", spec.Bigrams, 1, func(ctx []int32, s span) { m.bigrams[ctx[0]] = s })
	if err != nil {
		return nil, err
	}
	err = m.addContinuations("trigrams", spec.Trigrams, 2, func(ctx []int32, s span) { m.trigrams[pairKey(ctx[0], ctx[1])] = s })
	if err != nil {
		return nil, err
	}
	return m, nil
}

// addContinuations reads flattened (context…, w, count) tuples sorted by
// context and appends one run of nexts per context, with p = count/sum of
// the run; done is called with each context and its run.
func (m *lm) addContinuations(field string, flat []int32, order int, done func(ctx []int32, s span)) error {
	width := order + 2
	if len(flat)%width != 0 {
		return fmt.Errorf("language_model.%s: length %d is not a multiple of %d", field, len(flat), width)
	}
	nv := int32(len(m.vocab))
	var prev []int32
	for i := 0; i < len(flat); {
		ctx := flat[i : i+order]
		if prev != nil && slices.Compare(ctx, prev) <= 0 {
			return fmt.Errorf("language_model.%s[%d]: tuples are not sorted by context", field, i)
		}
		prev = ctx
		start := int32(len(m.nexts))
		sum := 0.0
		j := i
		for ; j < len(flat) && slices.Equal(flat[j:j+order], ctx); j += width {
			w, c := flat[j+order], flat[j+order+1]
			for _, id := range flat[j : j+order+1] {
				if id < 0 || id >= nv {
					return fmt.Errorf("language_model.%s[%d]: token %d out of range", field, j, id)
				}
			}
			if c < 1 || w == m.bos {
				return fmt.Errorf("language_model.%s[%d]: bad count %d or <s> as a continuation", field, j, c)
			}
			m.nexts = append(m.nexts, next{w: w, p: float64(c)})
			sum += float64(c)
		}
		for k := range m.nexts[start:] {
			m.nexts[start+int32(k)].p /= sum
		}
		done(ctx, span{start, int32(len(m.nexts))})
		i = j
	}
	return nil
}

// scoreInto writes the stupid-backoff score of every token after context
// (u, v) into scores: p(w|u v) for a seen trigram, else backoff·p(w|v) for a
// seen bigram, else backoff²·p(w). Scores are not normalised.
func (m *lm) scoreInto(u, v int32, scores []float64) {
	copy(scores, m.base)
	if sp, ok := m.bigrams[v]; ok {
		for _, n := range m.nexts[sp.lo:sp.hi] {
			scores[n.w] = m.backoff * n.p
		}
	}
	if sp, ok := m.trigrams[pairKey(u, v)]; ok {
		for _, n := range m.nexts[sp.lo:sp.hi] {
			scores[n.w] = n.p
		}
	}
}

// context picks the two tokens generation continues from: the last two
// prompt tokens the model knows, skipping unknown words and a closing
// sentence mark, padded with <s>. A prompt it knows nothing of starts a
// fresh sentence.
func (m *lm) context(prompt []string) (u, v int32) {
	u, v = m.bos, m.bos
	for i := len(prompt) - 1; i >= 0; i-- {
		id, ok := m.index[prompt[i]]
		if !ok || endsSentence(prompt[i]) {
			continue
		}
		if v == m.bos {
			v = id
			continue
		}
		u = id
		break
	}
	return u, v
}

// pick chooses the next token from scores: the highest (lowest index on a
// tie) when rng is nil, else a draw with probability proportional to
// score^(1/temperature). It overwrites scores.
func pick(scores []float64, temperature float64, rng *rand.Rand) int32 {
	best := 0
	for i, s := range scores {
		if s > scores[best] {
			best = i
		}
	}
	if rng == nil {
		return int32(best)
	}
	top, sum := scores[best], 0.0
	inv := 1 / temperature
	for i, s := range scores {
		if s > 0 {
			if inv != 1 {
				s = math.Exp(inv * math.Log(s/top))
			}
			scores[i] = s
			sum += s
		}
	}
	r := rng.Float64() * sum
	for i, s := range scores {
		if s > 0 {
			if r -= s; r < 0 {
				return int32(i)
			}
		}
	}
	return int32(best)
}

// generate continues prompt; see Model.GenerateFunc.
func (m *lm) generate(prompt string, o GenerateOptions, emit func(piece string) bool) Generation {
	toks := lmTokens(prompt)
	g := Generation{PromptTokens: len(toks), FinishReason: FinishLength}
	limit := o.MaxTokens
	if limit <= 0 {
		limit = DefaultMaxTokens
	}
	var rng *rand.Rand
	if o.Temperature > 0 {
		rng = rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	}
	u, v := m.context(toks)
	scores := make([]float64, len(m.vocab))
	var text strings.Builder
	for g.Tokens < limit {
		m.scoreInto(u, v, scores)
		if g.Tokens == 0 {
			// Say at least one word: no end, and no punctuation first.
			scores[m.eos] = 0
			for w, p := range m.punct {
				if p {
					scores[w] = 0
				}
			}
		}
		w := pick(scores, o.Temperature, rng)
		if w == m.eos {
			g.FinishReason = FinishStop
			break
		}
		piece := m.spaced[w]
		if g.Tokens == 0 {
			piece = m.vocab[w]
		}
		text.WriteString(piece)
		g.Tokens++
		if emit != nil && !emit(piece) {
			g.FinishReason = ""
			break
		}
		u, v = v, w
	}
	g.Text = text.String()
	return g
}
