package h1srv

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// bufferedBody is how much of a response body is held back before the
// head is written: a handler that writes less and returns without
// flushing gets a Content-Length response, one write in all.
const bufferedBody = 4096

// maxDiscard is how much of an unread request body is read and dropped
// after the response so that the connection can carry another request;
// past it the connection closes instead (net/http's figure).
const maxDiscard = 256 << 10

// response is the http.ResponseWriter (and http.Flusher) of one request.
type response struct {
	c      *conn
	req    *http.Request
	header http.Header
	status int
	// contentLength is the handler's Content-Length, -1 when it set none;
	// written counts the body bytes it wrote.
	contentLength int64
	written       int64

	wroteHeader bool // WriteHeader ran (status is final)
	committed   bool // the head went to the connection's writer
	chunked     bool // the body goes in chunks
	head        bool // a HEAD request: no body goes out
	http10      bool
	wantsClose  bool // the client asked for the connection to close
	closeAfter  bool // the connection closes after this response
	fullDuplex  bool
	err         error // a write to the client failed

	buf  []byte // the body held back before the head is written
	body body
}

// Header implements http.ResponseWriter.
func (w *response) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter. Informational statuses
// (1xx but 101) go out at once, with the headers set so far.
func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		if w.err != nil {
			return
		}
		if code == http.StatusContinue {
			w.body.expectContinue = false
		}
		w.writeStatusLine(code)
		w.writeHeaders(false)
		w.c.bw.WriteString("\r\n")
		if err := w.c.bw.Flush(); err != nil {
			w.fail(err)
		}
		return
	}
	w.wroteHeader, w.status = true, code
	if cl, ok := w.header["Content-Length"]; ok && len(cl) > 0 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.contentLength = n
		} else {
			delete(w.header, "Content-Length")
		}
	}
}

// Write implements http.ResponseWriter.
func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	w.written += int64(len(p))
	if w.contentLength >= 0 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if !w.committed {
		if len(w.buf)+len(p) <= bufferedBody {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		w.commit(false)
	}
	return w.writeBody(p)
}

// WriteString lets io.WriteString skip a conversion.
func (w *response) WriteString(s string) (int, error) {
	if !w.committed && len(w.buf)+len(s) <= bufferedBody && w.wroteHeader && bodyAllowed(w.status) &&
		w.err == nil && (w.contentLength < 0 || w.written+int64(len(s)) <= w.contentLength) {
		w.written += int64(len(s))
		w.buf = append(w.buf, s...)
		return len(s), nil
	}
	return w.Write([]byte(s))
}

// Flush implements http.Flusher.
func (w *response) Flush() { w.FlushError() }

// FlushError sends what was written so far; http.ResponseController
// calls it.
func (w *response) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false)
	}
	if w.err != nil {
		return w.err
	}
	if err := w.c.bw.Flush(); err != nil {
		w.fail(err)
		return err
	}
	return nil
}

// SetReadDeadline sets the connection's read deadline, for
// http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error { return w.c.nc.SetReadDeadline(t) }

// SetWriteDeadline sets the connection's write deadline, for
// http.ResponseController.
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.nc.SetWriteDeadline(t) }

// EnableFullDuplex lets the handler read the request body after writing
// the response, for http.ResponseController: the unread body is then not
// read and dropped when the head goes out.
func (w *response) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}

// fail records a failed write: the client is gone, so the request's
// context is cancelled and the connection will close.
func (w *response) fail(err error) {
	if w.err == nil {
		w.err = err
		w.c.cancel()
	}
}

func (w *response) writeBody(p []byte) (int, error) {
	if w.head {
		return len(p), nil
	}
	bw := w.c.bw
	if w.chunked {
		b := strconv.AppendInt(bw.AvailableBuffer(), int64(len(p)), 16)
		b = append(b, '\r', '\n')
		bw.Write(b)
	}
	n, err := bw.Write(p)
	if err == nil && w.chunked {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		w.fail(err)
		return n, err
	}
	return n, nil
}

