package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/platform/server"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

const semanticModels = `  - {name: cached, provider: openai, upstream_model: my-model, price: {input_per_1k: 1, output_per_1k: 2}}
  - {name: embedder, provider: openai, upstream_model: text-embedding-3-small}
cache: {models: [cached], semantic: {embedding_model: embedder, threshold: 0.9}}`

// TestSemanticResponseCache: with the semantic mode on, a question worded
// differently is answered from the cache, through the embeddings model
// Junction serves; a question that means something else, asks with other
// parameters or tools, comes from another team, or asks for exact
// matches only goes to the model. A hit is a ledger record that names
// its similarity and what it saved.
func TestSemanticResponseCache(t *testing.T) {
	fake := &fakeopenai.Server{Record: true, PromptTokens: 100, CompletionTokens: 50, Embedding: fakeopenai.WordEmbedding}
	j := start(t, fake, semanticModels)
	_, a := j.createKey("a", map[string]string{"team": "alpha"})
	_, b := j.createKey("b", map[string]string{"team": "beta"})
	chat := func(key, body string, hdr ...string) http.Header {
		t.Helper()
		status, h, out := j.do("POST", "/v1/chat/completions", key, body, hdr...)
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", body, status, out)
		}
		return h
	}
	calls := func(path string) int {
		n := 0
		for _, r := range fake.Requests() {
			if strings.HasSuffix(r.Path, path) {
				n++
			}
		}
		return n
	}
	upstream := func(want int) {
		t.Helper()
		if got := calls("/chat/completions"); got != want {
			t.Fatalf("the model was asked %d times, want %d", got, want)
		}
	}
	ask := func(q string) string {
		return `{"model":"cached","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"` + q + `"}]}`
	}

	chat(a, ask("What is the capital of France?"))
	upstream(1)
	h := chat(a, ask("what's the capital of france"))
	upstream(1)
	if r := h.Get("X-Junction-Route-Reason"); r != "semantic cache hit (similarity 1.000)" {
		t.Fatalf("route reason %q", r)
	}
	if up := fake.Requests()[0]; up.Body["model"] != "text-embedding-3-small" || up.Body["input"].([]any)[0] != "What is the capital of France?" {
		t.Fatalf("embedded %s", up.Raw)
	}
	// A streamed request is answered by meaning too, as a stream.
	if _, _, out := j.do("POST", "/v1/chat/completions", a, strings.Replace(ask("Capital of France, please"), `"model"`, `"stream":true,"model"`, 1)); !strings.Contains(string(out), "data: [DONE]") {
		t.Fatalf("stream replay: %s", out)
	}
	upstream(1)

	for _, miss := range []struct {
		name, key, body string
		hdr             []string
	}{
		{"another question", a, ask("What is the capital of Germany?"), nil},
		{"another team", b, ask("what's the capital of france"), nil},
		{"another temperature", a, strings.Replace(ask("what's the capital of france"), `"model"`, `"temperature":0.7,"model"`, 1), nil},
		{"another system prompt", a, strings.Replace(ask("what's the capital of france"), "Be brief.", "Be thorough.", 1), nil},
		{"tools", a, strings.Replace(ask("what's the capital of france"), `"model"`,
			`"tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}}],"model"`, 1), nil},
		{"exact matches only", a, ask("france: the capital?"), []string{"X-Junction-Cache", "exact"}},
	} {
		before := calls("/chat/completions")
		if r := chat(miss.key, miss.body, miss.hdr...).Get("X-Junction-Route-Reason"); strings.Contains(r, "cache hit") {
			t.Errorf("%s: answered from the cache (%s)", miss.name, r)
		}
		upstream(before + 1)
	}
	// Requests with tools or exact matches only were not embedded: one
	// embedding per other request, the hit's included.
	if n := calls("/embeddings"); n != 7 {
		t.Errorf("%d embedding calls, want 7", n)
	}
	// What Germany's answer was stored under answers Germany, not France.
	h = chat(a, ask("capital of germany"))
	if r := h.Get("X-Junction-Route-Reason"); !strings.HasPrefix(r, "semantic cache hit") {
		t.Errorf("germany: %s", r)
	}
	upstream(7)

	status, _, out := j.do("POST", "/v1/chat/completions", a, ask("hi"), "X-Junction-Cache", "fuzzy")
	if e := decodeError(t, out); status != http.StatusBadRequest || !strings.Contains(e.Error.Message, "X-Junction-Cache") {
		t.Fatalf("a bad X-Junction-Cache: %d %s", status, out)
	}

	cost := wantCost(100, 0, 50, 1, 2)
	hits := 0
	for _, r := range j.records(10) {
		if !strings.HasPrefix(r.RouteReason, "semantic cache hit") {
			continue
		}
		hits++
		if r.CostUSD == nil || *r.CostUSD != 0 || r.CounterfactualUSD == nil || math.Abs(*r.CounterfactualUSD-cost) > 1e-12 || r.InputTokens != 0 {
			t.Fatalf("hit record %+v", r)
		}
	}
	if hits != 3 {
		t.Fatalf("%d semantic hits recorded, want 3", hits)
	}
}

