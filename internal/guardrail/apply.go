package guardrail

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// Classifier judges text for content-filter categories (HATE, INSULTS,
// SEXUAL, VIOLENCE, MISCONDUCT) with the model a policy names, returning a
// confidence (NONE, LOW, MEDIUM, HIGH) for each category asked about.
type Classifier interface {
	Classify(ctx context.Context, model, text string, categories []string) (map[string]Strength, error)
}

// EmbedFunc returns one embedding per text, computed by model.
type EmbedFunc func(ctx context.Context, model string, texts []string) ([][]float32, error)

// Options are the model-backed judges a Guard may need.
type Options struct {
	// Classifier judges content filters; nil fails any policy that has
	// one, with an error that says so.
	Classifier Classifier
	// Embed matches topics by meaning when the policy names an embedding
	// model.
	Embed EmbedFunc
}

// Guard is a compiled policy, safe for concurrent use.
type Guard struct {
	// ID and Version identify the guardrail in answers and logs.
	ID, Version string
	Policy      Policy

	opts      Options
	words     *matcher
	pii       *piiScanner
	piiAction [numPII]Actions
	regexes   []*regexScanner
	attack    *ContentFilter
	classify  []ContentFilter
	window    int
	// skip classifies bytes for Guard.find at the automaton's root: see
	// buildSkip.
	skip [256]uint8

	topicOnce sync.Once
	topicVecs [][][]float32 // per topic: definition and examples
	topicErr  error
}

// minWindow is the least text a sync stream holds back: room for the
// longest built-in detection (an IBAN written in groups, a phone number
// with its country code, an e-mail address's local part).
const minWindow = 128

// Compile checks p and prepares it for scanning.
func Compile(p Policy, opts Options) (*Guard, error) {
	if probs := p.Validate("policy"); len(probs) > 0 {
		return nil, fmt.Errorf("invalid guardrail policy: %s", strings.Join(probs, "; "))
	}
	g := &Guard{Policy: p, opts: opts, window: minWindow}
	var words []string
	var pats []pattern
	addWord := func(w string, kind patternKind, idx int) {
		w = normalizePhrase(w)
		if w == "" {
			return
		}
		words = append(words, w)
		pats = append(pats, pattern{kind: kind, index: idx, n: len(w)})
	}
	for i, w := range p.WordPolicy.Words {
		addWord(w.Text, kindCustomWord, i)
	}
	for i := range p.WordPolicy.ManagedWordLists {
		for _, w := range Profanity() {
			addWord(w, kindManaged, i)
		}
	}
	for i, t := range p.TopicPolicy.Topics {
		for _, e := range append(append([]string(nil), t.Examples...), t.Phrases...) {
			addWord(strings.TrimRight(e, ".?!"), kindTopic, i)
		}
	}
	g.words = newMatcher(words, pats)
	if g.words != nil {
		g.window = max(g.window, g.words.maxLen+2)
	}
	var set piiSet
	for _, e := range p.SensitiveInformation.PIIEntities {
		k, _ := piiKindOf(e.Type)
		set |= 1 << k
		g.piiAction[k] = e.Actions
	}
	if set != 0 {
		g.pii = newPIIScanner(set)
	}
	g.buildSkip()
	for _, r := range p.SensitiveInformation.Regexes {
		rs, err := newRegexScanner(r.Pattern)
		if err != nil {
			return nil, err
		}
		g.regexes = append(g.regexes, rs)
		if rs.maxLen >= 0 {
			g.window = max(g.window, rs.maxLen+2)
		} else {
			g.window = max(g.window, 256)
		}
	}
	for i, f := range p.ContentPolicy.Filters {
		if f.Type == FilterPromptAttack {
			g.attack = &p.ContentPolicy.Filters[i]
		} else {
			g.classify = append(g.classify, f)
		}
	}
	return g, nil
}

// Finding is one match of a policy in a text.
type Finding struct {
	// Policy is "word", "managedWord", "pii", "regex", "topic" or
	// "content".
	Policy string
	// Type is the PII type, content filter type or managed list; Name the
	// regex's or topic's name.
	Type, Name string
	// Match is the matched text; Start and End its byte offsets (zero
	// for findings about the whole text).
	Match      string
	Start, End int
	// Action is the configured action for the text's source.
	Action Action
	// Confidence and Strength (the filter's, for the source) are set for
	// content filters.
	Confidence, Strength Strength
}

