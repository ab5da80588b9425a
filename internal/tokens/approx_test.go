package tokens

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// approxSample is a small, mixed sample on which the package doc's
// error figures are measured.
var approxSample = []struct{ kind, text string }{
	{"prose", `The history of the printing press begins in the fifteenth century, when Johannes Gutenberg combined ` +
		`movable metal type, oil-based inks and a wooden press adapted from those used to make wine. Within fifty years, ` +
		`presses operated in more than two hundred cities across Europe, and the cost of a book fell so far that ` +
		`ordinary merchants could afford them. Historians still argue about how much the press caused the Reformation, ` +
		`the scientific revolution and the rise of vernacular literature, but few doubt that it changed who could read, ` +
		`what they read, and how quickly new ideas spread. It's worth remembering that most early printed books were ` +
		`religious texts, almanacs and grammars rather than works of philosophy.`},
	{"question", `What is the capital of Australia, and why isn't it Sydney?`},
	{"go", "```go\n" + `func (c *Cache) Get(key string) (value []byte, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.items[key]
	if !ok || time.Now().After(e.expires) {
		return nil, false
	}
	c.hits.Add(1)
	return e.value, true
}

func (c *Cache) Set(key string, value []byte, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.items) >= c.max {
		c.evictOldest()
	}
	c.items[key] = entry{value: value, expires: time.Now().Add(ttl)}
}` + "\n```"},
	{"python", `import numpy as np

def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)

for i, row in enumerate(np.random.rand(4, 3)):
    print(f"{i}: {softmax(row).round(3)}")
`},
	{"maths", `Prove that for every integer n >= 1, \sum_{k=1}^{n} k^3 = \left(\frac{n(n+1)}{2}\right)^2. ` +
		`Then compute \int_0^{\pi} x \sin(x)\,dx and show that the derivative of f(x) = x^2 e^{-x} vanishes at x = 0 and x = 2. ` +
		`Finally solve 3x^2 - 12x + 9 = 0 and check that 17 * 23 = 391.`},
	{"json", `{"id":"chatcmpl-9x8y7z","object":"chat.completion","created":1718000000,"model":"gpt-4o-2024-08-06",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Canberra was chosen as a compromise between Sydney and Melbourne."},` +
		`"finish_reason":"stop"}],"usage":{"prompt_tokens":18,"completion_tokens":14,"total_tokens":32}}`},
	{"japanese", `東京は日本の首都であり、世界で最も人口の多い都市圏の一つです。江戸時代には徳川幕府の本拠地として栄え、` +
		`明治維新の後に天皇が京都から移りました。現在では金融、文化、技術の中心地として知られています。`},
	{"russian", `Москва — столица России и крупнейший по численности населения город страны. ` +
		`Город расположен на реке Москве и является важным транспортным узлом.`},
}

// TestApproximationSample measures the approximations on approxSample
// and holds them to the bounds the package doc states.
func TestApproximationSample(t *testing.T) {
	var totCl, totO int
	t.Logf("%-9s %6s %6s %7s %7s %7s", "kind", "cl100k", "o200k", "o/cl", "chars/4", "Estimate")
	for _, s := range approxSample {
		cl := Count("gpt-4", s.text)
		o := Count("gpt-4o", s.text)
		totCl += cl
		totO += o
		chars := float64(len([]rune(s.text))) / 4
		est := Estimate(s.text)
		t.Logf("%-9s %6d %6d %+6.1f%% %+6.1f%% %+6.1f%%", s.kind, cl, o, pct(o, cl), pct(int(math.Round(chars)), cl), pct(est, cl))
		if e := pct(est, cl); math.Abs(e) > 15 {
			t.Errorf("%s: Estimate = %d, cl100k = %d (%+.1f%%), outside ±15%%", s.kind, est, cl, e)
		}
		if got, want := Count("claude-3-5-sonnet", s.text), int(math.Ceil(1.2*float64(cl))); got != want {
			t.Errorf("%s: claude count = %d, want ceil(1.2 × %d) = %d", s.kind, got, cl, want)
		}
		for _, m := range []string{"llama-3.1-8b", "mistral-large", "amazon.nova-lite-v1:0", "claude-opus-4"} {
			if n := Count(m, s.text); n < cl || float64(n) > 1.21*float64(cl)+1 {
				t.Errorf("%s: Count(%s) = %d, outside [1, 1.2] × cl100k %d", s.kind, m, n, cl)
			}
		}
	}
	t.Logf("total: cl100k %d, o200k %d (%+.1f%%)", totCl, totO, pct(totO, totCl))
}

func pct(got, ref int) float64 { return 100 * (float64(got) - float64(ref)) / float64(ref) }

func BenchmarkEstimate(b *testing.B) {
	prompt := samplePrompt(4096)
	b.SetBytes(int64(len(prompt)))
	for b.Loop() {
		Estimate(prompt)
	}
}

func ExampleCount() {
	fmt.Println(Count("gpt-4o", "tiktoken is great!"), Count("gpt-4", "hello world"))
	// Output: 6 2
}

func TestEstimateEdges(t *testing.T) {
	if Estimate("") != 0 {
		t.Error("empty text")
	}
	if n := Estimate(strings.Repeat("word ", 1000)); n < 900 || n > 1100 {
		t.Errorf("1000 words = %d", n)
	}
}
