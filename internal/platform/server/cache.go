package server

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/promptroute"
	"github.com/junctionhq/junction/internal/respcache"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// responseCache builds the response cache the configuration asks for:
// nil when no model or route opted in, in Redis when a URL is given (the
// configuration has checked it), in memory otherwise; with its semantic
// mode embedding through a model Junction serves, which must have an
// embeddings API.
func (s *Server) responseCache(cfg config.Cache) (*respcache.Cache, error) {
	if len(cfg.Models) == 0 {
		return nil, nil
	}
	c := &respcache.Cache{TTL: cfg.TTL, Models: cfg.Models, Scope: cfg.Scope, Store: &respcache.Memory{MaxBytes: cfg.MaxBytes}}
	if cfg.RedisURL != "" {
		opts, _ := redis.ParseURL(cfg.RedisURL)
		c.Store = &respcache.Redis{Client: redis.NewClient(opts), Prefix: "junction:cache:"}
	}
	if sc := cfg.Semantic; sc != nil {
		model := sc.EmbeddingModel
		if d := s.router.Deployment(model); d == nil {
			return nil, fmt.Errorf("cache.semantic.embedding_model: %q is not configured", model)
		} else if _, ok := d.Upstream.(llm.Embedder); !ok {
			return nil, fmt.Errorf("cache.semantic.embedding_model: %q has no embeddings API (its provider is %s)", model, d.Provider)
		}
		c.Semantic = &respcache.Semantic{Threshold: sc.Threshold, Models: sc.Models, MaxEntries: sc.MaxEntries, Timeout: sc.Timeout,
			Embed: func(ctx context.Context, texts []string) ([][]float32, error) { return s.embed(ctx, model, texts) }}
	}
	return c, nil
}

// embed computes embeddings with model, a configured model whose provider
// has an embeddings API, looked up at each call so that it follows a
// reload.
func (s *Server) embed(ctx context.Context, model string, texts []string) ([][]float32, error) {
	d := s.router.Deployment(model)
	if d == nil {
		return nil, fmt.Errorf("embedding model %q is not configured", model)
	}
	e, ok := d.Upstream.(llm.Embedder)
	if !ok {
		return nil, fmt.Errorf("model %q has no embeddings API", model)
	}
	return promptroute.EmbedWith(e, d.UpstreamModel)(ctx, texts)
}
