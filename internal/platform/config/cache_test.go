package config

import (
	"strings"
	"testing"
	"time"
)

const cacheModels = `
providers: [{name: p, type: openai, base_url: "http://127.0.0.1:1/v1"}]
models:
  - {name: chat, provider: p}
  - {name: embed, provider: p}
`

// TestCacheSemanticDefaultsAndChecks: the semantic mode gets its
// defaults, and each mistake is reported with its path.
func TestCacheSemanticDefaultsAndChecks(t *testing.T) {
	cfg, err := Parse([]byte(cacheModels+"cache: {models: [chat], semantic: {embedding_model: embed}}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Cache.Semantic; s.Threshold != 0.95 || s.MaxEntries != 1024 || s.Timeout != 2*time.Second {
		t.Fatalf("defaults %+v", s)
	}
	_, err = Parse([]byte(cacheModels+`cache:
  models: [chat]
  semantic: {embedding_model: ghost, threshold: 1.5, models: [embed], max_entries: -1}
`), env(nil))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{`cache.semantic.embedding_model: "ghost" is not a configured model`, "cache.semantic.threshold: must be in (0, 1]",
		`cache.semantic.models[0]: "embed" is not in cache.models`, "cache.semantic.max_entries"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	_, err = Parse([]byte(cacheModels+"cache: {semantic: {embedding_model: embed}}\n"), env(nil))
	if err == nil || !strings.Contains(err.Error(), "cache.semantic: needs cache.models") {
		t.Errorf("semantic without cached models: %v", err)
	}
}
