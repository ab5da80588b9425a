package guardrail

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// attackPatterns are the prompt-attack signals, each with the confidence
// a match gives: jailbreak personas and instruction overrides are HIGH;
// requests to reveal hidden instructions MEDIUM; role-play framings that
// are often benign LOW.
var attackPatterns = []struct {
	re   *regexp.Regexp
	conf Strength
}{
	{regexp.MustCompile(`\b(ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,40}\b(previous|prior|above|earlier|preceding|all|your|the|system)\b[^.!?\n]{0,30}\b(instructions?|prompts?|rules|directives|guidelines|constraints|polic(y|ies))\b`), StrengthHigh},
	{regexp.MustCompile(`\b(do anything now|\bdan mode|developer mode (enabled|on)|jailbreak(ed)? mode|jailbroken)\b`), StrengthHigh},
	{regexp.MustCompile(`\byou are (now )?(no longer|not) (bound|restricted|limited) by\b`), StrengthHigh},
	{regexp.MustCompile(`\b(without|with no|free of) (any )?(restrictions|filters|limitations|censorship|guidelines|rules)\b`), StrengthMedium},
	{regexp.MustCompile(`\b(reveal|show|print|repeat|output|leak)\b[^.!?\n]{0,30}\b(system prompt|hidden (instructions|prompt)|initial instructions|your instructions)\b`), StrengthMedium},
	{regexp.MustCompile(`\bnew instructions?:`), StrengthMedium},
	{regexp.MustCompile(`\b(pretend|imagine|act as if) (that )?you (are|were|have) (an? )?(unrestricted|unfiltered|evil|uncensored)\b`), StrengthMedium},
	{regexp.MustCompile(`\b(pretend|role-?play|act) (to be|as)\b`), StrengthLow},
}

// detectPromptAttack runs the patterns on text and reports the highest
// confidence found, when the filter's input strength blocks it.
func detectPromptAttack(text string, f *ContentFilter) (Finding, bool) {
	lower := strings.ToLower(text)
	best := StrengthNone
	for _, p := range attackPatterns {
		if p.conf.rank() > best.rank() && p.re.MatchString(lower) {
			best = p.conf
		}
	}
	if best == StrengthNone {
		return Finding{}, false
	}
	act := f.For(Input, Block)
	if !f.InputStrength.blocks(best) {
		act = None
	}
	return Finding{Policy: "content", Type: FilterPromptAttack, Confidence: best, Strength: f.InputStrength, Action: act}, true
}

// classifyText asks the classifier about the filters enabled for src.
func (g *Guard) classifyText(ctx context.Context, src Source, text string) ([]Finding, error) {
	var cats []string
	for _, f := range g.classify {
		if s := f.strength(src); s != "" && s != StrengthNone {
			cats = append(cats, f.Type)
		}
	}
	if len(cats) == 0 || strings.TrimSpace(text) == "" {
		return nil, nil
	}
	model := g.Policy.ContentPolicy.ClassifierModel
	if g.opts.Classifier == nil {
		return nil, errNoJudge(g.name(), fmt.Sprintf("content filters %s need the classifier model %q, but this Junction has no classifier configured",
			strings.Join(cats, ", "), model))
	}
	conf, err := g.opts.Classifier.Classify(ctx, model, text, cats)
	if err != nil {
		return nil, fmt.Errorf("guardrail %s: classifier %s: %w", g.name(), model, err)
	}
	var out []Finding
	for _, f := range g.classify {
		s := f.strength(src)
		c, ok := conf[f.Type]
		if !ok || s == "" || s == StrengthNone || c.rank() == 0 {
			continue
		}
		act := f.For(src, Block)
		if !s.blocks(c) {
			act = None
		}
		out = append(out, Finding{Policy: "content", Type: f.Type, Confidence: c, Strength: s, Action: act})
	}
	return out, nil
}

