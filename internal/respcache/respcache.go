// Package respcache is Junction's response cache: an exact cache of whole
// model answers, keyed on the normalised request (the model name asked
// for, the messages, tools and every parameter that changes the answer —
// never the API key) within a scope (a team, a key, or everyone), held in
// memory or in Redis with a TTL and a size bound; and, as an option, a
// semantic mode (Semantic) that also answers a request whose last message
// is close in meaning to one already answered. It stores and finds
// entries; when to consult it (the models and routes that opted in, the
// request's Cache-Control) and how a hit is answered and accounted is the
// gateway's.
package respcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// Store holds encoded entries by key until they expire.
type Store interface {
	// Get returns the value stored under key, if any and not expired.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores value under key for ttl.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// Entry is a cached answer with what the ledger needs to account a hit:
// who answered it and what it cost then.
type Entry struct {
	Response *llm.Response `json:"response"`
	// Served, Provider and UpstreamModel name the deployment that
	// answered.
	Served        string `json:"served"`
	Provider      string `json:"provider"`
	UpstreamModel string `json:"upstream_model"`
	// CostUSD is what the answer cost when it was made; nil when unpriced.
	CostUSD *float64 `json:"cost_usd,omitempty"`
}

// Cache is a response cache over a Store, for the models and routes named
// in Models.
type Cache struct {
	Store Store
	// TTL is how long an entry is served.
	TTL time.Duration
	// Models are the model and route names whose answers are cached.
	Models []string
	// Scope is team (default), key or global: whose requests share
	// entries.
	Scope string
	// Semantic, when set, also answers requests by meaning.
	Semantic *Semantic
}

// Enabled reports whether answers for model (a name a client asks for)
// are cached.
func (c *Cache) Enabled(model string) bool {
	return c != nil && slices.Contains(c.Models, model)
}

// ScopeOf is the scope a request falls in under the cache's Scope: its
// key's team (or the key itself when it has none), its key, or "" for all.
func (c *Cache) ScopeOf(keyID, team string) string {
	switch c.Scope {
	case "global":
		return "global"
	case "key":
		return "key:" + keyID
	}
	if team != "" {
		return "team:" + team
	}
	return "key:" + keyID
}

// normal is the part of a request that decides its answer. Stream, user
// and the upstream model are left out: a streamed request may be answered
// from a plain one, and the routing decides the deployment.
type normal struct {
	Model          string                     `json:"model"`
	Messages       []llm.Message              `json:"messages"`
	MaxTokens      *int                       `json:"max_tokens,omitempty"`
	Temperature    *float64                   `json:"temperature,omitempty"`
	TopP           *float64                   `json:"top_p,omitempty"`
	Stop           []string                   `json:"stop,omitempty"`
	Tools          []llm.Tool                 `json:"tools,omitempty"`
	ToolChoice     *llm.ToolChoice            `json:"tool_choice,omitempty"`
	ResponseFormat json.RawMessage            `json:"response_format,omitempty"`
	Extra          map[string]json.RawMessage `json:"extra,omitempty"`
	Continue       bool                       `json:"continue,omitempty"`
}

// ignored are Extra fields that do not change the answer.
var ignored = []string{"stream_options", "metadata", "user", "store"}

// Key is the cache key of req asked of model within scope: a hash of the
// scope and the normalised request.
func Key(scope, model string, req *llm.Request) string {
	n := normal{Model: model, Messages: req.Messages, MaxTokens: req.MaxTokens, Temperature: req.Temperature, TopP: req.TopP,
		Stop: req.Stop, Tools: req.Tools, ToolChoice: req.ToolChoice, ResponseFormat: req.ResponseFormat, Continue: req.Continue}
	for k, v := range req.Extra {
		if !slices.Contains(ignored, k) {
			if n.Extra == nil {
				n.Extra = map[string]json.RawMessage{}
			}
			n.Extra[k] = v
		}
	}
	h := sha256.New()
	h.Write([]byte(scope))
	h.Write([]byte{0})
	json.NewEncoder(h).Encode(n) // map keys are encoded sorted
	return hex.EncodeToString(h.Sum(nil))
}

// Get returns the entry under key, if there is one. A store that fails is
// a miss: the cache never fails a request.
func (c *Cache) Get(ctx context.Context, key string) (*Entry, bool) {
	b, ok, err := c.Store.Get(ctx, key)
	if err != nil || !ok {
		return nil, false
	}
	var e Entry
	if json.Unmarshal(b, &e) != nil || e.Response == nil {
		return nil, false
	}
	return &e, true
}

// Put stores e under key for the cache's TTL; errors are dropped, as a
// store that fails only costs a later miss.
func (c *Cache) Put(ctx context.Context, key string, e *Entry) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	c.Store.Set(ctx, key, b, c.TTL)
}
