package sse

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader: any bytes an upstream sends read as events and then io.EOF,
// io.ErrUnexpectedEOF or a clear error; the reader never panics, never
// loops, and what Writer writes reads back as written.
func FuzzReader(f *testing.F) {
	for _, seed := range []string{
		"data: {\"a\":1}\n\ndata: [DONE]\n\n",
		"event: message_start\ndata: {}\n\n: comment\n\nid: 1\nretry: 10\ndata: x\n\n",
		"data: one\ndata: two\r\n\r\n", "data:no-space\n\n", "data: cut", "\n\n\n", ":\n", "event: e\n\n",
	} {
		f.Add([]byte(seed), "name", []byte("payload"))
	}
	f.Fuzz(func(t *testing.T, raw []byte, name string, data []byte) {
		r := NewReader(bytes.NewReader(raw))
		for n := 0; ; n++ {
			if n > len(raw)+1 {
				t.Fatalf("more events than bytes: %d from %d", n, len(raw))
			}
			if _, err := r.Next(); err != nil {
				break
			}
		}
		// Round trip, where the event fits one line each: Writer writes
		// data as one data: line.
		if bytes.ContainsAny([]byte(name), "\r\n") || bytes.ContainsAny(data, "\r\n") {
			return
		}
		var buf bytes.Buffer
		w := NewWriter(&buf)
		if err := w.Write(name, data); err != nil {
			return
		}
		ev, err := NewReader(&buf).Next()
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("reading back %q: %v", buf.String(), err)
		}
		if err == nil && !bytes.Equal(ev.Data, data) {
			t.Fatalf("wrote data %q, read %q", data, ev.Data)
		}
	})
}
