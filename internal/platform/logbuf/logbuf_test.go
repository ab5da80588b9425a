package logbuf

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuf) snapshot() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String(), s.writes
}

func TestBatchesAndFlushes(t *testing.T) {
	dst := &syncBuf{}
	w := New(dst, time.Hour)
	for i := 0; i < 100; i++ {
		w.Write([]byte("line\n"))
	}
	if got, _ := dst.snapshot(); got != "" {
		t.Fatal("lines written before a flush")
	}
	w.Close()
	got, writes := dst.snapshot()
	if strings.Count(got, "line\n") != 100 || writes != 1 {
		t.Fatalf("%d lines in %d writes", strings.Count(got, "line\n"), writes)
	}
}

func TestIntervalFlush(t *testing.T) {
	dst := &syncBuf{}
	w := New(dst, time.Millisecond)
	defer w.Close()
	w.Write([]byte("x\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := dst.snapshot(); got == "x\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("not flushed by the interval")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFullBufferFlushesAtOnce(t *testing.T) {
	dst := &syncBuf{}
	w := New(dst, time.Hour)
	defer w.Close()
	w.Write(bytes.Repeat([]byte("y"), maxBuffered))
	if got, _ := dst.snapshot(); len(got) != maxBuffered {
		t.Fatalf("a full buffer was not flushed: %d bytes out", len(got))
	}
}
