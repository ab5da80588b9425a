// Package openai is the provider adapter for OpenAI and every server that
// speaks OpenAI's chat-completions API (vLLM, llama.cpp, Ollama, TGI,
// Together, Groq, Mistral...): only the base URL and key differ.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/junctionhq/junction/internal/provider/upstream"
	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/openaiwire"
	"github.com/junctionhq/junction/internal/wire/sse"
)

// Config configures a Provider.
type Config struct {
	// Name is the provider's name in Junction's config, used in errors.
	Name string
	// BaseURL is the API root including its version path, e.g.
	// https://api.openai.com/v1 or http://127.0.0.1:8000/v1.
	BaseURL string
	// APIKey is sent as a bearer token when set.
	APIKey string
	// Client is the HTTP client; nil means upstream.NewClient(0).
	Client *http.Client
	// URL, when set, is the URL of an operation ("chat/completions",
	// "embeddings") for an upstream model, in place of BaseURL/op: Azure
	// OpenAI names the deployment in the path.
	URL func(op, model string) string
	// AuthHeader, when set, carries APIKey as it is instead of
	// "Authorization: Bearer": Azure OpenAI's api-key header.
	AuthHeader string
	// PassThrough forwards a request's Raw body patched in place
	// (openaiwire.PatchChatRequest) and reads answers and stream chunks
	// with the hand-written decoders; without it every request is encoded
	// and every answer decoded with encoding/json.
	PassThrough bool
}

// Provider calls an OpenAI-compatible upstream.
type Provider struct {
	name       string
	url        func(op, model string) string
	authHeader string
	auth       string
	client     *http.Client
	pass       bool
}

// New returns a Provider for cfg.
func New(cfg Config) *Provider {
	base := strings.TrimRight(cfg.BaseURL, "/")
	p := &Provider{name: cfg.Name, url: cfg.URL, client: cfg.Client, authHeader: "Authorization", pass: cfg.PassThrough}
	if p.url == nil {
		p.url = func(op, _ string) string { return base + "/" + op }
	}
	if cfg.APIKey != "" {
		p.auth = "Bearer " + cfg.APIKey
		if cfg.AuthHeader != "" {
			p.authHeader, p.auth = cfg.AuthHeader, cfg.APIKey
		}
	}
	if p.client == nil {
		p.client = upstream.NewClient(0)
	}
	return p
}

