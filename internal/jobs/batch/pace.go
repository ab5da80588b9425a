package batch

import (
	"context"
	"sync"
	"time"
)

// Pacer paces the records of one model across jobs: at most a window of
// records in flight, and, when the provider's rate limit is known, no
// more than a share of it per second. The window is additive-increase,
// multiplicative-decrease: a 429 halves it and pauses every record for
// the Retry-After the provider gave; each success widens it by 1/window,
// back up to the configured concurrency. Interactive traffic therefore
// keeps the room batch records leave and gets the room they give up on a
// 429.
type Pacer struct {
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change
	window   float64
	max      int
	inflight int
	interval time.Duration // between starts; 0 means no rate cap
	next     time.Time     // the earliest next start under the cap
	paused   time.Time     // no start before this
}

// NewPacer returns a pacer allowing concurrency records in flight and, when
// perSecond > 0, at most perSecond starts a second.
func NewPacer(concurrency int, perSecond float64) *Pacer {
	p := &Pacer{changed: make(chan struct{}), window: float64(concurrency), max: concurrency}
	if perSecond > 0 {
		p.interval = time.Duration(float64(time.Second) / perSecond)
	}
	return p
}

func (p *Pacer) broadcast() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Acquire waits for a slot, or until ctx ends.
func (p *Pacer) Acquire(ctx context.Context) error {
	for {
		p.mu.Lock()
		now := time.Now()
		var wait time.Duration
		switch {
		case p.inflight >= max(int(p.window), 1):
			wait = -1 // until a release
		case now.Before(p.paused):
			wait = p.paused.Sub(now)
		case p.interval > 0 && now.Before(p.next):
			wait = p.next.Sub(now)
		default:
			p.inflight++
			if p.interval > 0 {
				// A cap idle for a while grants one start at once, not a
				// burst for all the time it was idle.
				start := p.next
				if start.Before(now.Add(-p.interval)) {
					start = now.Add(-p.interval)
				}
				p.next = start.Add(p.interval)
			}
			p.mu.Unlock()
			return nil
		}
		ch := p.changed
		p.mu.Unlock()
		var timer <-chan time.Time
		var t *time.Timer
		if wait > 0 {
			t = time.NewTimer(wait)
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-ch:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Release ends a call begun by Acquire. throttled says the provider
// answered 429, asking for retryAfter (0: the pacer's own pause).
func (p *Pacer) Release(throttled bool, retryAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight--
	if throttled {
		p.window = max(p.window/2, 1)
		if retryAfter > 0 {
			if until := time.Now().Add(retryAfter); until.After(p.paused) {
				p.paused = until
			}
		}
	} else if p.window < float64(p.max) {
		p.window = min(p.window+1/p.window, float64(p.max))
	}
	p.broadcast()
}

// Window returns the number of records the pacer lets in flight now.
func (p *Pacer) Window() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(int(p.window), 1)
}
