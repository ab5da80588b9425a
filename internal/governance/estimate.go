package governance

import (
	"math"

	"github.com/junctionhq/junction/internal/governance/budget"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// The admission estimate of a prompt is an upper bound, not a guess: the
// budget reserves it, and a request whose real cost exceeded its
// reservation could take a hard budget past its limit.
//
// Every tokenizer Junction's providers use is a byte-level BPE (OpenAI's
// o200k and cl100k, Llama 3, Qwen, Claude's): each token stands for at
// least one byte of text, so a text never has more tokens than bytes.
// Measured on mixed samples (tokens per byte with o200k / cl100k): English
// prose 0.18 / 0.18, Go 0.33, JSON 0.41, Russian 0.11 / 0.26, Japanese
// 0.27 / 0.34, emoji 0.43 / 0.71, base64 0.68 / 0.71, digits separated by
// commas 1.00 / 1.00. Bytes/3 and bytes/4 (the usual rules of thumb)
// count short on punctuation, digits, base64 and emoji, by up to 3x; the
// tokens package's Estimate counts emoji and base64 short by 2-3x; and an
// exact count (tokens.Request) costs about 120 µs for 4 KB, six times the
// whole admission's budget of 20 µs. The byte count costs nanoseconds and
// never counts short; it reserves about 5x the real input of English
// prose, which settlement gives back when the request ends.

// Framing added to the text's bytes: per message (OpenAI's chat format
// spends 4 tokens a message; a name adds 1), per tool definition (10-12
// in OpenAI's accounting), and for the tools as a whole the system prompt
// Anthropic adds when tools are present (313-530 tokens, by model).
const (
	boundReply      = 8
	boundPerMessage = 8
	boundPerCall    = 8
	boundPerTool    = 16
	boundTools      = 600
	// boundImage is the most one image costs: Anthropic caps an image at
	// about 1,600 tokens; OpenAI's largest high-detail image (8 tiles) is
	// 1,445. (gpt-4o-mini reports images at 33x those counts, priced at
	// 1/33: its TPM charge for an image may exceed this bound.)
	boundImage = 1600
)

// InputBound returns an upper bound of the prompt tokens req will be
// billed for, from the byte length of its text (see above).
func InputBound(req *llm.Request) int64 {
	if req == nil {
		return 0
	}
	n := int64(boundReply)
	for _, m := range req.Messages {
		n += boundPerMessage + int64(len(m.Name))
		for _, p := range m.Content {
			switch p.Type {
			case llm.PartText:
				n += int64(len(p.Text))
			case llm.PartImage:
				n += boundImage
			case llm.PartToolCall:
				if c := p.ToolCall; c != nil {
					n += boundPerCall + int64(len(c.ID)+len(c.Name)+len(c.Arguments))
				}
			case llm.PartToolResult:
				if r := p.ToolResult; r != nil {
					n += boundPerCall + int64(len(r.CallID)+len(r.Content))
				}
			}
		}
	}
	if len(req.Tools) > 0 {
		n += boundTools
		for _, t := range req.Tools {
			n += boundPerTool + int64(len(t.Name)+len(t.Description)+len(t.Parameters))
		}
	}
	return n
}

// EmbedInputBound returns an upper bound of the tokens of an embeddings
// request: its input's JSON length. A string has no more tokens than its
// bytes, and an array of token ids spends at least two bytes ("1,") per
// token.
func EmbedInputBound(req *llm.EmbedRequest) int64 {
	if req == nil {
		return 0
	}
	return int64(len(req.Input)) + boundReply
}

// Price is a per-token price in nano-dollars, rounded up, for worst-case
// estimates.
type Price struct {
	// Input is the most an input token may cost: the dearest of the
	// input, cached-input and cache-write prices.
	Input budget.Nanos
	// Output is the price of an output token.
	Output budget.Nanos
}

// PerToken converts a price in USD per 1,000 tokens to nano-dollars per
// token, rounding up (a price that is a whole number of nano-dollars, as
// the catalog's are, stays exact despite float rounding).
func PerToken(usdPer1K float64) budget.Nanos {
	if usdPer1K <= 0 {
		return 0
	}
	v := usdPer1K * 1e6
	if r := math.Round(v); math.Abs(v-r) <= 1e-6*math.Max(1, r) {
		return budget.Nanos(r)
	}
	return budget.Nanos(math.Ceil(v))
}

// Cost returns the most in input and out output tokens can cost at p,
// saturating at budget.MaxNanos: a max_tokens of 2^60 costs more than
// any budget holds, never a wrapped-around $0.
func (p Price) Cost(in, out int64) budget.Nanos {
	return budget.Times(in, p.Input).Plus(budget.Times(out, p.Output))
}
