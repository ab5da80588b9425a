package hosting

import (
	"context"
	"sync"
)

// workQueue holds the endpoints waiting to be reconciled. A key is never
// handed out twice at once: one added while it is being reconciled waits
// until that run is done and then runs once more, however many times it
// was added meanwhile, so changes that arrive mid-run are merged into the
// next run rather than lost or run in parallel.
type workQueue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []string
	waiting map[string]bool               // in queue, or to run again once done
	running map[string]context.CancelFunc // being reconciled
	closed  bool
}

func newWorkQueue() *workQueue {
	q := &workQueue{waiting: map[string]bool{}, running: map[string]context.CancelFunc{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// add asks for key to be reconciled.
func (q *workQueue) add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.waiting[key] {
		return
	}
	q.waiting[key] = true
	if _, busy := q.running[key]; busy {
		return // queued again by done
	}
	q.queue = append(q.queue, key)
	q.cond.Signal()
}

// interrupt cancels the run of key in progress, if any, so that a change
// of its spec is acted on now rather than after a long update.
func (q *workQueue) interrupt(key string) {
	q.mu.Lock()
	cancel := q.running[key]
	q.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// get waits for a key and marks it running with cancel; ok is false once
// the queue is closed.
func (q *workQueue) get(cancel context.CancelFunc) (key string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.queue) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return "", false
	}
	key, q.queue = q.queue[0], q.queue[1:]
	delete(q.waiting, key)
	q.running[key] = cancel
	return key, true
}

// done ends the run of key; if it was added meanwhile, it runs again.
func (q *workQueue) done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.running, key)
	if q.waiting[key] && !q.closed {
		q.queue = append(q.queue, key)
		q.cond.Signal()
	}
}

// close stops handing out keys and cancels the runs in progress.
func (q *workQueue) close() {
	q.mu.Lock()
	q.closed = true
	cancels := make([]context.CancelFunc, 0, len(q.running))
	for _, c := range q.running {
		cancels = append(cancels, c)
	}
	q.cond.Broadcast()
	q.mu.Unlock()
	for _, c := range cancels {
		c()
	}
}