// Result is the outcome of applying a guardrail to a text.
type Result struct {
	// Action is "NONE" or "GUARDRAIL_INTERVENED".
	Action       string
	ActionReason string
	// Blocked is set when a BLOCK finding replaced the text.
	Blocked bool
	// Output is the text to pass on: the input with anonymized matches
	// masked, or the policy's blocked message.
	Output     string
	Findings   []Finding
	Assessment Assessment
	Usage      Usage
	// Characters is the length of the text in characters.
	Characters int
}

// Intervened reports whether the guardrail changed or blocked the text.
func (r *Result) Intervened() bool { return r.Action == ActionIntervened }

// Result actions.
const (
	ActionNone       = "NONE"
	ActionIntervened = "GUARDRAIL_INTERVENED"
)

// scan finds the word, topic-phrase, PII and regex matches in text: the
// part of a policy that is pattern matching, local to the text, and fast.
// Overlapping sensitive-information matches are resolved leftmost-longest.
func (g *Guard) scan(text string, src Source, out []Finding) []Finding {
	if g.words == nil && g.pii == nil && len(g.regexes) == 0 {
		return out
	}
	// Sensitive information is collected as spans, resolved, and only
	// the spans kept become findings.
	bp := spanPool.Get().(*[]span)
	spans := (*bp)[:0]
	if g.words != nil || g.pii != nil {
		g.find(text, func(p *pattern, s, e int) {
			f := Finding{Start: s, End: e, Match: text[s:e]}
			switch p.kind {
			case kindCustomWord:
				f.Policy, f.Action = "word", g.Policy.WordPolicy.Words[p.index].For(src, Block)
			case kindManaged:
				f.Policy, f.Type = "managedWord", ManagedProfanity
				f.Action = g.Policy.WordPolicy.ManagedWordLists[p.index].For(src, Block)
			case kindTopic:
				t := &g.Policy.TopicPolicy.Topics[p.index]
				f.Policy, f.Name, f.Action = "topic", t.Name, t.For(src, Block)
			}
			out = append(out, f)
		}, func(k piiKind, s, e int) {
			spans = append(spans, span{s, e, int(k)})
		})
	}
	for i, rs := range g.regexes {
		rs.find(text, func(s, e int) {
			spans = append(spans, span{s, e, int(numPII) + i})
		})
	}
	for _, sp := range resolve(spans) {
		s, e := sp.start, sp.end
		if sp.kind < int(numPII) {
			out = append(out, Finding{Policy: "pii", Type: piiNames[sp.kind], Start: s, End: e, Match: text[s:e], Action: g.piiAction[sp.kind].For(src, Block)})
		} else {
			r := &g.Policy.SensitiveInformation.Regexes[sp.kind-int(numPII)]
			out = append(out, Finding{Policy: "regex", Name: r.Name, Start: s, End: e, Match: text[s:e], Action: r.For(src, Block)})
		}
	}
	if cap(spans) <= 1<<16 {
		*bp = spans[:0]
		spanPool.Put(bp)
	}
	return out
}

// span is a sensitive-information match: a PII kind, or numPII plus the
// index of a regex.
type span struct {
	start, end, kind int
}

var spanPool = sync.Pool{New: func() any { s := make([]span, 0, 64); return &s }}

// resolve drops the spans that overlap an earlier or longer one, so each
// byte is masked at most once, and returns the rest in order. Spans at
// the same place keep the order they were found in.
func resolve(si []span) []span {
	if len(si) < 2 {
		return si
	}
	// The detectors report mostly in order (the spans of each regex come
	// after those of the single pass): merge the ordered runs.
	for i := 1; i < len(si); i++ {
		if spanBefore(&si[i], &si[i-1]) {
			mergeRuns(si)
			break
		}
	}
	kept, end := si[:0], -1
	for _, f := range si {
		if f.start >= end {
			kept = append(kept, f)
			end = f.end
		}
	}
	return kept
}

