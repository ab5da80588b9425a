// Package sse reads and writes Server-Sent Events as used by the OpenAI and
// Anthropic streaming APIs. It handles only the framing: "event:" and
// "data:" fields, blank-line message boundaries and comments.
package sse

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
)

// Event is one SSE message. Data is valid until the next call to Next.
type Event struct {
	// Name is the "event:" field, empty when the message has none.
	Name string
	// Data is the "data:" field; several data lines are joined by "\n".
	Data []byte
}

// Reader reads events from an SSE body.
type Reader struct {
	r    *bufio.Reader
	data []byte
	name string
	// err is a read error met before any byte of the next event.
	err error
	// lines turns whole off: tests read with the line reader alone.
	lines bool
}

// readerSize is a Reader's buffer: a chunk or two of an LLM stream (a few
// hundred bytes each) fits many times over, and a longer line is gathered
// whole (Next). A stream held open keeps it, so it stays small: at 5,000
// open streams every KB here is 5 MB of the gateway's memory.
const readerSize = 4 << 10

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, readerSize)}
}

// Ready reports whether a whole event is already buffered, so that Next
// will return without waiting on the network.
func (r *Reader) Ready() bool {
	n := r.r.Buffered()
	if n == 0 {
		return false
	}
	b, _ := r.r.Peek(n)
	return bytes.Contains(b, []byte("\n\n")) || bytes.Contains(b, []byte("\r\n\r\n"))
}

// Next returns the next event. It returns io.EOF when the body ends on a
// message boundary and io.ErrUnexpectedEOF when it ends inside a message.
func (r *Reader) Next() (Event, error) {
	if ev, ok := r.whole(); ok {
		return ev, nil
	}
	if err := r.err; err != nil {
		r.err = nil
		return Event{}, err // at an event's start: io.EOF is a clean end
	}
	r.data = r.data[:0]
	r.name = ""
	hasData := false
	for {
		line, err := r.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: gather the rest of it.
			long := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = r.r.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil {
			if err == io.EOF {
				if len(bytes.TrimSpace(line)) == 0 && !hasData && r.name == "" {
					return Event{}, io.EOF
				}
				return Event{}, io.ErrUnexpectedEOF
			}
			return Event{}, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if hasData || r.name != "" {
				return Event{Name: r.name, Data: r.data}, nil
			}
			continue
		}
		if line[0] == ':' {
			continue // comment, used as keep-alive
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		switch string(field) {
		case "data":
			if hasData {
				r.data = append(r.data, '\n')
			}
			r.data = append(r.data, value...)
			hasData = true
		case "event":
			r.name = string(value)
		}
	}
}

// whole returns the next event without copying it when the buffer already
// holds it whole as one "data: " line and a blank line (how every OpenAI-
// compatible server frames a chunk): Data then points into the buffer,
// which the next call may refill. Anything else — a name, several data
// lines, a comment, CR LF endings, an event not yet all buffered — is
// left to the line reader in Next.
func (r *Reader) whole() (Event, bool) {
	if r.lines {
		return Event{}, false
	}
	n := r.r.Buffered()
	if n == 0 {
		// Wait for the next bytes here, where a whole event is most
		// often what arrives; an error is Next's to return.
		if _, r.err = r.r.Peek(1); r.err != nil {
			return Event{}, false
		}
		n = r.r.Buffered()
	}
	if n < len(dataPrefix)+2 {
		return Event{}, false
	}
	b, _ := r.r.Peek(n)
	if !bytes.HasPrefix(b, dataPrefix) {
		return Event{}, false
	}
	end := bytes.IndexByte(b[len(dataPrefix):], '\n')
	if end < 0 {
		return Event{}, false
	}
	end += len(dataPrefix)
	if end+1 >= len(b) || b[end+1] != '\n' {
		return Event{}, false
	}
	data := b[len(dataPrefix):end]
	if bytes.IndexByte(data, '\r') >= 0 {
		return Event{}, false
	}
	r.r.Discard(end + 2)
	return Event{Data: data}, true
}

var dataPrefix = []byte("data: ")

// Writer writes events to an HTTP response and flushes each one, so a
// streamed chunk leaves the gateway as soon as it is written.
type Writer struct {
	w   io.Writer
	f   http.Flusher
	buf []byte
}

// NewWriter returns a Writer on w. If w is an http.ResponseWriter, the
// SSE headers are set; call it before writing anything else.
func NewWriter(w io.Writer) *Writer {
	sw := &Writer{w: w, buf: make([]byte, 0, 1024)}
	sw.f, _ = w.(http.Flusher)
	if rw, ok := w.(http.ResponseWriter); ok {
		// The names are canonical already: set them as Header.Set would,
		// the four values in one array.
		h := rw.Header()
		v := []string{"text/event-stream", "no-cache", "keep-alive", "no"}
		h["Content-Type"] = v[0:1:1]
		h["Cache-Control"] = v[1:2:2]
		h["Connection"] = v[2:3:3]
		h["X-Accel-Buffering"] = v[3:4:4]
	}
	return sw
}

// Write sends one event with the given name (omitted when empty) and data,
// then flushes.
func (w *Writer) Write(name string, data []byte) error { return w.WriteMore(name, data, false) }

// WriteMore sends one event and flushes it unless more is true: when the
// next event is already at hand, one flush after it carries both, saving a
// write system call without delaying either.
func (w *Writer) WriteMore(name string, data []byte, more bool) error {
	b := w.buf[:0]
	if name != "" {
		b = append(b, "event: "...)
		b = append(b, name...)
		b = append(b, '\n')
	}
	b = append(b, "data: "...)
	b = append(b, data...)
	b = append(b, "\n\n"...)
	w.buf = b
	if _, err := w.w.Write(b); err != nil {
		return err
	}
	if !more && w.f != nil {
		w.f.Flush()
	}
	return nil
}

// Flush sends what WriteMore held back.
func (w *Writer) Flush() {
	if w.f != nil {
		w.f.Flush()
	}
}
