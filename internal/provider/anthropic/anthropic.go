// Package anthropic is the outbound adapter for the Anthropic Messages API
// (POST /v1/messages). It sends canonical llm requests in Anthropic's wire
// format and reads complete responses and SSE streams back into llm types,
// mapping every failure to an *llm.Error. The wire format itself, and its
// translation, live in internal/wire/anthropicwire, shared with the inbound
// Anthropic surface.
//
// It is not an inbound surface: serving the Anthropic API to clients lives
// in internal/api/anthropic, and only hands this adapter unmodelled fields
// through llm.Request.Extra with Dialect set to anthropicwire.Dialect.
package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/junctionhq/junction/internal/provider/upstream"
	"github.com/junctionhq/junction/internal/wire/anthropicwire"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// defaultMaxTokens is sent when neither the request nor the Config sets a
// limit, because Anthropic rejects requests without max_tokens.
const defaultMaxTokens = 4096

// errorBodyLimit bounds how much of a non-2xx body is read for its message.
const errorBodyLimit = 64 << 10

// Config configures a Provider.
type Config struct {
	// Name is the provider's name from the configuration, reported in
	// errors as llm.Error.Provider; empty means "anthropic".
	Name string
	// BaseURL is the API root without the /v1 suffix, e.g.
	// https://api.anthropic.com; a trailing slash is tolerated.
	BaseURL string
	// APIKey is sent as x-api-key; empty sends no key.
	APIKey string
	// Client sends the requests; nil means upstream.NewClient(0).
	Client *http.Client
	// DefaultMaxTokens is sent as max_tokens when a request sets none,
	// since Anthropic requires it; 0 means 4096.
	DefaultMaxTokens int
}

// Provider is an llm.Provider that calls the Anthropic Messages API. It is
// safe for concurrent use.
type Provider struct {
	name      string
	url       string
	apiKey    string
	client    *http.Client
	maxTokens int
}

var _ llm.Provider = (*Provider)(nil)

// New returns a Provider for cfg. It does no I/O.
func New(cfg Config) *Provider {
	p := &Provider{
		name:      cfg.Name,
		url:       strings.TrimRight(cfg.BaseURL, "/") + "/v1/messages",
		apiKey:    cfg.APIKey,
		client:    cfg.Client,
		maxTokens: cfg.DefaultMaxTokens,
	}
	if p.name == "" {
		p.name = "anthropic"
	}
	if p.client == nil {
		p.client = upstream.NewClient(0)
	}
	if p.maxTokens <= 0 {
		p.maxTokens = defaultMaxTokens
	}
	return p
}

// Chat sends req and waits for the complete response.
func (p *Provider) Chat(ctx context.Context, req *llm.Request) (*llm.Response, error) {
	resp, err := p.send(ctx, req, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, upstream.TransportError(ctx, p.name, err)
	}
	r, err := anthropicwire.DecodeResponse(body)
	if err != nil {
		return nil, upstream.Garbage(p.name, err)
	}
	return r, nil
}

// ChatStream sends req with stream set and returns the response as a
// stream of events. An upstream that refuses the request fails here; one
// that fails after accepting it fails from the stream's Recv.
func (p *Provider) ChatStream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	resp, err := p.send(ctx, req, true)
	if err != nil {
		return nil, err
	}
	return newStream(ctx, p.name, resp.Body), nil
}

// send posts req and returns a 2xx response whose body the caller must
// close; any other answer is returned as an error.
func (p *Provider) send(ctx context.Context, req *llm.Request, stream bool) (*http.Response, error) {
	body, err := anthropicwire.EncodeRequest(req, p.maxTokens, stream)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return nil, upstream.TransportError(ctx, p.name, err)
	}
	// Canonical keys set directly: no per-request canonicalisation.
	h := hreq.Header
	if p.apiKey != "" {
		h["X-Api-Key"] = []string{p.apiKey}
	}
	h["Anthropic-Version"] = []string{anthropicwire.Version}
	h["Content-Type"] = []string{"application/json"}
	resp, err := p.client.Do(hreq)
	if err != nil {
		return nil, upstream.TransportError(ctx, p.name, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, p.statusError(resp)
	}
	return resp, nil
}

// statusError reads an Anthropic error body,
// {"type":"error","error":{"type":...,"message":...}}, and maps it.
func (p *Provider) statusError(resp *http.Response) error {
	var w anthropicwire.ErrorResponse
	if b, err := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit)); err == nil {
		// An unreadable or foreign body still maps by status alone.
		_ = json.Unmarshal(b, &w)
	}
	return upstream.StatusError(p.name, resp.StatusCode, resp.Header, w.Error.Message, w.Error.Type)
}
