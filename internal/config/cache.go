package config

import (
	"fmt"
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
}

func (c Cache) validate(names map[string]bool) []string {
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
	return p
}
