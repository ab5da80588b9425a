package governance

import (
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/governance/budget"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// exactCost is in × input + out × output in arbitrary precision.
func exactCost(in, out int64, p Price) *big.Int {
	c := new(big.Int).Mul(big.NewInt(max(in, 0)), big.NewInt(int64(p.Input)))
	return c.Add(c, new(big.Int).Mul(big.NewInt(max(out, 0)), big.NewInt(int64(p.Output))))
}

// FuzzWorstCase checks the worst-case estimator against exact
// arithmetic: the cost is exact while it fits a Nanos and saturates at
// budget.MaxNanos beyond, never wrapping to a smaller amount; more
// output never costs less; and a budget of any size refuses a saturated
// worst case. The seeds run in every `go test`; `-fuzz FuzzWorstCase`
// explores.
func FuzzWorstCase(f *testing.F) {
	f.Add(int64(18), int64(1)<<60, int64(1_000_000), int64(2_000_000)) // the reported escape
	f.Add(int64(0), int64(math.MaxInt64), int64(1), int64(1))
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64))
	f.Add(int64(4096), int64(16384), int64(150), int64(600))
	f.Add(int64(1)<<32, int64(1)<<31, int64(1)<<31, int64(1)<<32)
	f.Add(int64(-5), int64(7), int64(3), int64(-1))
	f.Fuzz(func(t *testing.T, in, out, pin, pout int64) {
		p := Price{Input: budget.Nanos(max(pin, 0)), Output: budget.Nanos(max(pout, 0))}
		got := p.Cost(in, out)
		want := exactCost(in, out, p)
		if want.IsInt64() {
			if int64(got) != want.Int64() {
				t.Fatalf("Cost(%d, %d) at %+v = %d, want %s", in, out, p, got, want)
			}
		} else if got != budget.MaxNanos {
			t.Fatalf("Cost(%d, %d) at %+v = %d, want it saturated (exact %s)", in, out, p, got, want)
		}
		if out < math.MaxInt64 && p.Cost(in, out+1) < got {
			t.Fatalf("one more output token costs less: %d < %d", p.Cost(in, out+1), got)
		}
		// A budget with 1 Nanos spent admits the worst case exactly when
		// it fits what is left.
		m := budget.NewMemory(time.Now)
		limit := budget.Nanos(max(pin, 1))
		bs := []budget.Budget{{Scope: "team:x", Period: budget.Daily, Limit: limit}}
		if _, res, err := m.Admit(t.Context(), bs, 1); err != nil || res == nil {
			t.Fatalf("admitting 1 Nanos under %d: %v", limit, err)
		} else if _, err := m.Settle(t.Context(), res, 1); err != nil {
			t.Fatal(err)
		}
		d, _, err := m.Admit(t.Context(), bs, got)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != (got <= limit-1) {
			t.Fatalf("a %d-Nanos budget with 1 spent decided %v for a worst case of %d", limit, d.Allowed, got)
		}
	})
}

// FuzzInputBound checks that the prompt bound is never below the text's
// byte count (every tokenizer spends at least a byte a token) and never
// negative, whatever the text.
func FuzzInputBound(f *testing.F) {
	f.Add("hi", "a tool call", "")
	f.Add("", "", "{\"type\":\"object\"}")
	f.Add("日本語のテキスト🙂🙂", "1,2,3,4,5,6", "base64+/==")
	f.Fuzz(func(t *testing.T, text, args, params string) {
		req := &llm.Request{
			Messages: []llm.Message{{Role: "user", Content: []llm.Part{{Type: llm.PartText, Text: text}}},
				{Role: "assistant", Content: []llm.Part{{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "c", Name: "f", Arguments: args}}}}},
			Tools: []llm.Tool{{Name: "f", Parameters: []byte(params)}},
		}
		if n := InputBound(req); n < int64(len(text)+len(args)+len(params)) {
			t.Fatalf("bound %d below the %d bytes of text", n, len(text)+len(args)+len(params))
		}
	})
}