// post sends body to url and returns the response if it is a 2xx; other
// answers are turned into *llm.Error.
func (p *Provider) post(ctx context.Context, url string, body []byte, stream bool) (*http.Response, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if stream {
		hr.Header.Set("Accept", "text/event-stream")
	} else {
		hr.Header.Set("Accept", "application/json")
	}
	if p.auth != "" {
		hr.Header.Set(p.authHeader, p.auth)
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
	var eb openaiwire.ErrorResponse
	msg, code := "", ""
	if json.Unmarshal(b, &eb) == nil && eb.Error.Message != "" {
		msg, code = eb.Error.Message, eb.Error.Type
		if eb.Error.Code != nil {
			code = *eb.Error.Code
		}
	} else if len(b) > 0 && len(b) < 512 {
		msg = strings.TrimSpace(string(b))
	}
	return nil, upstream.StatusError(p.name, resp.StatusCode, resp.Header, msg, code)
}

// body is the chat-completions body for req: the client's, patched, when
// the provider passes bodies through and req carries one it can patch,
// else req encoded.
func (p *Provider) body(req *llm.Request, stream bool) ([]byte, error) {
	if p.pass && req.Raw != nil && req.Dialect == openaiwire.Dialect && !req.Continue {
		if b, ok := openaiwire.PatchChatRequest(req.Raw, req.Model, stream, req.MaxTokens); ok {
			return b, nil
		}
	}
	r := *req
	r.Stream = stream
	return openaiwire.EncodeChatRequest(&r)
}

// Chat implements llm.Provider.
func (p *Provider) Chat(ctx context.Context, req *llm.Request) (*llm.Response, error) {
	body, err := p.body(req, false)
	if err != nil {
		return nil, err
	}
	resp, err := p.post(ctx, p.url("chat/completions", req.Model), body, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := upstream.ReadBody(resp)
	if err != nil {
		return nil, upstream.TransportError(ctx, p.name, err)
	}
	decode := openaiwire.DecodeChatResponse
	if p.pass {
		decode = openaiwire.ScanChatResponse
	}
	out, err := decode(b)
	if err != nil {
		return nil, upstream.Garbage(p.name, err)
	}
	return out, nil
}

// ChatStream implements llm.Provider. The upstream is always asked to
// include usage in the stream.
func (p *Provider) ChatStream(ctx context.Context, req *llm.Request) (llm.Stream, error) {
	body, err := p.body(req, true)
	if err != nil {
		return nil, err
	}
	resp, err := p.post(ctx, p.url("chat/completions", req.Model), body, true)
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		return nil, upstream.Garbage(p.name, errors.New("expected text/event-stream, got "+ct))
	}
	return &stream{p: p, ctx: ctx, body: resp.Body, r: sse.NewReader(resp.Body), dec: openaiwire.ChunkDecoder{Full: !p.pass}}, nil
}

// Embed implements llm.Embedder.
func (p *Provider) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	body, err := openaiwire.EncodeEmbedRequest(req)
	if err != nil {
		return nil, err
	}
	resp, err := p.post(ctx, p.url("embeddings", req.Model), body, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, upstream.TransportError(ctx, p.name, err)
	}
	var w openaiwire.EmbedResponse
	if err := json.Unmarshal(b, &w); err != nil || len(w.Data) == 0 {
		if err == nil {
			err = errors.New("no data member")
		}
		return nil, upstream.Garbage(p.name, err)
	}
	return &llm.EmbedResponse{Data: w.Data, Model: w.Model, Usage: llm.Usage{InputTokens: w.Usage.PromptTokens}}, nil
}

// stream reads an upstream SSE body into canonical events.
type stream struct {
	p     *Provider
	ctx   context.Context
	body  io.ReadCloser
	r     *sse.Reader
	dec   openaiwire.ChunkDecoder
	queue []llm.Event
	done  bool
	once  sync.Once
}

func (s *stream) Recv() (llm.Event, error) {
	for len(s.queue) == 0 {
		if s.done {
			return llm.Event{}, io.EOF
		}
		ev, err := s.r.Next()
		if err != nil {
			if err == io.EOF && s.dec.Stopped() {
				// Some servers end without [DONE]; a finish_reason was seen.
				s.done = true
				return llm.Event{}, io.EOF
			}
			if s.ctx.Err() != nil {
				return llm.Event{}, s.ctx.Err()
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return llm.Event{}, &llm.Error{Status: http.StatusBadGateway, Type: llm.ErrUpstream, Provider: s.p.name,
					Message: "upstream stream ended before it finished", Err: err}
			}
			return llm.Event{}, upstream.TransportError(s.ctx, s.p.name, err)
		}
		if string(ev.Data) == "[DONE]" {
			s.done = true
			if !s.dec.Stopped() {
				return llm.Event{}, &llm.Error{Status: http.StatusBadGateway, Type: llm.ErrUpstream, Provider: s.p.name,
					Message: "upstream stream ended without a finish_reason"}
			}
			continue
		}
		evs, eb, err := s.dec.Decode(ev.Data)
		if err != nil {
			// One bad event: the stream can be read on after it.
			return llm.Event{}, upstream.Garbage(s.p.name, fmt.Errorf("%w: %w", llm.ErrMalformedEvent, err))
		}
		if eb != nil {
			return llm.Event{}, &llm.Error{Status: http.StatusBadGateway, Type: llm.ErrUpstream, Provider: s.p.name,
				Message: "upstream reported an error mid-stream: " + eb.Message, Code: eb.Type}
		}
		s.queue = evs
	}
	ev := s.queue[0]
	s.queue = s.queue[1:]
	return ev, nil
}

// Pending reports whether the next event is already at hand.
func (s *stream) Pending() bool { return len(s.queue) > 0 || s.r.Ready() }

func (s *stream) Close() error {
	s.once.Do(func() { s.body.Close() })
	return nil
}
