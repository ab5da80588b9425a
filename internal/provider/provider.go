// Package provider builds the configured provider adapters. The adapters
// themselves live in the subpackages, one per upstream wire format.
package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/provider/anthropic"
	"github.com/junctionhq/junction/internal/provider/azure"
	"github.com/junctionhq/junction/internal/provider/bedrock"
	"github.com/junctionhq/junction/internal/provider/gemini"
	"github.com/junctionhq/junction/internal/provider/openai"
	"github.com/junctionhq/junction/internal/provider/upstream"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// New returns the adapter for one configured provider. defaultTimeout
// applies when the provider sets none.
func New(ctx context.Context, p config.Provider, defaultTimeout time.Duration) (llm.Provider, error) {
	timeout := p.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	opts := []upstream.Option{upstream.Traced()} // upstreams continue the request's trace
	if p.Type == config.TypeOpenAI {
		// The hot path: OpenAI-compatible servers are often on plain
		// HTTP (vLLM, llama.cpp), where the lean transport carries calls.
		opts = append(opts, upstream.Lean())
	}
	client := upstream.NewClient(timeout, opts...)
	switch p.Type {
	case config.TypeOpenAI:
		return openai.New(openai.Config{Name: p.Name, BaseURL: p.BaseURL, APIKey: p.APIKey, Client: client,
			PassThrough: p.PassesThrough()}), nil
	case config.TypeAnthropic:
		return anthropic.New(anthropic.Config{Name: p.Name, BaseURL: p.BaseURL, APIKey: p.APIKey, Client: client}), nil
	case config.TypeBedrock:
		return bedrock.New(ctx, bedrock.Config{Name: p.Name, Region: p.Region, Endpoint: p.Endpoint, HTTPClient: client})
	case config.TypeGemini:
		return gemini.New(gemini.Config{Name: p.Name, BaseURL: p.BaseURL, APIKey: p.APIKey, Client: client}), nil
	case config.TypeAzure:
		return azure.New(azure.Config{Name: p.Name, Endpoint: p.BaseURL, APIVersion: p.APIVersion, APIKey: p.APIKey,
			Bearer: p.Auth == "bearer", Client: client}), nil
	}
	return nil, fmt.Errorf("provider %s: unknown type %q", p.Name, p.Type)
}
