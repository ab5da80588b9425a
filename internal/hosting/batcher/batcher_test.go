package batcher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// recorder is a Sender that answers each item with its own text and
// records every batch it was given.
type recorder struct {
	mu      sync.Mutex
	batches [][]string
	// gate, when set, holds each call until it receives.
	gate chan struct{}
}

func (r *recorder) send(ctx context.Context, items [][]byte) ([]Result, error) {
	batch := make([]string, len(items))
	for i, it := range items {
		batch[i] = string(it)
	}
	r.mu.Lock()
	r.batches = append(r.batches, batch)
	r.mu.Unlock()
	if r.gate != nil {
		<-r.gate
	}
	out := make([]Result, len(items))
	for i, it := range items {
		if string(it) == "poison" {
			out[i].Err = errors.New("poisoned item")
			continue
		}
		out[i].Body = []byte("answer to " + string(it))
	}
	return out, nil
}

func (r *recorder) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []int
	for _, b := range r.batches {
		s = append(s, len(b))
	}
	return s
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestEveryCallerGetsItsOwnAnswerAndPoisonFailsAlone(t *testing.T) {
	rec := &recorder{}
	b := New(context.Background(), Options{MaxBatchSize: 8, MaxQueueDelay: 5 * time.Millisecond}, rec.send)
	const callers = 64
	var wg sync.WaitGroup
	errs := make([]error, callers)
	bodies := make([]string, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			item := fmt.Sprintf("item-%d", i)
			if i == 13 {
				item = "poison"
			}
			r := b.Do(context.Background(), []byte(item))
			errs[i], bodies[i] = r.Err, string(r.Body)
		}()
	}
	wg.Wait()
	for i := range callers {
		if i == 13 {
			if errs[i] == nil || errs[i].Error() != "poisoned item" {
				t.Fatalf("the poisoned item got %v %q", errs[i], bodies[i])
			}
			continue
		}
		if want := fmt.Sprintf("answer to item-%d", i); errs[i] != nil || bodies[i] != want {
			t.Fatalf("caller %d got %v %q, want %q", i, errs[i], bodies[i], want)
		}
	}
	total := 0
	for _, n := range rec.sizes() {
		if n < 1 || n > 8 {
			t.Fatalf("a batch of %d; batches %v", n, rec.sizes())
		}
		total += n
	}
	if total != callers {
		t.Fatalf("%d items sent in batches %v, want %d", total, rec.sizes(), callers)
	}
}

func TestAFullBatchGoesOutAtOnceAndAPartialOneWaits(t *testing.T) {
	rec := &recorder{}
	// The delay is an hour: only a full batch can go out.
	b := New(context.Background(), Options{MaxBatchSize: 4, MaxQueueDelay: time.Hour}, rec.send)
	var wg sync.WaitGroup
	call := func(s string) {
		wg.Add(1)
		go func() { defer wg.Done(); b.Do(context.Background(), []byte(s)) }()
	}
	for i := range 3 {
		call(fmt.Sprint(i))
	}
	waitFor(t, "3 queued", func() bool { return b.Queued() == 3 })
	if s := rec.sizes(); len(s) != 0 {
		t.Fatalf("a partial batch went out before its delay: %v", s)
	}
	call("3")
	wg.Wait()
	if s := rec.sizes(); len(s) != 1 || s[0] != 4 {
		t.Fatalf("batches %v, want one of 4", s)
	}
}

func TestAPartialBatchGoesOutOnlyOnceTheOldestWaitedTheDelay(t *testing.T) {
	rec := &recorder{}
	const delay = 20 * time.Millisecond
	var mu sync.Mutex
	var waits []time.Duration
	b := New(context.Background(), Options{MaxBatchSize: 64, MaxQueueDelay: delay,
		Observe: func(n int, oldest time.Duration) { mu.Lock(); waits = append(waits, oldest); mu.Unlock() }}, rec.send)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := b.Do(context.Background(), []byte(fmt.Sprint(i))); r.Err != nil {
				t.Error(r.Err)
			}
		}()
	}
	wg.Wait()
	// Three callers never fill a batch of 64: the delay alone sent them,
	// and never before the oldest had waited it.
	total := 0
	for i, n := range rec.sizes() {
		total += n
		if waits[i] < delay {
			t.Fatalf("batch %d of %d went out after %v, before the %v delay", i, n, waits[i], delay)
		}
	}
	if total != 3 {
		t.Fatalf("batches %v", rec.sizes())
	}
}

func TestAPreferredSizeGoesOutWithoutWaiting(t *testing.T) {
	rec := &recorder{}
	b := New(context.Background(), Options{MaxBatchSize: 16, MaxQueueDelay: time.Hour, Preferred: []int{2, 4}}, rec.send)
	rec.gate = make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); b.Do(context.Background(), []byte(fmt.Sprint(i))) }()
	}
	waitFor(t, "a batch of 2", func() bool { return len(rec.sizes()) == 1 })
	// While it runs, four more queue and go out as the larger preferred
	// size once the instance is free.
	for i := range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); b.Do(context.Background(), []byte(fmt.Sprint(10+i))) }()
	}
	waitFor(t, "5 queued", func() bool { return b.Queued() == 5 })
	close(rec.gate)
	waitFor(t, "two batches", func() bool { return len(rec.sizes()) == 2 })
	if s := rec.sizes(); s[0] != 2 || s[1] != 4 {
		t.Fatalf("batches %v, want [2 4]", s)
	}
	if b.Queued() != 1 {
		t.Fatalf("%d left queued, want 1 (waiting for the delay)", b.Queued())
	}
	// The one left waits for the hour; the test ends it by filling a
	// preferred size.
	wg.Add(1)
	go func() { defer wg.Done(); b.Do(context.Background(), []byte("last")) }()
	wg.Wait()
}

func TestACallerWhoseTimeoutEndsLeavesTheQueue(t *testing.T) {
	rec := &recorder{}
	b := New(context.Background(), Options{MaxBatchSize: 4, MaxQueueDelay: time.Hour}, rec.send)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	r := b.Do(ctx, []byte("late"))
	if !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the caller's own deadline", r.Err)
	}
	if b.Queued() != 0 || len(rec.sizes()) != 0 {
		t.Fatalf("queued %d, batches %v: the item that gave up must not be sent", b.Queued(), rec.sizes())
	}
}

func TestTheNextBatchFillsWhileOneRuns(t *testing.T) {
	rec := &recorder{gate: make(chan struct{})}
	b := New(context.Background(), Options{MaxBatchSize: 32}, rec.send)
	var wg sync.WaitGroup
	do := func(s string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := b.Do(context.Background(), []byte(s)); string(r.Body) != "answer to "+s {
				t.Errorf("%s got %q %v", s, r.Body, r.Err)
			}
		}()
	}
	do("first")
	waitFor(t, "the first batch", func() bool { return len(rec.sizes()) == 1 })
	for i := range 7 {
		do(fmt.Sprint(i))
	}
	waitFor(t, "7 queued", func() bool { return b.Queued() == 7 })
	close(rec.gate)
	wg.Wait()
	if s := rec.sizes(); len(s) != 2 || s[0] != 1 || s[1] != 7 {
		t.Fatalf("batches %v, want [1 7]", s)
	}
}
