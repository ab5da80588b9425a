package modelserver

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// bufPool recycles request and response buffers, so that a small
// invocation does not allocate them anew.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// getBuf returns a pooled buffer of length 0.
func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

// putBuf returns b to the pool; buffers grown past 1 MiB are let go.
func putBuf(p *[]byte, b []byte) {
	if cap(b) > 1<<20 {
		return
	}
	*p = b[:0]
	bufPool.Put(p)
}

// errTooLarge reports a body over maxBody.
var errTooLarge = errors.New("request body is over 6 MiB (6291456 bytes), the most InvokeEndpoint accepts")

// readBody appends the request body, at most maxBody bytes, to dst.
func readBody(w http.ResponseWriter, r *http.Request, dst []byte) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, maxBody)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := body.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return dst, errTooLarge
			}
			return dst, err
		}
	}
}

// mediaType returns the media type of a Content-Type or Accept element,
// lower-cased and without parameters.
func mediaType(v string) string {
	t, _, _ := strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// negotiate returns the offer the Accept header rates highest (the earlier
// offer on a tie), or "" when it allows none. An empty header allows
// everything and picks the first offer.
func negotiate(accept string, offers ...string) string {
	if strings.TrimSpace(accept) == "" {
		return offers[0]
	}
	best, bestQ := "", 0.0
	for _, offer := range offers {
		if q := acceptQ(accept, offer); q > bestQ {
			best, bestQ = offer, q
		}
	}
	return best
}

// acceptQ returns the quality the Accept header gives media type t: the q
// of the most specific range that matches it (t itself, then type/*, then
// */*), or 0 when none does.
func acceptQ(accept, t string) float64 {
	major, _, _ := strings.Cut(t, "/")
	q, specificity := 0.0, -1
	for accept != "" {
		var part string
		part, accept, _ = strings.Cut(accept, ",")
		rng, params, _ := strings.Cut(part, ";")
		rng = strings.ToLower(strings.TrimSpace(rng))
		s := -1
		switch {
		case rng == t:
			s = 2
		case strings.HasSuffix(rng, "/*") && rng[:len(rng)-2] == major:
			s = 1
		case rng == "*/*" || rng == "*":
			s = 0
		}
		if s > specificity {
			specificity, q = s, qValue(params)
		}
	}
	return q
}

// qValue reads the q parameter of an Accept element; 1 when absent.
func qValue(params string) float64 {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, ok := strings.Cut(p, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && q >= 0 && q <= 1 {
				return q
			}
			return 0
		}
	}
	return 1
}

// appendProb appends a probability with six significant digits.
func appendProb(b []byte, p float64) []byte {
	return strconv.AppendFloat(b, p, 'g', 6, 64)
}

// appendCSVField appends s as one CSV field, quoted only when it must be.
func appendCSVField(b []byte, s string) []byte {
	if !strings.ContainsAny(s, ",\"\r\n") {
		return append(b, s...)
	}
	b = append(b, '"')
	b = append(b, strings.ReplaceAll(s, `"`, `""`)...)
	return append(b, '"')
}
