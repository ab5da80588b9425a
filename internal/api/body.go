package api

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// BodyBudget bounds the bytes of request bodies held in memory at once,
// across all requests: a body is counted from before it is read until its
// request ends, and a body that does not fit is refused at once (503 with
// Retry-After) instead of growing the heap. Its zero value has no room;
// a nil *BodyBudget admits everything.
type BodyBudget struct {
	limit int64
	used  atomic.Int64
	// Refused counts bodies refused for want of room.
	Refused atomic.Int64
}

// NewBodyBudget returns a budget of limit bytes.
func NewBodyBudget(limit int64) *BodyBudget { return &BodyBudget{limit: limit} }

// InUse returns the bytes held now.
func (b *BodyBudget) InUse() int64 { return b.used.Load() }

// take reserves n bytes, or reports that they do not fit.
func (b *BodyBudget) take(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// reserve counts n more bytes of this request's body against its budget.
func (i *Info) reserve(n int64) bool {
	if i.Bodies == nil {
		return true
	}
	if !i.Bodies.take(n) {
		i.Bodies.Refused.Add(1)
		return false
	}
	i.held += n
	return true
}

// ReleaseBody gives back what the request's body held of the budget; the
// server calls it when the request ends.
func (i *Info) ReleaseBody() {
	if i.Bodies != nil && i.held > 0 {
		i.Bodies.used.Add(-i.held)
		i.held = 0
	}
}

// chunk is how much more of a body of unknown length is reserved at a
// time.
const chunk = 64 << 10

// ReadBody reads a request body of at most limit bytes; a larger one gets
// a 413 error. A body with a Content-Length is read into one buffer of
// exactly that size; one without grows in 64 KiB steps. Every byte is
// reserved from the server's in-flight body budget before it is read, and
// a body that does not fit is answered 503 with Retry-After, unread. A
// body that stops arriving for server.body_read_timeout gets 408.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *llm.Error) {
	if r.ContentLength > limit {
		RefuseUnread(w, r)
		return nil, tooLarge(limit)
	}
	info := InfoFrom(r.Context())
	body := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength >= 0 {
		if !info.reserve(r.ContentLength) {
			return nil, overloaded(w, r)
		}
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(body, buf); err != nil {
			return nil, readError(err, limit)
		}
		return buf, nil
	}
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			grow := min(int64(chunk), limit+1-int64(len(buf)))
			if grow <= 0 {
				return nil, tooLarge(limit)
			}
			if !info.reserve(grow) {
				return nil, overloaded(w, r)
			}
			bigger := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(bigger, buf)
			buf = bigger
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, readError(err, limit)
		}
	}
}

// RefuseUnread prepares the answer to a request whose body will not be
// read (no valid key, too large, no room): the connection closes after the
// answer, and the body's bytes are not waited for, so a client trickling
// them cannot hold the connection (net/http would otherwise read up to
// 256 KiB of the body before answering).
func RefuseUnread(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	w.Header().Set("Connection", "close")
	http.NewResponseController(w).SetReadDeadline(time.Now())
}

func overloaded(w http.ResponseWriter, r *http.Request) *llm.Error {
	RefuseUnread(w, r)
	const after = "1"
	w.Header().Set("Retry-After", after)
	e := llm.Errorf(http.StatusServiceUnavailable, llm.ErrOverloaded,
		"the server is holding as many request bodies as it may (server.max_inflight_body_bytes); retry after "+after+" s")
	e.RetryAfter = after
	return e
}

func readError(err error, limit int64) *llm.Error {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return tooLarge(limit)
	case errors.As(err, &ne) && ne.Timeout():
		return llm.Errorf(http.StatusRequestTimeout, llm.ErrTimeout,
			"the request body did not arrive in time (server.body_read_timeout); send it whole, without pauses")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return llm.BadRequest("", "the request body ended before its Content-Length")
	}
	return llm.BadRequest("", "could not read the request body: %v", err)
}

func tooLarge(limit int64) *llm.Error {
	return llm.Errorf(http.StatusRequestEntityTooLarge, llm.ErrTooLarge,
		"request body is larger than the %d-byte limit (server.max_body_bytes)", limit)
}
