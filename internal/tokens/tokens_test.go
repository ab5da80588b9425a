package tokens

import (
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/tiktoken-go/tokenizer"
)

// Counts and token ids published in OpenAI's cookbook "How to count
// tokens with tiktoken" (examples/How_to_count_tokens_with_tiktoken.ipynb).
func TestCookbookEncodings(t *testing.T) {
	for _, tc := range []struct {
		e    *encoding
		text string
		ids  []uint32
	}{
		{o200k, "tiktoken is great!", []uint32{83, 8251, 2488, 382, 2212, 0}},
		{cl100k, "antidisestablishmentarianism", []uint32{519, 85342, 34500, 479, 8997, 2191}},
		{o200k, "antidisestablishmentarianism", []uint32{493, 129901, 376, 160388, 21203, 2367}},
		{cl100k, "2 + 2 = 4", []uint32{17, 489, 220, 17, 284, 220, 19}},
		{o200k, "2 + 2 = 4", []uint32{17, 659, 220, 17, 314, 220, 19}},
		{cl100k, "お誕生日おめでとう", []uint32{33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699}},
		{o200k, "お誕生日おめでとう", []uint32{8930, 9697, 243, 128225, 8930, 17693, 4344, 48669}},
	} {
		if err := tc.e.load(); err != nil {
			t.Fatal(err)
		}
		if got := tc.e.encode(tc.text); !slices.Equal(got, tc.ids) {
			t.Errorf("%s %q = %v, want %v", tc.e.name, tc.text, got, tc.ids)
		}
	}
}

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		model, text string
		want        int
	}{
		{"gpt-4", "hello world", 2},
		{"gpt-4o", "hello world", 2},
		{"gpt-3.5-turbo", "", 0},
		{"gpt-4o-mini", "tiktoken is great!", 6},
		{"openai/gpt-4o-2024-08-06", "tiktoken is great!", 6},
		{"gpt-4-turbo", "antidisestablishmentarianism", 6},
		{"text-embedding-3-small", "2 + 2 = 4", 7},
		{"gpt-5", "お誕生日おめでとう", 8},
		{"o3-mini", "お誕生日おめでとう", 8},
		{"gpt-3.5-turbo-0125", "お誕生日おめでとう", 9},
	} {
		if got := Count(tc.model, tc.text); got != tc.want {
			t.Errorf("Count(%q, %q) = %d, want %d", tc.model, tc.text, got, tc.want)
		}
	}
}

func TestFamilies(t *testing.T) {
	for _, tc := range []struct {
		model  string
		want   family
		exact  bool
		factor float64
	}{
		{"gpt-4o", famO200k, true, 1},
		{"GPT-4O-MINI", famO200k, true, 1},
		{"chatgpt-4o-latest", famO200k, true, 1},
		{"gpt-4.1-nano", famO200k, true, 1},
		{"gpt-5-mini", famO200k, true, 1},
		{"o1", famO200k, true, 1},
		{"o4-mini", famO200k, true, 1},
		{"ft:gpt-4o-mini-2024-07-18:acme::abc", famO200k, true, 1},
		{"openai.gpt-oss-120b-1:0", famO200k, true, 1},
		{"azure/gpt-35-turbo", famCl100k, true, 1},
		{"gpt-4-0613", famCl100k, true, 1},
		{"text-embedding-ada-002", famCl100k, true, 1},
		{"claude-sonnet-4-20250514", famClaude, false, 1.2},
		{"us.anthropic.claude-3-5-haiku-20241022-v1:0", famClaude, false, 1.2},
		{"meta.llama3-1-70b-instruct-v1:0", famTiktok, false, 1},
		{"meta-llama/Llama-2-7b-chat-hf", famSP32K, false, 1.2},
		{"Qwen/Qwen2.5-7B-Instruct", famTiktok, false, 1},
		{"mistral.mistral-large-2402-v1:0", famMistral, false, 1.1},
		{"open-mixtral-8x7b", famMistral, false, 1.1},
		{"amazon.nova-pro-v1:0", famOther, false, 1.1},
		{"something-new", famOther, false, 1.1},
	} {
		f := familyOf(tc.model)
		if f != tc.want || f.exact != tc.exact || f.factor != tc.factor || Exact(tc.model) != tc.exact {
			t.Errorf("familyOf(%q) = %+v, want %+v", tc.model, f, tc.want)
		}
	}
}

