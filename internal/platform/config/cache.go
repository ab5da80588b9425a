package config

import (
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cache configures the response cache (see docs/caching.md). It is off
// unless Models names a model or route.
type Cache struct {
	// Models are the model and route names whose answers are cached.
	Models []string `yaml:"models"`
	// TTL is how long an answer is served from the cache (default 1h).
	TTL time.Duration `yaml:"ttl"`
	// MaxBytes bounds the in-memory cache (default 64 MiB).
	MaxBytes int64 `yaml:"max_bytes"`
	// RedisURL keeps the cache in Redis, shared by every replica.
	RedisURL string `yaml:"redis_url"`
	// Scope is who shares answers: team (default: a key's team, or the
	// key alone when it has none), key, or global.
	Scope string `yaml:"scope"`
	// Semantic, when set, also answers a request whose last message is
	// close in meaning to one already answered.
	Semantic *CacheSemantic `yaml:"semantic"`
}

// CacheSemantic configures the response cache's semantic mode (see
// docs/caching.md#semantic-mode).
type CacheSemantic struct {
	// EmbeddingModel is a configured model with an embeddings API.
	EmbeddingModel string `yaml:"embedding_model"`
	// Threshold is the least cosine similarity that is a hit (default
	// 0.95).
	Threshold float64 `yaml:"threshold"`
	// Models are the cached models and routes answered by meaning
	// (default: all of cache.models).
	Models []string `yaml:"models"`
	// MaxEntries bounds the in-memory index of messages (default 1024).
	MaxEntries int `yaml:"max_entries"`
	// Timeout bounds an embedding call (default 2s).
	Timeout time.Duration `yaml:"timeout"`
}

// applyDefaults fills in the cache's defaults.
func (c *Cache) applyDefaults() {
	if c.TTL == 0 {
		c.TTL = time.Hour
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 64 << 20
	}
	if c.Scope == "" {
		c.Scope = "team"
	}
	if s := c.Semantic; s != nil {
		if s.Threshold == 0 {
			s.Threshold = 0.95
		}
		if s.MaxEntries == 0 {
			s.MaxEntries = 1024
		}
		if s.Timeout == 0 {
			s.Timeout = 2 * time.Second
		}
	}
}

// validate reports the cache's problems: names are the models and routes
// a client may ask for, models the configured models.
func (c Cache) validate(names, models map[string]bool) []string {
	var p []string
	if c.TTL < 0 || c.MaxBytes < 0 {
		p = append(p, "cache.ttl, cache.max_bytes: must not be negative")
	}
	switch c.Scope {
	case "", "team", "key", "global":
	default:
		p = append(p, fmt.Sprintf("cache.scope: %q is not one of team, key, global", c.Scope))
	}
	if c.RedisURL != "" {
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			p = append(p, fmt.Sprintf("cache.redis_url: %v", err))
		}
	}
	for i, m := range c.Models {
		if !names[m] {
			p = append(p, fmt.Sprintf("cache.models[%d]: %q is not a configured model or route", i, m))
		}
	}
	if s := c.Semantic; s != nil {
		if !models[s.EmbeddingModel] {
			p = append(p, fmt.Sprintf("cache.semantic.embedding_model: %q is not a configured model (name the embeddings model that compares messages)", s.EmbeddingModel))
		}
		if s.Threshold <= 0 || s.Threshold > 1 {
			p = append(p, "cache.semantic.threshold: must be in (0, 1]")
		}
		if s.MaxEntries < 0 || s.Timeout < 0 {
			p = append(p, "cache.semantic.max_entries, cache.semantic.timeout: must not be negative")
		}
		if len(c.Models) == 0 {
			p = append(p, "cache.semantic: needs cache.models, the models and routes whose answers are cached")
		}
		for i, m := range s.Models {
			if !slices.Contains(c.Models, m) {
				p = append(p, fmt.Sprintf("cache.semantic.models[%d]: %q is not in cache.models", i, m))
			}
		}
	}
	return p
}
