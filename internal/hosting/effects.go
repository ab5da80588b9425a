package hosting

import "sync"

// The runtime reports an instance's changes through a callback that must
// return at once: it runs on the runtime's supervision path, and the
// process runtime holds the instance while it calls it. What a change
// sets off that waits on the network or the database — learning an
// OpenAI-compatible server's model id, writing an event to the endpoint's
// history — is handed to the controller's effects worker instead.

// maxEffects bounds the work waiting for the effects worker; beyond it a
// task is dropped with a warning (an event line lost, or an instance that
// waits for its next change to be learnt) rather than blocking the
// runtime.
const maxEffects = 4096

// effects is a bounded queue of tasks run one at a time, in order.
type effects struct {
	mu    sync.Mutex
	tasks []func()
	wake  chan struct{}
}

func newEffects() *effects { return &effects{wake: make(chan struct{}, 1)} }

// add queues f; it never blocks. It reports false when the queue is full
// and f was dropped.
func (e *effects) add(f func()) bool {
	e.mu.Lock()
	if len(e.tasks) >= maxEffects {
		e.mu.Unlock()
		return false
	}
	e.tasks = append(e.tasks, f)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return true
}

// run runs queued tasks until done is closed.
func (e *effects) run(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-e.wake:
		}
		for {
			e.mu.Lock()
			if len(e.tasks) == 0 {
				e.mu.Unlock()
				break
			}
			f := e.tasks[0]
			e.tasks[0] = nil
			e.tasks = e.tasks[1:]
			e.mu.Unlock()
			f()
		}
	}
}

// later hands f to the effects worker.
func (c *reconciler) later(f func()) {
	if !c.effects.add(f) && c.log != nil {
		c.log.Warn("hosting: too much work waiting on instance changes; one task dropped")
	}
}