// The cookbook's chat example: 129 prompt tokens on gpt-3.5-turbo and
// gpt-4 (cl100k_base), 124 on gpt-4o and gpt-4o-mini (o200k_base), as
// counted by the OpenAI API.
func TestRequestCookbookMessages(t *testing.T) {
	msg := func(role llm.Role, name, text string) llm.Message {
		return llm.Message{Role: role, Name: name, Content: []llm.Part{{Type: llm.PartText, Text: text}}}
	}
	req := &llm.Request{Messages: []llm.Message{
		msg(llm.RoleSystem, "", "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."),
		msg(llm.RoleSystem, "example_user", "New synergies will help drive top-line growth."),
		msg(llm.RoleSystem, "example_assistant", "Things working well together will increase revenue."),
		msg(llm.RoleSystem, "example_user", "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."),
		msg(llm.RoleSystem, "example_assistant", "Let's talk later when we're less busy about how to do better."),
		msg(llm.RoleUser, "", "This late pivot means we don't have time to boil the ocean for the client deliverable."),
	}}
	for model, want := range map[string]int{"gpt-3.5-turbo": 129, "gpt-4-0613": 129, "gpt-4": 129, "gpt-4o": 124, "gpt-4o-mini": 124} {
		if got := Request(model, req); got != want {
			t.Errorf("Request(%s) = %d, want %d", model, got, want)
		}
	}
}

// The cookbook's tools example: 105 prompt tokens on gpt-3.5-turbo and
// gpt-4, 101 on gpt-4o and gpt-4o-mini, as counted by the OpenAI API.
func TestRequestCookbookTools(t *testing.T) {
	req := &llm.Request{
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: []llm.Part{{Type: llm.PartText, Text: "You are a helpful assistant that can answer to questions about the weather."}}},
			{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "What's the weather like in San Francisco?"}}},
		},
		Tools: []llm.Tool{{
			Name:        "get_current_weather",
			Description: "Get the current weather in a given location",
			Parameters: json.RawMessage(`{
				"type": "object",
				"properties": {
					"location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
					"unit": {"type": "string", "description": "The unit of temperature to return", "enum": ["celsius", "fahrenheit"]}
				},
				"required": ["location"]
			}`),
		}},
	}
	for model, want := range map[string]int{"gpt-3.5-turbo": 105, "gpt-4": 105, "gpt-4o": 101, "gpt-4o-mini": 101} {
		if got := Request(model, req); got != want {
			t.Errorf("Request(%s) = %d, want %d", model, got, want)
		}
	}
}

