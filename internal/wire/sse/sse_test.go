package sse

import (
	"bytes"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReaderFraming(t *testing.T) {
	body := ": keep-alive\n\nevent: message_start\ndata: {\"a\":1}\n\ndata: line1\ndata: line2\r\n\r\ndata: [DONE]\n\n"
	r := NewReader(strings.NewReader(body))
	want := []Event{
		{Name: "message_start", Data: []byte(`{"a":1}`)},
		{Data: []byte("line1\nline2")},
		{Data: []byte("[DONE]")},
	}
	for i, w := range want {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if got.Name != w.Name || !bytes.Equal(got.Data, w.Data) {
			t.Fatalf("event %d = %q %q, want %q %q", i, got.Name, got.Data, w.Name, w.Data)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("end: err = %v, want io.EOF", err)
	}
}

func TestReaderTruncated(t *testing.T) {
	r := NewReader(strings.NewReader("data: {\"partial\":"))
	if _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestReaderLongLine(t *testing.T) {
	long := strings.Repeat("x", 100<<10)
	r := NewReader(strings.NewReader("data: " + long + "\n\n"))
	ev, err := r.Next()
	if err != nil || string(ev.Data) != long {
		t.Fatalf("long line: err=%v len=%d", err, len(ev.Data))
	}
}

// TestReaderLinesAroundTheBuffer reads events whose lines end just before,
// at and after the buffer's end, arriving a few bytes at a time, each
// followed by a short one.
func TestReaderLinesAroundTheBuffer(t *testing.T) {
	var in strings.Builder
	var want []string
	for _, n := range []int{readerSize - 8, readerSize - 7, readerSize - 6, readerSize, readerSize + 1, 3*readerSize + 5} {
		long := strings.Repeat("y", n)
		in.WriteString("data: " + long + "\r\n\r\ndata: short\n\n")
		want = append(want, long, "short")
	}
	r := NewReader(iotest.HalfReader(strings.NewReader(in.String())))
	for i, w := range want {
		ev, err := r.Next()
		if err != nil || string(ev.Data) != w {
			t.Fatalf("event %d: err=%v, len %d, want %d", i, err, len(ev.Data), len(w))
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last event: %v, want io.EOF", err)
	}
}

func TestWriter(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.Write("ping", []byte(`{}`))
	w.Write("", []byte(`[DONE]`))
	if got := b.String(); got != "event: ping\ndata: {}\n\ndata: [DONE]\n\n" {
		t.Fatalf("got %q", got)
	}
}

func TestReaderReady(t *testing.T) {
	pr, pw := io.Pipe()
	r := NewReader(pr)
	go pw.Write([]byte("data: a\n\ndata: b\n\ndata: par"))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if !r.Ready() {
		t.Fatal("a whole second event is buffered: Ready must say so")
	}
	r.Next()
	if r.Ready() {
		t.Fatal("only part of an event is buffered: Next would wait, so Ready must be false")
	}
	pw.Close()
}

func TestWriteMoreHoldsTheFlush(t *testing.T) {
	rec := &flushCounter{}
	w := NewWriter(rec)
	w.WriteMore("", []byte("1"), true)
	w.WriteMore("", []byte("2"), false)
	if rec.flushes != 1 || rec.String() != "data: 1\n\ndata: 2\n\n" {
		t.Fatalf("flushes %d body %q", rec.flushes, rec.String())
	}
}

type flushCounter struct {
	bytes.Buffer
	flushes int
}

func (f *flushCounter) Flush() { f.flushes++ }

func TestWriterSetsTheHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	NewWriter(rec).Write("", []byte("x"))
	h := rec.Result().Header
	for k, v := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no"} {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}