func (g *Guard) name() string {
	if g.ID != "" {
		return g.ID
	}
	return g.Policy.Name
}

// embedTopics matches topics by meaning: cosine similarity between the
// text's embedding and each topic's definition and examples, embedded
// once per Guard.
func (g *Guard) embedTopics(ctx context.Context, src Source, text string) ([]Finding, error) {
	tp := &g.Policy.TopicPolicy
	if g.opts.Embed == nil {
		return nil, errNoJudge(g.name(), fmt.Sprintf("topic_policy.embedding_model %q is set, but this Junction has no embedder configured", tp.EmbeddingModel))
	}
	g.topicOnce.Do(func() {
		for _, t := range tp.Topics {
			texts := append([]string{t.Definition}, t.Examples...)
			vecs, err := g.opts.Embed(ctx, tp.EmbeddingModel, texts)
			if err == nil && len(vecs) != len(texts) {
				err = fmt.Errorf("%d embeddings for %d texts", len(vecs), len(texts))
			}
			if err != nil {
				g.topicErr = err
				return
			}
			g.topicVecs = append(g.topicVecs, vecs)
		}
	})
	if g.topicErr != nil {
		return nil, fmt.Errorf("guardrail %s: embedding topics with %s: %w", g.name(), tp.EmbeddingModel, g.topicErr)
	}
	v, err := g.opts.Embed(ctx, tp.EmbeddingModel, []string{text})
	if err != nil || len(v) != 1 {
		return nil, fmt.Errorf("guardrail %s: embedding text with %s: %v", g.name(), tp.EmbeddingModel, err)
	}
	th := tp.Threshold
	if th == 0 {
		th = 0.8
	}
	var out []Finding
	for i, t := range tp.Topics {
		for _, tv := range g.topicVecs[i] {
			if cosine(v[0], tv) >= th {
				out = append(out, Finding{Policy: "topic", Name: t.Name, Action: t.For(src, Block)})
				break
			}
		}
	}
	return out, nil
}

func cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / math.Sqrt(na*nb)
}

// ChatClassifier is a Classifier that asks a chat model, through Chat
// (e.g. the gateway's call for a model Junction serves), to rate the text
// and answer in JSON.
type ChatClassifier struct {
	Chat func(ctx context.Context, req *llm.Request) (*llm.Response, error)
}

// Classify implements Classifier.
func (c ChatClassifier) Classify(ctx context.Context, model, text string, categories []string) (map[string]Strength, error) {
	zero := 0.0
	maxTokens := 200
	prompt := "You are a content-safety classifier. Rate the text between <text> tags for each category in " +
		strings.Join(categories, ", ") + " (HATE: hate speech; INSULTS: demeaning language; SEXUAL: sexual content; " +
		"VIOLENCE: glorifying or threatening violence; MISCONDUCT: seeking or giving help with crime or harm). " +
		`Answer only with a JSON object mapping each category to one of "NONE", "LOW", "MEDIUM", "HIGH".`
	req := &llm.Request{Model: model, Temperature: &zero, MaxTokens: &maxTokens, Messages: []llm.Message{
		{Role: llm.RoleSystem, Content: []llm.Part{{Type: llm.PartText, Text: prompt}}},
		{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "<text>" + text + "</text>"}}},
	}}
	resp, err := c.Chat(ctx, req)
	if err != nil {
		return nil, err
	}
	var answer strings.Builder
	for _, p := range resp.Content {
		answer.WriteString(p.Text)
	}
	s := answer.String()
	if i, j := strings.IndexByte(s, '{'), strings.LastIndexByte(s, '}'); i >= 0 && j > i {
		s = s[i : j+1]
	}
	var raw map[string]string
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("classifier answer is not a JSON object of ratings: %q", answer.String())
	}
	out := map[string]Strength{}
	for k, v := range raw {
		out[strings.ToUpper(k)] = Strength(strings.ToUpper(v))
	}
	return out, nil
}
