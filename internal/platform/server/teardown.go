package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// teardown closes what the server opened, in the reverse order of opening,
// each part once. New adds a part as soon as it has opened it, so a New
// that fails halfway closes exactly what it had opened; Serve adds what it
// starts (the workers, the HTTP server), so that shutdown stops the HTTP
// server first and closes the database last, after everything that
// writes to it.
type teardown struct {
	mu    sync.Mutex
	parts []part
	done  bool
	err   error
	log   *slog.Logger
}

// part is one thing to close.
type part struct {
	name  string
	close func(ctx context.Context) error
}

// add registers a part opened just now. A part added after the teardown
// has run is closed at once: nothing opened is left open.
func (t *teardown) add(name string, close func(ctx context.Context) error) {
	t.mu.Lock()
	if !t.done {
		t.parts = append(t.parts, part{name, close})
		t.mu.Unlock()
		t.log.Debug("opened", "part", name)
		return
	}
	t.mu.Unlock()
	if err := close(context.Background()); err != nil {
		t.log.Warn("shutdown: closing failed", "part", name, "err", err)
	}
}

// run closes every part, the last opened first, and returns their errors
// joined. Only the first call closes anything; later and concurrent calls
// wait for it and return the same error. Each part has ctx to finish in;
// one whose close fails or runs out of time does not keep the parts opened
// before it from being closed.
func (t *teardown) run(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return t.err
	}
	t.done = true
	var errs []error
	for i := len(t.parts) - 1; i >= 0; i-- {
		p := t.parts[i]
		if err := p.close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
		}
		t.log.Debug("closed", "part", p.name)
	}
	t.parts = nil
	t.err = errors.Join(errs...)
	return t.err
}