// commit writes the response head, choosing the body's framing: the
// handler's Content-Length; the held-back body's length when the handler
// is done (final); else chunks, or, for HTTP/1.0, the connection's end.
func (w *response) commit(final bool) {
	w.committed = true
	allowed := bodyAllowed(w.status)
	h := w.header
	cl := int64(-1)
	switch {
	case !allowed:
		if w.status == http.StatusNotModified {
			cl = w.contentLength
		}
	case w.contentLength >= 0:
		cl = w.contentLength
	case final && (!w.head || len(w.buf) > 0):
		cl = int64(len(w.buf))
	case w.head:
	case w.http10:
		w.closeAfter = true
	default:
		w.chunked = true
	}
	if w.wantsClose || w.c.s.shutting.Load() || hasToken(h["Connection"], "close") {
		w.closeAfter = true
	}
	if !w.body.done && !w.closeAfter && !w.fullDuplex && !w.body.discard() {
		w.closeAfter = true
	}

	w.writeStatusLine(w.status)
	w.writeHeaders(true)
	bw := w.c.bw
	if _, ok := h["Content-Type"]; !ok && allowed && len(w.buf) > 0 && len(h["Content-Encoding"]) == 0 {
		bw.WriteString("Content-Type: ")
		bw.WriteString(http.DetectContentType(w.buf))
		bw.WriteString("\r\n")
	}
	if _, ok := h["Date"]; !ok {
		bw.Write(dateLine())
	}
	if cl >= 0 {
		b := append(bw.AvailableBuffer(), "Content-Length: "...)
		b = strconv.AppendInt(b, cl, 10)
		bw.Write(append(b, '\r', '\n'))
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case w.closeAfter:
		bw.WriteString("Connection: close\r\n")
	case w.http10:
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
	if len(w.buf) > 0 {
		buf := w.buf
		w.buf = w.buf[:0]
		w.writeBody(buf)
	}
}

func (w *response) writeStatusLine(code int) {
	bw := w.c.bw
	b := bw.AvailableBuffer()
	if w.http10 {
		b = append(b, "HTTP/1.0 "...)
	} else {
		b = append(b, "HTTP/1.1 "...)
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, '\r', '\n')
	bw.Write(b)
}

// writeHeaders writes the handler's header lines; final leaves out the
// framing ones (Content-Length, Transfer-Encoding, Connection), which
// commit writes itself. Lines with an invalid name are dropped; line
// breaks in values become spaces.
func (w *response) writeHeaders(final bool) {
	bw := w.c.bw
	for k, vs := range w.header {
		if final && (k == "Content-Length" || k == "Transfer-Encoding" || k == "Connection") || !validFieldName(k) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(headerValue(v))
			bw.WriteString("\r\n")
		}
	}
}

// headerValue is v as a response header carries it: line breaks become
// spaces and surrounding white space goes, as net/http writes it.
func headerValue(v string) string {
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' {
			return strings.TrimSpace(strings.Map(func(r rune) rune {
				if r == '\r' || r == '\n' {
					return ' '
				}
				return r
			}, v))
		}
	}
	if n := len(v); n > 0 && (v[0] <= ' ' || v[n-1] <= ' ') {
		return strings.TrimSpace(v)
	}
	return v
}

// finish completes the response after the handler returned and reports
// whether the connection may carry another request.
func (w *response) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	bw := w.c.bw
	if !w.committed {
		w.commit(true)
	} else if w.chunked && w.err == nil {
		bw.WriteString("0\r\n\r\n")
	}
	if w.contentLength >= 0 && w.written < w.contentLength && !w.head && bodyAllowed(w.status) {
		w.closeAfter = true // the client waits for bytes that will not come
	}
	if err := bw.Flush(); err != nil {
		w.fail(err)
	}
	if w.err != nil || w.closeAfter {
		return false
	}
	return w.body.done || w.body.discard()
}

// bodyAllowed reports whether a response with status may have a body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// date is the Date header line for one second.
type date struct {
	sec  int64
	line []byte
}

var dates atomic.Pointer[date]

// dateLine returns the Date header line for now, made once a second.
func dateLine() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := dates.Load(); d != nil && d.sec == sec {
		return d.line
	}
	d := &date{sec: sec, line: []byte("Date: " + now.UTC().Format(http.TimeFormat) + "\r\n")}
	dates.Store(d)
	return d.line
}