// TestSemanticCacheNeedsAnEmbeddingsAPI: an embedding model whose provider
// has no embeddings API stops Junction at start, naming the setting.
func TestSemanticCacheNeedsAnEmbeddingsAPI(t *testing.T) {
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
server: {addr: "127.0.0.1:0", data_dir: %q}
auth: {admin_key: %q}
providers: [{name: claude, type: anthropic, base_url: "http://127.0.0.1:1", api_key: k}]
models: [{name: sonnet, provider: claude}]
cache: {models: [sonnet], semantic: {embedding_model: sonnet}}
`, t.TempDir(), adminKey)), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), `cache.semantic.embedding_model: "sonnet" has no embeddings API`) {
		t.Fatalf("err = %v", err)
	}
}

// TestSemanticCacheNeverSkipsTheInputGuardrail: a hit skips the input
// guardrail, which an exact repeat has passed but a message only close in
// meaning has not; so a guarded call is answered exactly or not at all
// from the cache, and a blocked word in a near-repeat is still blocked.
func TestSemanticCacheNeverSkipsTheInputGuardrail(t *testing.T) {
	fake := &fakeopenai.Server{Record: true, Embedding: fakeopenai.WordEmbedding}
	j := start(t, fake, `  - {name: guarded, provider: openai, upstream_model: small-v1, guardrail: support}
  - {name: embedder, provider: openai, upstream_model: text-embedding-3-small}
cache: {models: [guarded], semantic: {embedding_model: embedder, threshold: 0.9}}`+guardYAML)
	ask := func(q string) (http.Header, string) {
		status, h, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"guarded","messages":[{"role":"user","content":"`+q+`"}]}`)
		if status != http.StatusOK {
			t.Fatalf("%d %s", status, b)
		}
		return h, string(b)
	}
	const stored = "Status of falcon launch: date, timeline, budget, owner, risks, schedule"
	ask(stored)
	if h, _ := ask(stored); h.Get("X-Junction-Route-Reason") != "cache hit" {
		t.Fatalf("an exact repeat of a guarded call: %s", h.Get("X-Junction-Route-Reason"))
	}
	// 0.95 alike to the stored message, and it names the blocked project.
	h, body := ask("Status of project falcon launch: date, timeline, budget, owner, risks, schedule")
	if strings.Contains(h.Get("X-Junction-Route-Reason"), "cache hit") || !strings.Contains(body, "Sorry, I can't take that request.") {
		t.Fatalf("a near-repeat with a blocked word: %s %s", h.Get("X-Junction-Route-Reason"), body)
	}
	for _, r := range fake.Requests() {
		if strings.HasSuffix(r.Path, "/embeddings") {
			t.Fatalf("a guarded call was embedded: %s", r.Raw)
		}
	}
}