func TestRequestParts(t *testing.T) {
	base := &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hello world"}}}}}
	if got := Request("gpt-4o", base); got != 3+3+1+2 {
		t.Fatalf("one message = %d, want 9", got)
	}
	with := func(p llm.Part) int {
		r := *base
		r.Messages = []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{base.Messages[0].Content[0], p}}}
		return Request("gpt-4o", &r) - 9
	}
	if got := with(llm.Part{Type: llm.PartImage, Image: &llm.Image{URL: "https://x/y.png", Detail: "low"}}); got != 85 {
		t.Errorf("low-detail image = %d, want 85", got)
	}
	if got := with(llm.Part{Type: llm.PartImage, Image: &llm.Image{URL: "https://x/y.png"}}); got != 765 {
		t.Errorf("image of unknown size = %d, want 765", got)
	}
	// OpenAI's documented examples: 1024×1024 high detail is 765 tokens;
	// 2048×4096 scales to 768×1536, 6 tiles, 1105 tokens.
	if got := with(llm.Part{Type: llm.PartImage, Image: &llm.Image{Data: pngHeader(1024, 1024)}}); got != 765 {
		t.Errorf("1024×1024 = %d, want 765", got)
	}
	if got := with(llm.Part{Type: llm.PartImage, Image: &llm.Image{Data: pngHeader(512, 512)}}); got != 255 {
		t.Errorf("512×512 = %d, want 255 (one tile)", got)
	}
	if got := with(llm.Part{Type: llm.PartImage, Image: &llm.Image{Data: pngHeader(2048, 4096)}}); got != 1105 {
		t.Errorf("2048×4096 = %d, want 1105", got)
	}
	if got := with(llm.Part{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "c1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}); got != 3+Count("gpt-4o", "get_weather")+Count("gpt-4o", `{"city":"Paris"}`) {
		t.Errorf("tool call = %d", got)
	}
	if got := with(llm.Part{Type: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: "c1", Content: "sunny, 21 C"}}); got != Count("gpt-4o", "sunny, 21 C") {
		t.Errorf("tool result = %d", got)
	}
	// Claude: 1000×1000 px is 1334 tokens (width × height / 750), the
	// example in Anthropic's vision guide (rounded up).
	claude := &llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartImage, Image: &llm.Image{Data: pngHeader(1000, 1000)}}}}}}
	if got, text := Request("claude-sonnet-4", claude), 9; got != 1334+text { // ceil(7 × 1.2)
		t.Errorf("claude 1000×1000 image = %d, want %d", got-text, 1334)
	}
	if MaxOutput(base) != 0 || MaxOutput(nil) != 0 || Request("gpt-4o", nil) != 0 {
		t.Error("nil and unset cases should be 0")
	}
	n := 512
	if MaxOutput(&llm.Request{MaxTokens: &n}) != 512 {
		t.Error("MaxOutput")
	}
}

// pngHeader returns the first bytes of a PNG of the given size, enough
// for image.DecodeConfig.
func pngHeader(w, h int) []byte {
	b := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
	b = binary.BigEndian.AppendUint32(b, uint32(w))
	b = binary.BigEndian.AppendUint32(b, uint32(h))
	b = append(b, 8, 6, 0, 0, 0) // depth, colour type RGBA, compression, filter, interlace
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[12:]))
}

func TestConcurrent(t *testing.T) {
	text := strings.Repeat("Concurrent counting must agree. ", 50)
	want := Count("gpt-4o", text)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			model := []string{"gpt-4o", "gpt-4", "claude-3-haiku"}[i%3]
			for range 20 {
				if model == "gpt-4o" && Count(model, text) != want {
					t.Error("concurrent count differs")
				}
				Count(model, text)
			}
		})
	}
	wg.Wait()
}

func BenchmarkCount(b *testing.B) {
	prompt := samplePrompt(4096)
	for _, model := range []string{"gpt-4", "gpt-4o", "claude-sonnet-4"} {
		Count(model, "warm")
		b.Run(model, func(b *testing.B) {
			b.SetBytes(int64(len(prompt)))
			b.ReportAllocs()
			for b.Loop() {
				Count(model, prompt)
			}
		})
	}
	// The library's own Count, for comparison.
	for _, enc := range []tokenizer.Encoding{tokenizer.Cl100kBase, tokenizer.O200kBase} {
		c, err := tokenizer.Get(enc)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("library/"+string(enc), func(b *testing.B) {
			b.SetBytes(int64(len(prompt)))
			b.ReportAllocs()
			for b.Loop() {
				c.Count(prompt)
			}
		})
	}
}

// samplePrompt returns n bytes of a realistic prompt: instructions,
// prose and a code block.
func samplePrompt(n int) string {
	const chunk = `You are reviewing a pull request for a payments service. Summarize what the change does, ` +
		`point out any bugs, and suggest tests. Keep the answer under 300 words.

The change adds retry logic to the charge endpoint:

` + "```go" + `
func (s *Service) Charge(ctx context.Context, req ChargeRequest) (*Receipt, error) {
	for attempt := 0; attempt < 3; attempt++ {
		r, err := s.gateway.Charge(ctx, req.Amount, req.Currency)
		if err == nil {
			return r, nil
		}
		time.Sleep(time.Duration(attempt*100) * time.Millisecond)
	}
	return nil, fmt.Errorf("charge failed after 3 attempts")
}
` + "```" + `

The author says: "We've seen ~2% of charges fail with transient 503s; retrying should fix it." `
	s := strings.Repeat(chunk, n/len(chunk)+1)
	return s[:n]
}
