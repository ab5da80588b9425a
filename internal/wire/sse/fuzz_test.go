package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
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

// FuzzWholeMatchesLines: the reader gives the same events and the same
// end whether an event is taken whole from the buffer or line by line,
// however the bytes arrive.
func FuzzWholeMatchesLines(f *testing.F) {
	for _, seed := range []string{
		"data: {\"a\":1}\n\ndata: [DONE]\n\n",
		": keep-alive\n\ndata: x\n\n\n\ndata: y\r\n\r\ndata: z\ndata: w\n\nevent: e\ndata: v\n\n",
		"data: \n\ndata:\n\ndata: cut", "data: a\n", "data: a\n\n\n", "data: a\r\n\n",
	} {
		f.Add([]byte(seed), uint8(0))
	}
	f.Fuzz(func(t *testing.T, raw []byte, how uint8) {
		read := func(lines bool) string {
			var in io.Reader = bytes.NewReader(raw)
			switch how % 3 {
			case 1:
				in = iotest.OneByteReader(in)
			case 2:
				in = iotest.HalfReader(in)
			}
			r := NewReader(in)
			r.lines = lines
			var out strings.Builder
			for n := 0; n <= len(raw)+1; n++ {
				ev, err := r.Next()
				if err != nil {
					fmt.Fprintf(&out, "end %v", err)
					break
				}
				fmt.Fprintf(&out, "%q %q\n", ev.Name, ev.Data)
			}
			return out.String()
		}
		if a, b := read(false), read(true); a != b {
			t.Fatalf("whole:\n%s\nlines:\n%s", a, b)
		}
	})
}
