package promptroute

import (
	"context"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
)

var (
	cheap  = Candidate{Model: "gpt-4o-mini", Quality: 0.45, Price: 0.00075}
	strong = Candidate{Model: "gpt-4o", Quality: 0.9, Price: 0.0125}
)

// The spec of the feature router: on a labelled set it sends at least 90%
// of easy prompts to the cheap model and 90% of hard ones to the strong.
func TestFeatureRouterOnLabelledSet(t *testing.T) {
	cands := []Candidate{strong, cheap} // unsorted on purpose
	route := func(p string) (int, float64) {
		probs, err := FeatureScorer{}.Predict(context.Background(), userRequest(p), cands)
		if err != nil {
			t.Fatal(err)
		}
		i, _ := Choose(probs, cands, 0.7)
		return i, Difficulty(Extract(userRequest(p)))
	}
	cheapEasy, strongHard := 0, 0
	for _, p := range easyPrompts {
		i, d := route(p)
		if cands[i] == cheap {
			cheapEasy++
		} else {
			t.Logf("easy prompt sent to %s (difficulty %.2f, %+v): %q", cands[i].Model, d, Extract(userRequest(p)), p)
		}
	}
	for _, p := range hardPrompts {
		i, d := route(p)
		if cands[i] == strong {
			strongHard++
		} else {
			t.Logf("hard prompt sent to %s (difficulty %.2f, %+v): %q", cands[i].Model, d, Extract(userRequest(p)), short(p))
		}
	}
	t.Logf("easy → cheap %d/%d, hard → strong %d/%d", cheapEasy, len(easyPrompts), strongHard, len(hardPrompts))
	if cheapEasy*10 < 9*len(easyPrompts) {
		t.Errorf("easy prompts sent to the cheap model: %d of %d, want ≥ 90%%", cheapEasy, len(easyPrompts))
	}
	if strongHard*10 < 9*len(hardPrompts) {
		t.Errorf("hard prompts sent to the strong model: %d of %d, want ≥ 90%%", strongHard, len(hardPrompts))
	}
}

func short(s string) string {
	if len(s) > 70 {
		return s[:70] + "…"
	}
	return s
}

func TestExtract(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		want func(Features) bool
	}{
		{"plain question", "What is the capital of Australia?", func(f Features) bool {
			return !f.HasCode && !f.HasMath && f.Steps == 0 && f.RequestedOutputTokens == 0
		}},
		{"fenced code", "Why does this fail?\n```\nx = 1\n```", func(f Features) bool { return f.HasCode }},
		{"code topic words", "Write a Python function that reverses a list.", func(f Features) bool { return f.HasCode && !f.HasMath }},
		{"one topic word is not code", "What is Python?", func(f Features) bool { return !f.HasCode }},
		{"unfenced code symbols", "fix: if (a == b && c != d) {\n  return x;\n}\n", func(f Features) bool { return f.HasCode }},
		{"latex", `Simplify \frac{a}{b} + \frac{c}{d}`, func(f Features) bool { return f.HasMath }},
		{"proof word", "Prove there are infinitely many primes.", func(f Features) bool { return f.HasMath }},
		{"maths word and operator", "Solve 3x^2 - 12x + 9 = 0.", func(f Features) bool { return f.HasMath }},
		{"arithmetic is not maths", "What is 2+2?", func(f Features) bool { return !f.HasMath }},
		{"dates and hyphens are not maths", "Book the top-line 2000-word slot on 2024-01-15.", func(f Features) bool { return !f.HasMath }},
		{"unicode maths", "Evaluate ∫ x dx from 0 to 1.", func(f Features) bool { return f.HasMath }},
		{"numbered steps", "Do this:\n1. parse\n2. validate\n3. store", func(f Features) bool { return f.Steps == 3 }},
		{"bullets", "- one\n- two\n* three\n• four", func(f Features) bool { return f.Steps == 4 }},
		{"step by step", "Explain step by step.", func(f Features) bool { return f.Steps == 2 }},
		{"sequencing and questions", "Read it, then summarize it. What is it? Who wrote it? Finally translate it.", func(f Features) bool {
			return f.Steps == 4 // then, finally, a second question, a second imperative ("summarize" after "then")
		}},
		{"imperatives", "Write a poem. Explain its meter. List its rhymes.", func(f Features) bool { return f.Steps == 2 }},
		{"words", "Write an essay in 2,000 words.", func(f Features) bool { return f.RequestedOutputTokens == 2700 }},
		{"hyphenated length", "A 500-word summary, please.", func(f Features) bool { return f.RequestedOutputTokens == 675 }},
		{"pages", "Write three pages about owls.", func(f Features) bool { return f.RequestedOutputTokens == 1950 }},
		{"detailed essay", "Write a detailed essay on owls.", func(f Features) bool { return f.RequestedOutputTokens == 2000 }},
		{"brief", "Briefly, what is an owl?", func(f Features) bool { return f.RequestedOutputTokens == 100 }},
		{"reasoning", "Compare the trade-offs and edge cases.", func(f Features) bool { return f.Reasoning == 3 }},
		{"long word lookups", "Give a comprehensive multithreaded implementation.", func(f Features) bool {
			return f.RequestedOutputTokens == 800 && f.HasCode
		}},
	} {
		f := Extract(userRequest(tc.text))
		if !tc.want(f) {
			t.Errorf("%s: %q: %+v", tc.name, tc.text, f)
		}
	}
}

