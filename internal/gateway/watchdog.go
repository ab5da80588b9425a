package gateway

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// watchdog ends a stream attempt that is silent too long: before its first
// content for more than first_token_timeout, or between events for more
// than stream_idle_timeout. It keeps one timer per attempt and re-arms it
// lazily, so an event costs a clock read, not a timer reset.
type watchdog struct {
	limits  config.Streams
	start   time.Time
	last    atomic.Int64 // UnixNano of the last event
	content atomic.Bool  // the first content has arrived
	cancel  func()

	mu     sync.Mutex
	timer  *time.Timer
	reason string // why it fired; empty while it has not
}

// newWatchdog watches an attempt starting now, calling cancel when it is
// silent too long; nil when limits set no timeout.
func newWatchdog(limits config.Streams, cancel func()) *watchdog {
	if limits.FirstTokenTimeout <= 0 && limits.StreamIdleTimeout <= 0 {
		return nil
	}
	w := &watchdog{limits: limits, start: time.Now(), cancel: cancel}
	w.last.Store(w.start.UnixNano())
	w.mu.Lock()
	w.timer = time.AfterFunc(w.next(w.start), w.check)
	w.mu.Unlock()
	return w
}

// next is how long from now the current limit runs; 0 when none does.
func (w *watchdog) next(now time.Time) time.Duration {
	if !w.content.Load() && w.limits.FirstTokenTimeout > 0 {
		return w.start.Add(w.limits.FirstTokenTimeout).Sub(now)
	}
	if w.limits.StreamIdleTimeout > 0 {
		return time.Unix(0, w.last.Load()).Add(w.limits.StreamIdleTimeout).Sub(now)
	}
	return 0
}

func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer == nil {
		return // stopped
	}
	now := time.Now()
	left := w.next(now)
	switch {
	case left > 0:
		w.timer.Reset(left)
		return
	case !w.content.Load() && w.limits.FirstTokenTimeout > 0:
		w.reason = "no first token within first_token_timeout (" + w.limits.FirstTokenTimeout.String() + ")"
	case w.limits.StreamIdleTimeout > 0:
		w.reason = "stream silent for stream_idle_timeout (" + w.limits.StreamIdleTimeout.String() + ")"
	default:
		return // content came and no idle limit is set: nothing to watch
	}
	w.cancel()
}

// saw notes an event of type t.
func (w *watchdog) saw(t llm.EventType) {
	if w == nil {
		return
	}
	w.last.Store(time.Now().UnixNano())
	switch t {
	case llm.EventText, llm.EventToolCall, llm.EventToolArgs, llm.EventStop:
		if !w.content.Load() {
			w.content.Store(true)
		}
	}
}

// expired says why the watchdog ended the attempt; empty if it did not.
func (w *watchdog) expired() string {
	if w == nil {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reason
}

// stop ends the watch.
func (w *watchdog) stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}
