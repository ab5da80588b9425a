// Package logbuf batches log output: lines are gathered in memory and
// written at most every flush interval (or when the buffer fills), so a
// busy server spends one write system call on many log lines instead of
// one or two per request.
package logbuf

import (
	"io"
	"sync"
	"time"
)

// maxBuffered is the size at which a write flushes at once.
const maxBuffered = 64 << 10

// Writer is a batching io.Writer. It is safe for concurrent use.
type Writer struct {
	mu   sync.Mutex
	dst  io.Writer
	buf  []byte
	done chan struct{}
	wg   sync.WaitGroup
}

// New returns a Writer that flushes to dst every interval.
func New(dst io.Writer, interval time.Duration) *Writer {
	w := &Writer{dst: dst, buf: make([]byte, 0, 8<<10), done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				w.Flush()
			case <-w.done:
				return
			}
		}
	}()
	return w
}

// Write buffers p. It never fails; write errors of the destination are
// dropped, as a logger has nowhere to report them.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf = append(w.buf, p...)
	if len(w.buf) >= maxBuffered {
		w.flushLocked()
	}
	w.mu.Unlock()
	return len(p), nil
}

// Flush writes what is buffered.
func (w *Writer) Flush() {
	w.mu.Lock()
	w.flushLocked()
	w.mu.Unlock()
}

func (w *Writer) flushLocked() {
	if len(w.buf) == 0 {
		return
	}
	w.dst.Write(w.buf)
	w.buf = w.buf[:0]
}

// Close stops the background flushes and writes what is left.
func (w *Writer) Close() error {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.wg.Wait()
	w.Flush()
	return nil
}
