package h1srv

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
)

// errTrailerTooLarge is a chunked body's trailer section past its cap.
var errTrailerTooLarge = errors.New("h1srv: request trailer too large")

// body is a request body: Content-Length bytes or chunks, read from the
// connection's buffered reader. The first read of a body whose client
// waits for "100 Continue" sends it.
type body struct {
	c *conn
	w *response
	// remaining is what is left of a Content-Length body.
	remaining      int64
	chunked        bool
	chunks         io.Reader
	expectContinue bool // 100 Continue is still to be sent
	done           bool // read to its end
	closed         bool // Close was called, or the handler returned
	err            error
}

func (b *body) init() { b.chunks = httputil.NewChunkedReader(b.c.br) }

// Read implements io.Reader.
func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.read(p)
}

// Close implements io.Closer. What is left unread is dealt with after the
// response: read and dropped, or the connection closes.
func (b *body) Close() error {
	b.closed = true
	return nil
}

func (b *body) read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.expectContinue {
		b.expectContinue = false
		if !b.w.committed && b.w.err == nil {
			bw := b.c.bw
			bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := bw.Flush(); err != nil {
				b.w.fail(err)
			}
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	if b.chunked {
		n, err = b.chunks.Read(p)
		if err == io.EOF {
			if err = readTrailer(b.c.br); err == nil {
				b.end()
				err = io.EOF
			}
		}
	} else {
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
		n, err = b.c.br.Read(p)
		b.remaining -= int64(n)
		switch {
		case b.remaining == 0:
			b.end()
			err = io.EOF
		case err == io.EOF:
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// end marks the body read whole: the client hanging up from now on
// cancels the request (once the watch starts, see watchDelay).
func (b *body) end() {
	b.done = true
	b.c.startWatch()
}

// discard reads what is left of the body and drops it, if that is at most
// maxDiscard and its client is sending it; it reports whether the body
// has been read whole.
func (b *body) discard() bool {
	if b.done {
		return true
	}
	if b.expectContinue || b.err != nil || !b.chunked && b.remaining > maxDiscard {
		return false
	}
	var buf [512]byte
	for n := 0; n <= maxDiscard; {
		m, err := b.read(buf[:])
		n += m
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}

// readTrailer reads a chunked body's trailer section, through its empty
// line, and drops it.
func readTrailer(br *bufio.Reader) error {
	for size, mid := 0, false; ; {
		line, err := br.ReadSlice('\n')
		size += len(line)
		if size > 64<<10 {
			return errTrailerTooLarge
		}
		if err == bufio.ErrBufferFull {
			mid = true
			continue
		}
		if err != nil {
			return err
		}
		if !mid && (len(line) == 1 || len(line) == 2 && line[0] == '\r') {
			return nil
		}
		mid = false
	}
}
