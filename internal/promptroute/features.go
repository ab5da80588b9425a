package promptroute

import (
	"math"

	"github.com/junctionhq/junction/internal/tokens"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Features are the signals of a request's difficulty that can be read
// from its text in microseconds. The content signals (all but
// PromptTokens, Turns, Tools and Images) come from the last user message,
// the task at hand; a system prompt that says "you are a coding
// assistant" does not make "what time is it in Tokyo?" hard.
type Features struct {
	// PromptTokens estimates the tokens of all message text
	// (tokens.Estimate), so long contexts count.
	PromptTokens int
	// HasCode is set when the task contains a fenced code block, or at
	// least two code signals: code keywords (func, def, struct, nil, ...),
	// programming topics (python, function, algorithm, debug, sql, ...)
	// and code symbols ({ or } at a line end, ; at a line end, =>, ->,
	// ==, !=, &&, ||, :=, ::, (), </, /> and // comments), three symbols
	// counting as one signal.
	HasCode bool
	// HasMath is set when the task has LaTeX (\frac, \int, \sum, ...; or
	// ∫ ∑ ∂ ∇), a word that means proof or higher maths (prove, theorem,
	// integral, derivative, eigenvalue, polynomial, ...), two maths words
	// (solve, calculate, equation, probability, ...) or one with an
	// operator between operands (3x^2, 17 * 23, x = 2), or, outside code,
	// four or more such operators. Plain arithmetic ("what is 2+2?") is
	// not maths.
	HasMath bool
	// Steps counts the sub-tasks the prompt asks for beyond one: list
	// items (lines starting "1.", "2)", "-", "*" or "•"), sequencing words
	// (then, next, finally, afterwards, ...), "step by step" (2), the
	// word "steps", every question mark after the first, and every
	// imperative (write, explain, compare, implement, verify, ...) after
	// the first that opens a sentence or a clause (after a comma, or
	// "and", "then", "also", "plus").
	Steps int
	// Technical counts the code and maths signals above (keywords,
	// topics, maths words, LaTeX commands; code symbols and operators in
	// threes and twos): how dense the task's specialist content is.
	Technical int
	// Reasoning counts analysis words: analyze, compare, evaluate,
	// justify, trade-offs, complexity, edge cases, architecture, ...
	Reasoning int
	// RequestedOutputTokens estimates the length of the answer asked
	// for: "in 2000 words" (1.35 tokens a word), "3 pages" (650 a page),
	// "5 paragraphs" (130), "10 sentences" (25), "20 lines" (12), "10
	// examples" (40 an item); else 2,000 for a detailed long-form piece
	// ("a detailed essay"), 1,000 for a long-form piece, 800 for
	// "detailed", "comprehensive", "in depth"; 100 when asked to be brief.
	// max_tokens caps it, and stands in for it when the text asks nothing.
	RequestedOutputTokens int
	// Turns is the number of user messages: the conversation's depth.
	Turns int
	// Tools is the number of tool definitions.
	Tools int
	// Images is the number of image parts.
	Images int
}

// The weights of Difficulty. They are set by hand so that one strong
// signal alone (code, maths, a long answer) leaves a prompt in reach of a
// mid-quality model and two or more take it out; see the package doc.
const (
	weightLength    = 0.15 // × scale of PromptTokens from 100 to 4,000 (log)
	weightCode      = 0.25
	weightMath      = 0.30
	weightStep      = 0.07 // per step
	maxSteps        = 0.28
	weightReasoning = 0.05 // per analysis word
	maxReasoning    = 0.15
	weightTechnical = 0.02 // per technical signal after the second
	maxTechnical    = 0.10
	weightOutput    = 0.40 // × scale of RequestedOutputTokens from 400 to 4,000 (log)
	weightTurn      = 0.02 // per user turn after the first
	maxTurns        = 0.08
	weightTools     = 0.05
	weightImages    = 0.05
)

// Difficulty maps features to a score in [0, 1]: the weighted sum in the
// package doc's table, clamped.
func Difficulty(f Features) float64 {
	d := weightLength * logScale(f.PromptTokens, 100, 4000)
	if f.HasCode {
		d += weightCode
	}
	if f.HasMath {
		d += weightMath
	}
	d += math.Min(weightStep*float64(f.Steps), maxSteps)
	d += math.Min(weightReasoning*float64(f.Reasoning), maxReasoning)
	if f.Technical > 2 {
		d += math.Min(weightTechnical*float64(f.Technical-2), maxTechnical)
	}
	d += weightOutput * logScale(f.RequestedOutputTokens, 400, 4000)
	if f.Turns > 1 {
		d += math.Min(weightTurn*float64(f.Turns-1), maxTurns)
	}
	if f.Tools > 0 {
		d += weightTools
	}
	if f.Images > 0 {
		d += weightImages
	}
	return clamp01(d)
}

// logScale maps v to 0 at lo, 1 at hi, logarithmically, clamped.
func logScale(v, lo, hi int) float64 {
	if v <= lo {
		return 0
	}
	return clamp01(math.Log(float64(v)/float64(lo)) / math.Log(float64(hi)/float64(lo)))
}

func clamp01(x float64) float64 { return math.Max(0, math.Min(1, x)) }

// Extract reads the features of req.
func Extract(req *llm.Request) Features {
	var f Features
	if req == nil {
		return f
	}
	f.Tools = len(req.Tools)
	last := -1
	for i, m := range req.Messages {
		if m.Role == llm.RoleUser {
			f.Turns++
			last = i
		}
		for _, p := range m.Content {
			switch p.Type {
			case llm.PartText:
				f.PromptTokens += tokens.Estimate(p.Text)
			case llm.PartImage:
				f.Images++
			case llm.PartToolCall:
				if p.ToolCall != nil {
					f.PromptTokens += tokens.Estimate(p.ToolCall.Arguments)
				}
			case llm.PartToolResult:
				if p.ToolResult != nil {
					f.PromptTokens += tokens.Estimate(p.ToolResult.Content)
				}
			}
		}
	}
	var sc scanner
	if last >= 0 {
		for _, p := range req.Messages[last].Content {
			if p.Type == llm.PartText {
				sc.scan(p.Text)
				sc.boundary() // parts do not run into each other
			}
		}
	}
	sc.finish(&f)
	if limit := tokens.MaxOutput(req); limit > 0 && (f.RequestedOutputTokens == 0 || f.RequestedOutputTokens > limit) {
		f.RequestedOutputTokens = limit
	}
	return f
}
