// Package router decides which upstream serves a request: it maps the
// model name a client asks for to a provider and that provider's model.
package router

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/junctionhq/junction/internal/config"
	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/llm"
)

// Target is where a model name is served.
type Target struct {
	// Model is the name clients use.
	Model string
	// Provider is the configured provider's name.
	Provider string
	// ProviderType is openai, anthropic or bedrock.
	ProviderType string
	// Upstream is the adapter that calls the provider.
	Upstream llm.Provider
	// UpstreamModel is the provider's own model id.
	UpstreamModel string
	// Price is nil when the model has no known price.
	Price *ledger.Price
}

// Router resolves model names to targets.
type Router struct {
	models    map[string]*Target
	names     []string
	providers map[string]providerEntry
	catalog   *ledger.Catalog
}

type providerEntry struct {
	p   llm.Provider
	typ string
}

// Factory builds a provider adapter from its config.
type Factory func(ctx context.Context, p config.Provider) (llm.Provider, error)

// New builds a Router from cfg. Configured models are served under their
// names. When cfg names no models, each provider also serves the catalog's
// models of its kind under their catalog ids. Any provider model can be
// reached as "PROVIDER/MODEL".
func New(ctx context.Context, cfg *config.Config, catalog *ledger.Catalog, build Factory) (*Router, error) {
	r := &Router{models: map[string]*Target{}, providers: map[string]providerEntry{}, catalog: catalog}
	for _, pc := range cfg.Providers {
		p, err := build(ctx, pc)
		if err != nil {
			return nil, fmt.Errorf("provider %s: %w", pc.Name, err)
		}
		r.providers[pc.Name] = providerEntry{p: p, typ: pc.Type}
	}
	for _, m := range cfg.Models {
		up := m.UpstreamModel
		if up == "" {
			up = m.Name
		}
		t := r.target(m.Name, m.Provider, up)
		if m.Price != nil {
			t.Price = &ledger.Price{InputPer1K: m.Price.InputPer1K, OutputPer1K: m.Price.OutputPer1K, CachedInputPer1K: m.Price.CachedInputPer1K}
		}
		r.add(t)
	}
	if len(cfg.Models) == 0 {
		for _, pc := range cfg.Providers {
			for _, id := range catalog.ModelsFor(pc.Type) {
				if _, taken := r.models[id]; !taken {
					r.add(r.target(id, pc.Name, id))
				}
			}
		}
	}
	sort.Strings(r.names)
	return r, nil
}

func (r *Router) target(name, provider, upstream string) *Target {
	pe := r.providers[provider]
	t := &Target{Model: name, Provider: provider, ProviderType: pe.typ, Upstream: pe.p, UpstreamModel: upstream}
	if p, ok := r.catalog.Lookup(upstream); ok {
		t.Price = &p
	}
	return t
}

func (r *Router) add(t *Target) {
	r.models[t.Model] = t
	r.names = append(r.names, t.Model)
}

// Resolve returns the target for a model name, or a 404 *llm.Error that
// lists the models that exist.
func (r *Router) Resolve(model string) (*Target, error) {
	if t, ok := r.models[model]; ok {
		return t, nil
	}
	if prov, up, ok := strings.Cut(model, "/"); ok && up != "" {
		if _, known := r.providers[prov]; known {
			return r.target(model, prov, up), nil
		}
	}
	e := llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "model %q does not exist; available models: %s", model, r.describeModels())
	e.Param = "model"
	e.Code = "model_not_found"
	return nil, e
}

func (r *Router) describeModels() string {
	if len(r.names) == 0 && len(r.providers) == 0 {
		return "none (no providers are configured: set OPENAI_API_KEY, ANTHROPIC_API_KEY or AWS_REGION, or pass --config)"
	}
	list := strings.Join(r.names, ", ")
	if len(r.providers) > 0 {
		provs := make([]string, 0, len(r.providers))
		for p := range r.providers {
			provs = append(provs, p+"/MODEL")
		}
		sort.Strings(provs)
		if list != "" {
			list += "; "
		}
		list += "or any upstream model as " + strings.Join(provs, ", ")
	}
	return list
}

// Models returns the targets of every named model, sorted by name.
func (r *Router) Models() []*Target {
	out := make([]*Target, 0, len(r.names))
	for _, n := range r.names {
		out = append(out, r.models[n])
	}
	return out
}