// mergeRuns sorts si by spanBefore, stably, merging its ordered runs
// pairwise (a natural merge sort), which costs a pass or two when there
// are only a few.
func mergeRuns(si []span) {
	bp := spanPool.Get().(*[]span)
	buf := append((*bp)[:0], si...)
	src, dst := buf, si
	for {
		runs, out := 0, 0
		for lo := 0; lo < len(src); {
			mid := lo + 1
			for mid < len(src) && !spanBefore(&src[mid], &src[mid-1]) {
				mid++
			}
			hi := mid
			if mid < len(src) {
				hi++
				for hi < len(src) && !spanBefore(&src[hi], &src[hi-1]) {
					hi++
				}
			}
			// Merge src[lo:mid] and src[mid:hi] into dst, the first run
			// first where they tie.
			a, b := lo, mid
			for a < mid && b < hi {
				if spanBefore(&src[b], &src[a]) {
					dst[out] = src[b]
					b++
				} else {
					dst[out] = src[a]
					a++
				}
				out++
			}
			out += copy(dst[out:], src[a:mid])
			out += copy(dst[out:], src[b:hi])
			runs++
			lo = hi
		}
		if runs == 1 {
			break
		}
		src, dst = dst, src
	}
	if &dst[0] != &si[0] {
		copy(si, dst)
	}
	if cap(buf) <= 1<<16 {
		*bp = buf[:0]
		spanPool.Put(bp)
	}
}

// spanBefore orders spans by start, longest first.
func spanBefore(a, b *span) bool {
	if a.start != b.start {
		return a.start < b.start
	}
	return a.end > b.end
}

// Apply checks text from src against the guardrail. It fails only when a
// model-backed judge (classifier, embeddings) is needed and fails or is
// missing.
func (g *Guard) Apply(ctx context.Context, src Source, text string) (Result, error) {
	return g.apply(ctx, src, text, true)
}

func (g *Guard) apply(ctx context.Context, src Source, text string, promptAttack bool) (Result, error) {
	fs := g.scan(text, src, nil)
	if promptAttack && src == Input && g.attack != nil {
		if f, ok := detectPromptAttack(text, g.attack); ok {
			fs = append(fs, f)
		}
	}
	if len(g.classify) > 0 {
		cf, err := g.classifyText(ctx, src, text)
		if err != nil {
			return Result{}, err
		}
		fs = append(fs, cf...)
	}
	if g.Policy.TopicPolicy.EmbeddingModel != "" && len(g.Policy.TopicPolicy.Topics) > 0 {
		tf, err := g.embedTopics(ctx, src, text)
		if err != nil {
			return Result{}, err
		}
		fs = append(fs, tf...)
	}
	return g.result(src, text, fs), nil
}

// result builds the outcome of findings fs on text.
func (g *Guard) result(src Source, text string, fs []Finding) Result {
	r := Result{Action: ActionNone, ActionReason: "No action.", Output: text, Findings: fs, Characters: utf8.RuneCountInString(text)}
	masked := false
	for _, f := range fs {
		switch f.Action {
		case Block:
			r.Blocked = true
		case Anonymize:
			masked = true
		}
	}
	switch {
	case r.Blocked:
		r.Action, r.ActionReason = ActionIntervened, "Guardrail blocked."
		r.Output = g.BlockedMessage(src)
	case masked:
		r.Action, r.ActionReason = ActionIntervened, "Guardrail masked."
		r.Output = mask(text, fs)
	}
	r.Assessment = g.assess(fs)
	r.Usage = g.usage(r.Characters)
	return r
}

// BlockedMessage is the text that replaces a blocked text from src.
func (g *Guard) BlockedMessage(src Source) string {
	if src == Input {
		return g.Policy.BlockedInputMessaging
	}
	return g.Policy.BlockedOutputsMessaging
}

// placeholder is what an anonymized finding becomes: "{EMAIL}", or the
// regex's name in braces.
func placeholder(f *Finding) string {
	if f.Policy == "regex" {
		return "{" + f.Name + "}"
	}
	return "{" + f.Type + "}"
}

// mask replaces the ANONYMIZE findings of text (non-overlapping among
// themselves) with their placeholders.
func mask(text string, fs []Finding) string {
	var anon []*Finding
	for i := range fs {
		if fs[i].Action == Anonymize {
			anon = append(anon, &fs[i])
		}
	}
	sort.Slice(anon, func(i, j int) bool { return anon[i].Start < anon[j].Start })
	var b strings.Builder
	b.Grow(len(text))
	at := 0
	for _, f := range anon {
		if f.Start < at {
			continue
		}
		b.WriteString(text[at:f.Start])
		b.WriteString(placeholder(f))
		at = f.End
	}
	b.WriteString(text[at:])
	return b.String()
}

// errNoJudge is the error when a policy needs a classifier or embedder
// that this Junction was not given: a 500 that says which.
func errNoJudge(id, what string) error {
	return &llm.Error{Status: http.StatusInternalServerError, Type: llm.ErrInternal,
		Message: fmt.Sprintf("guardrail %s: %s", id, what)}
}
