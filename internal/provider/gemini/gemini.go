// Package gemini is the provider adapter for Google's Gemini API:
// generateContent and streamGenerateContent (SSE, alt=sse) with the API key
// in x-goog-api-key. Tools become functionDeclarations and function calls
// come back as tool calls; system messages become systemInstruction;
// images go inline; usageMetadata is the usage; safety blocks (a blocked
// prompt, or a candidate finished for SAFETY and the like) are
// content-filter refusals.
package gemini

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/junctionhq/junction/internal/provider/upstream"
	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/sse"
)

// Config configures a Provider.
type Config struct {
	// Name is the provider's name in Junction's config, used in errors.
	Name string
	// BaseURL is the API root with its version,
	// https://generativelanguage.googleapis.com/v1beta by default.
	BaseURL string
	// APIKey is sent in x-goog-api-key.
	APIKey string
	// Client is the HTTP client; nil means upstream.NewClient(0).
	Client *http.Client
}

// Provider calls the Gemini API.
type Provider struct {
	name, base, key string
	client          *http.Client
}

// New returns a Provider for cfg.
func New(cfg Config) *Provider {
	p := &Provider{name: cfg.Name, base: strings.TrimRight(cfg.BaseURL, "/"), key: cfg.APIKey, client: cfg.Client}
	if p.client == nil {
		p.client = upstream.NewClient(0)
	}
	return p
}

// post sends a request for model's method and returns a 2xx answer; others
// become *llm.Error from Google's error body.
func (p *Provider) post(ctx context.Context, model, method string, req *llm.Request) (*http.Response, error) {
	body, err := encodeRequest(req)
	if err != nil {
		return nil, err
	}
	u := p.base + "/models/" + url.PathEscape(strings.TrimPrefix(model, "models/")) + ":" + method
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if p.key != "" {
		hr.Header.Set("x-goog-api-key", p.key)
	}
	resp, err := p.client.Do(hr)
	if err != nil {
		return nil, upstream.TransportError(ctx, p.name, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb errorResponse
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &eb) == nil && eb.Error.Message != "" {
		msg = eb.Error.Message
	} else if len(msg) > 512 {
		msg = ""
	}
	return nil, upstream.StatusError(p.name, resp.StatusCode, resp.Header, msg, eb.Error.Status)
}

// Chat implements llm.Provider.
func (p *Provider) Chat(ctx context.Context, req *llm.Request) (*llm.Response, error) {
	resp, err := p.post(ctx, req.Model, "generateContent", req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, upstream.TransportError(ctx, p.name, err)
	}
	out, err := decodeResponse(b)
	if err != nil {
		return nil, upstream.Garbage(p.name, err)
	}
	return out, nil
}

// ChatStream implements llm.Provider.
func (p *Provider) ChatStream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	resp, err := p.post(ctx, req.Model, "streamGenerateContent?alt=sse", req)
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		return nil, upstream.Garbage(p.name, errors.New("expected text/event-stream, got "+ct))
	}
	return &stream{p: p, ctx: ctx, body: resp.Body, r: sse.NewReader(resp.Body)}, nil
}