func TestExtractRequestShape(t *testing.T) {
	max := 300
	req := &llm.Request{
		MaxTokens: &max,
		Tools:     []llm.Tool{{Name: "search"}},
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: []llm.Part{{Type: llm.PartText, Text: "You are a coding assistant. ```go\nfunc x() {}\n```"}}},
			{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "Write a 2000-word essay on cats."}}},
			{Role: llm.RoleAssistant, Content: []llm.Part{{Type: llm.PartText, Text: "Sure."}}},
			{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "What time is it in Tokyo?"}, {Type: llm.PartImage, Image: &llm.Image{URL: "https://x/y.png"}}}},
		},
	}
	f := Extract(req)
	if f.Turns != 2 || f.Tools != 1 || f.Images != 1 {
		t.Errorf("turns, tools, images = %d, %d, %d; want 2, 1, 1", f.Turns, f.Tools, f.Images)
	}
	if f.HasCode {
		t.Error("the system prompt's code should not make the last question code")
	}
	if f.RequestedOutputTokens != 300 {
		t.Errorf("RequestedOutputTokens = %d, want max_tokens 300 (the last message asks nothing)", f.RequestedOutputTokens)
	}
	if f.PromptTokens < 20 {
		t.Errorf("PromptTokens = %d counts only part of the conversation", f.PromptTokens)
	}
	if Extract(nil) != (Features{}) {
		t.Error("Extract(nil)")
	}
	max = 50
	if f := Extract(userRequest("Write a 2000-word essay.")); f.RequestedOutputTokens != 2700 {
		t.Errorf("without max_tokens: %d", f.RequestedOutputTokens)
	}
	req.Messages = req.Messages[:2]
	if f := Extract(req); f.RequestedOutputTokens != 50 {
		t.Errorf("max_tokens caps the requested length: %d, want 50", f.RequestedOutputTokens)
	}
}

func TestDifficultyBounds(t *testing.T) {
	if d := Difficulty(Features{}); d != 0 {
		t.Errorf("empty features = %v", d)
	}
	all := Features{PromptTokens: 1e6, HasCode: true, HasMath: true, Steps: 100, Reasoning: 100, RequestedOutputTokens: 1e6, Turns: 100, Tools: 3, Images: 2}
	if d := Difficulty(all); d != 1 {
		t.Errorf("every signal at its maximum = %v, want 1 (clamped)", d)
	}
	one := Difficulty(Features{HasCode: true})
	two := Difficulty(Features{HasCode: true, HasMath: true})
	if one != 0.25 || two != 0.55 {
		t.Errorf("code = %v, code+maths = %v", one, two)
	}
}

func TestChoose(t *testing.T) {
	cands := []Candidate{{Model: "big", Price: 10}, {Model: "small", Price: 1}, {Model: "mid", Price: 3}}
	for _, tc := range []struct {
		probs  []float64
		want   int
		reason string
	}{
		{[]float64{0.99, 0.81, 0.9}, 1, "prompt_router: chose small (p=0.81 ≥ 0.70)"},
		{[]float64{0.99, 0.5, 0.9}, 2, "prompt_router: chose mid (p=0.90 ≥ 0.70)"},
		{[]float64{0.6, 0.5, 0.65}, 2, "prompt_router: no candidate reached p ≥ 0.70, chose mid (p=0.65, the highest)"},
		{[]float64{0.6, 0.6, 0.6}, 1, "prompt_router: no candidate reached p ≥ 0.70, chose small (p=0.60, the highest)"},
		{[]float64{0.9}, 0, "prompt_router: chose big (p=0.90 ≥ 0.70)"},
	} {
		i, reason := Choose(tc.probs, cands, 0.7)
		if i != tc.want || reason != tc.reason {
			t.Errorf("Choose(%v) = %d %q, want %d %q", tc.probs, i, reason, tc.want, tc.reason)
		}
	}
	if i, _ := Choose(nil, nil, 0.7); i != -1 {
		t.Error("no candidates")
	}
}

func TestRoute(t *testing.T) {
	i, reason, err := Route(context.Background(), FeatureScorer{}, userRequest("What is the capital of France?"), []Candidate{cheap, strong}, 0.7)
	if err != nil || i != 0 || !strings.HasPrefix(reason, "prompt_router: difficulty 0.00, chose gpt-4o-mini (p=") {
		t.Errorf("Route = %d %q %v", i, reason, err)
	}
}

func BenchmarkExtractDifficulty(b *testing.B) {
	req := userRequest(prompt4K())
	b.SetBytes(int64(len(prompt4K())))
	b.ReportAllocs()
	for b.Loop() {
		Difficulty(Extract(req))
	}
}

// prompt4K is a 4 KB prompt mixing instructions, prose, maths and code.
func prompt4K() string {
	var b strings.Builder
	for b.Len() < 4096 {
		for _, p := range hardPrompts {
			b.WriteString(p)
			b.WriteString("\n\n")
		}
	}
	return b.String()[:4096]
}
