// Package batcher gathers concurrent single requests into batches: a
// request waits in a queue until enough others have joined it (the
// largest batch allowed, or a preferred size) or until the oldest in the
// queue has waited the longest delay allowed, and then the batch goes out
// as one call, whose per-item answers are handed back to their callers.
//
// It knows nothing of HTTP or of any wire format: the Sender it is given
// makes the call. It is used by hosting, one Batcher per model-server
// instance, so that the batches an instance receives are made only of
// requests routed to it.
package batcher

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Options shape the batches.
type Options struct {
	// MaxBatchSize is the most items a batch holds (at least 1).
	MaxBatchSize int
	// MaxQueueDelay is the longest an item waits for others before a
	// smaller batch goes out; zero sends whatever is queued at once.
	MaxQueueDelay time.Duration
	// Preferred are batch sizes sent as soon as the queue reaches one,
	// without waiting for the delay (the largest that fits is taken).
	Preferred []int
	// MaxConcurrent is how many batches may be in flight at once
	// (default 1: the next batch fills while one runs, as a GPU runs one
	// batch at a time).
	MaxConcurrent int
	// Observe, when set, is told of each batch as it goes out: how many
	// items it holds and how long the oldest of them waited.
	Observe func(size int, oldestWait time.Duration)
}

// Result is one item's answer.
type Result struct {
	Body []byte
	Err  error
	// Latency is the time the batch's call took.
	Latency time.Duration
}

// Sender makes one batch's call: items in queue order; it returns one
// Result per item, in the same order, or an error that fails them all.
// ctx ends when every caller has given up or the latest of their
// deadlines passes.
type Sender func(ctx context.Context, items [][]byte) ([]Result, error)

// Batcher queues items and sends them in batches.
type Batcher struct {
	opts Options
	send Sender
	// base is the context batches run under (their callers' deadlines
	// are added to it); cancelling it ends batches in flight.
	base context.Context

	mu       sync.Mutex
	queue    []*call
	inflight int
	timer    *time.Timer
	timerAt  time.Time
}

// call is one queued item.
type call struct {
	ctx  context.Context
	body []byte
	at   time.Time
	done chan Result
}

// New returns a Batcher whose batches are sent by send under base.
func New(base context.Context, opts Options, send Sender) *Batcher {
	if opts.MaxBatchSize < 1 {
		opts.MaxBatchSize = 1
	}
	if opts.MaxConcurrent < 1 {
		opts.MaxConcurrent = 1
	}
	return &Batcher{opts: opts, send: send, base: base}
}

// ErrMismatch says a batch's answer did not hold one result per item.
var ErrMismatch = errors.New("batcher: the batch's answer does not hold one result per item")

// Do queues body, waits for its batch to be answered and returns its own
// answer. When ctx ends first, the item leaves the queue (or its answer,
// if already sent, is dropped) and Do returns ctx's error.
func (b *Batcher) Do(ctx context.Context, body []byte) Result {
	c := &call{ctx: ctx, body: body, at: time.Now(), done: make(chan Result, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	b.dispatch()
	b.mu.Unlock()
	select {
	case r := <-c.done:
		return r
	case <-ctx.Done():
		b.mu.Lock()
		b.remove(c)
		b.mu.Unlock()
		return Result{Err: ctx.Err()}
	}
}

// Queued reports how many items wait for a batch.
func (b *Batcher) Queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// remove takes c out of the queue if it is still there.
func (b *Batcher) remove(c *call) {
	for i, q := range b.queue {
		if q == c {
			b.queue = append(b.queue[:i], b.queue[i+1:]...)
			return
		}
	}
}

// size decides how many queued items go out now: 0 means wait.
func (b *Batcher) size(now time.Time) int {
	n := len(b.queue)
	if n == 0 {
		return 0
	}
	if n >= b.opts.MaxBatchSize {
		return b.opts.MaxBatchSize
	}
	if now.Sub(b.queue[0].at) >= b.opts.MaxQueueDelay {
		return n
	}
	best := 0
	for _, p := range b.opts.Preferred {
		if p <= n && p > best {
			best = p
		}
	}
	return best
}

// dispatch sends every batch that is due while a slot is free, and arms
// the timer for the oldest item left. b.mu is held.
func (b *Batcher) dispatch() {
	now := time.Now()
	for b.inflight < b.opts.MaxConcurrent {
		n := b.size(now)
		if n == 0 {
			break
		}
		batch := make([]*call, n)
		copy(batch, b.queue)
		b.queue = append(b.queue[:0], b.queue[n:]...)
		b.inflight++
		if b.opts.Observe != nil {
			b.opts.Observe(n, now.Sub(batch[0].at))
		}
		go b.run(batch)
	}
	if len(b.queue) == 0 || b.inflight >= b.opts.MaxConcurrent {
		return
	}
	// The oldest item's delay runs out at due; a free slot then sends it.
	due := b.queue[0].at.Add(b.opts.MaxQueueDelay)
	if b.timer != nil && b.timerAt.Equal(due) {
		return
	}
	b.timerAt = due
	if b.timer == nil {
		b.timer = time.AfterFunc(due.Sub(now), b.fire)
	} else {
		b.timer.Reset(due.Sub(now))
	}
}

func (b *Batcher) fire() {
	b.mu.Lock()
	b.timerAt = time.Time{}
	b.dispatch()
	b.mu.Unlock()
}

// run sends one batch and hands out its answers. Callers that gave up
// before it went out are left out of it.
func (b *Batcher) run(batch []*call) {
	defer func() {
		b.mu.Lock()
		b.inflight--
		b.dispatch()
		b.mu.Unlock()
	}()
	live := batch[:0]
	for _, c := range batch {
		if c.ctx.Err() == nil {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := batchContext(b.base, live)
	defer cancel()
	items := make([][]byte, len(live))
	for i, c := range live {
		items[i] = c.body
	}
	start := time.Now()
	results, err := b.send(ctx, items)
	took := time.Since(start)
	if err == nil && len(results) != len(live) {
		err = ErrMismatch
	}
	for i, c := range live {
		r := Result{Err: err, Latency: took}
		if err == nil {
			r = results[i]
			if r.Latency == 0 {
				r.Latency = took
			}
		}
		c.done <- r
	}
}

// batchContext is the context a batch runs under: it ends at the latest
// of its callers' deadlines (none if any caller has none), or once every
// caller has given up.
func batchContext(base context.Context, calls []*call) (context.Context, context.CancelFunc) {
	var latest time.Time
	bounded := true
	for _, c := range calls {
		d, ok := c.ctx.Deadline()
		if !ok {
			bounded = false
			break
		}
		if d.After(latest) {
			latest = d
		}
	}
	ctx, cancel := context.WithCancel(base)
	if bounded {
		var cancelT context.CancelFunc
		ctx, cancelT = context.WithDeadline(ctx, latest)
		prev := cancel
		cancel = func() { cancelT(); prev() }
	}
	var left sync.WaitGroup
	left.Add(len(calls))
	for _, c := range calls {
		stop := context.AfterFunc(c.ctx, left.Done)
		prev := cancel
		cancel = func() {
			if stop() {
				left.Done()
			}
			prev()
		}
	}
	go func() {
		left.Wait()
		cancel()
	}()
	return ctx, cancel
}
