package respcache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/junctionhq/junction/internal/vec"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// EmbedFunc returns one embedding per text, in order. The server gives
// it an embeddings model Junction serves.
type EmbedFunc func(ctx context.Context, texts []string) ([][]float32, error)

// Defaults of the semantic mode.
const (
	DefaultThreshold  = 0.95
	DefaultMaxEntries = 1024
	DefaultTimeout    = 2 * time.Second
	// MaxSemanticBytes is the longest last message answered by meaning:
	// a longer one would be cut to fit an embedding model, and two
	// prompts that differ only past the cut would look the same.
	MaxSemanticBytes = 8 << 10
)

// Semantic is the cache's semantic mode: a request that misses the exact
// cache may be answered with the entry of an earlier request whose last
// user message means nearly the same — the cosine similarity of their
// embeddings at least Threshold — when everything else about the two is
// identical: the scope, the model or route asked for, the earlier turns,
// and every parameter that goes into the exact key. Requests with tools,
// a prefill, or anything but text in their last user message are never
// answered by meaning, only exactly.
//
// The index of embedded messages is held in this process, bounded by
// MaxEntries (oldest first out); the answers stay in the cache's Store.
// A semantic hit is a guess: two messages can be close in meaning and
// still want different answers (docs/caching.md).
type Semantic struct {
	// Embed computes the embeddings.
	Embed EmbedFunc
	// Threshold is the least cosine similarity that is a hit.
	Threshold float64
	// Models are the model and route names answered by meaning; empty
	// means every cached one.
	Models []string
	// MaxEntries bounds the index (DefaultMaxEntries when zero).
	MaxEntries int
	// Timeout bounds an embedding call (DefaultTimeout when zero); one
	// that fails or runs out is a miss.
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.RWMutex
	buckets map[string][]*indexed // oldest first
	order   []*indexed            // every entry, oldest first (a queue)
	head    int                   // order[head:] are live
}

// indexed is one embedded message: the key of its answer in the Store.
type indexed struct {
	bucket  string
	key     string
	vec     []float32 // unit length
	expires time.Time
}

// Probe is a request as the semantic mode sees it: its bucket (the hash
// of everything but its last message's text) and that text, embedded on
// first use.
type Probe struct {
	bucket string
	text   string
	vec    []float32
	failed bool
}

// Probe returns the semantic probe of req asked of model within scope, or
// nil when the request is not answered by meaning: no semantic mode, a
// model not in it, tools, a prefill, or a last message that is not plain
// user text of at most MaxSemanticBytes.
func (c *Cache) Probe(scope, model string, req *llm.Request) *Probe {
	s := c.Semantic
	if s == nil || len(s.Models) > 0 && !slices.Contains(s.Models, model) {
		return nil
	}
	if len(req.Tools) > 0 || req.ToolChoice != nil || req.Continue || len(req.Messages) == 0 {
		return nil
	}
	last := req.Messages[len(req.Messages)-1]
	if last.Role != llm.RoleUser || len(last.Content) == 0 {
		return nil
	}
	for _, p := range last.Content {
		if p.Type != llm.PartText {
			return nil
		}
	}
	text := last.Text()
	if text == "" || len(text) > MaxSemanticBytes {
		return nil
	}
	// The bucket is the exact key of the request with its last message's
	// text taken out (its role and name stay), in a namespace of its own.
	rest := *req
	rest.Messages = append(slices.Clip(req.Messages[:len(req.Messages)-1]), llm.Message{Role: last.Role, Name: last.Name})
	return &Probe{bucket: Key("semantic\x00"+scope, model, &rest), text: text}
}

// embed computes p's vector once; false when the embedding failed.
func (s *Semantic) embed(ctx context.Context, p *Probe) bool {
	if p.vec != nil || p.failed {
		return p.vec != nil
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := s.Embed(ctx, []string{p.text})
	if err == nil && len(out) != 1 {
		err = fmt.Errorf("got %d embeddings for 1 text", len(out))
	}
	if err == nil {
		v := slices.Clone(out[0])
		if !vec.Normalize(v) {
			err = errors.New("the embedding is all zeros")
		}
		p.vec = v
	}
	if err != nil {
		p.vec, p.failed = nil, true
		return false
	}
	return true
}

func (s *Semantic) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// nearest is the live entry of p's bucket most similar to p's vector, with
// its similarity, if any reaches the threshold.
func (s *Semantic) nearest(p *Probe) (*indexed, float64) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var best *indexed
	bestSim := math.Inf(-1)
	for _, e := range s.buckets[p.bucket] {
		if len(e.vec) != len(p.vec) || !now.Before(e.expires) {
			continue
		}
		if sim := float64(vec.Dot(p.vec, e.vec)); sim > bestSim {
			best, bestSim = e, sim
		}
	}
	if best == nil || bestSim < s.Threshold {
		return nil, bestSim
	}
	return best, bestSim
}

// Similar returns the entry of the earlier request in p's bucket whose
// message is most similar to p's, and the similarity, when it reaches the
// threshold. It embeds p's text (kept for Index); a failed embedding or
// store is a miss.
func (c *Cache) Similar(ctx context.Context, p *Probe) (*Entry, float64, bool) {
	s := c.Semantic
	if p == nil || s == nil || !s.embed(ctx, p) {
		return nil, 0, false
	}
	near, sim := s.nearest(p)
	if near == nil {
		return nil, sim, false
	}
	e, ok := c.Get(ctx, near.key)
	return e, sim, ok
}

// Index records that the answer stored under key answers p's message, so
// that later requests close to it in meaning find it. It embeds p's text
// if Similar did not.
func (c *Cache) Index(ctx context.Context, p *Probe, key string) {
	s := c.Semantic
	if p == nil || s == nil || !s.embed(ctx, p) {
		return
	}
	now := s.now()
	max := s.MaxEntries
	if max <= 0 {
		max = DefaultMaxEntries
	}
	e := &indexed{bucket: p.bucket, key: key, vec: p.vec, expires: now.Add(c.TTL)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets == nil {
		s.buckets = map[string][]*indexed{}
	}
	// Every entry lives for the same TTL, so the oldest expire first: drop
	// them from the front, and more while over the bound.
	for s.head < len(s.order) && (len(s.order)-s.head >= max || !now.Before(s.order[s.head].expires)) {
		s.drop()
	}
	s.buckets[e.bucket] = append(s.buckets[e.bucket], e)
	s.order = append(s.order, e)
	if s.head > len(s.order)/2 {
		s.order = slices.Clone(s.order[s.head:])
		s.head = 0
	}
}

// drop removes the oldest entry; s.mu must be held.
func (s *Semantic) drop() {
	old := s.order[s.head]
	s.order[s.head] = nil
	s.head++
	// The oldest entry overall is the oldest of its bucket.
	b := s.buckets[old.bucket]
	if len(b) <= 1 {
		delete(s.buckets, old.bucket)
	} else {
		s.buckets[old.bucket] = b[1:]
	}
}

// Len is the number of messages indexed, expired ones included until
// dropped.
func (s *Semantic) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.order) - s.head
}
