package server

import (
	"github.com/redis/go-redis/v9"

	"github.com/junctionhq/junction/internal/config"
	"github.com/junctionhq/junction/internal/respcache"
)

// responseCache builds the response cache the configuration asks for:
// nil when no model or route opted in, in Redis when a URL is given (the
// configuration has checked it), in memory otherwise.
func responseCache(cfg config.Cache) *respcache.Cache {
	if len(cfg.Models) == 0 {
		return nil
	}
	c := &respcache.Cache{TTL: cfg.TTL, Models: cfg.Models, Scope: cfg.Scope, Store: &respcache.Memory{MaxBytes: cfg.MaxBytes}}
	if cfg.RedisURL != "" {
		opts, _ := redis.ParseURL(cfg.RedisURL)
		c.Store = &respcache.Redis{Client: redis.NewClient(opts), Prefix: "junction:cache:"}
	}
	return c
}
