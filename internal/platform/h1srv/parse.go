package h1srv

import (
	"bufio"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// errHeadTooLarge is a request head past MaxHeaderBytes.
var errHeadTooLarge = errors.New("request head too large")

// readHead reads a request head, through its empty line, appending it to
// buf. Empty lines before the request line are skipped.
func readHead(br *bufio.Reader, buf []byte, max int) ([]byte, error) {
	buf = buf[:0]
	line := 0 // where the current line starts in buf
	for {
		b, err := br.ReadSlice('\n')
		buf = append(buf, b...)
		if len(buf) > max {
			return buf, errHeadTooLarge
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return buf, err
		}
		if n := len(buf) - line; n == 1 || n == 2 && buf[line] == '\r' {
			if line > 0 {
				return buf, nil
			}
			buf = buf[:0] // an empty line before the request line
			continue
		}
		line = len(buf)
	}
}

// headError is a request head that cannot be served: the status to answer
// and why.
type headError struct {
	status int
	msg    string
}

func (e *headError) Error() string { return e.msg }

func badRequest(msg string) *headError { return &headError{http.StatusBadRequest, msg} }

// request is a parsed request head.
type request struct {
	method, target, proto string
	major, minor          int
	header                http.Header
	url                   *url.URL
	host                  string
	contentLength         int64 // -1 for chunked
	chunked               bool
	close                 bool // the client asked for the connection to close
	expectContinue        bool
	// handOff is set for what the fallback server takes: the HTTP/2
	// preface, CONNECT and Upgrade requests. Nothing else is parsed then.
	handOff bool
}

// parseHead parses the request head s (its request line and header lines,
// each ending in "\n" or "\r\n", then an empty line). Keys and values are
// substrings of s.
func parseHead(s string) (*request, error) {
	line, rest := cutLine(s)
	r := &request{}
	var ok bool
	if r.method, line, ok = strings.Cut(line, " "); !ok {
		return nil, badRequest("malformed request line")
	}
	if r.target, r.proto, ok = strings.Cut(line, " "); !ok {
		return nil, badRequest("malformed request line")
	}
	if r.method == "PRI" && r.target == "*" && r.proto == "HTTP/2.0" {
		r.handOff = true
		return r, nil
	}
	if r.major, r.minor, ok = http.ParseHTTPVersion(r.proto); !ok {
		return nil, badRequest("malformed HTTP version")
	}
	if r.major != 1 {
		return nil, &headError{http.StatusHTTPVersionNotSupported, "unsupported HTTP version"}
	}
	if !validMethod(r.method) {
		return nil, badRequest("invalid method")
	}
	if r.method == http.MethodConnect {
		r.handOff = true
		return r, nil
	}
	if r.target == "" {
		return nil, badRequest("missing request target")
	}

	lines := strings.Count(rest, "\n")
	r.header = make(http.Header, lines)
	values := make([]string, lines)
	used := 0
	for {
		line, rest = cutLine(rest)
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, badRequest("obsolete line folding in a header")
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || !validFieldName(k) {
			return nil, badRequest("malformed header line")
		}
		v = strings.Trim(v, " \t")
		if !httpguts.ValidHeaderFieldValue(v) {
			return nil, badRequest("invalid header value")
		}
		if !canonical(k) {
			k = textproto.CanonicalMIMEHeaderKey(k)
		}
		if vs, ok := r.header[k]; ok {
			r.header[k] = append(vs, v)
			continue
		}
		values[used] = v
		r.header[k] = values[used : used+1 : used+1]
		used++
	}
	return r, r.interpret()
}

// interpret reads what the server acts on from the parsed head: the URL
// and host, the body's framing, keep-alive, Expect and Upgrade.
func (r *request) interpret() error {
	h := r.header
	if _, ok := h["Upgrade"]; ok {
		r.handOff = true
		return nil
	}
	var err error
	if r.url, err = url.ParseRequestURI(r.target); err != nil {
		return badRequest("malformed request target")
	}
	hosts := h["Host"]
	switch {
	case len(hosts) > 1:
		return badRequest("too many Host headers")
	case len(hosts) == 0 && r.minor >= 1:
		return badRequest("missing required Host header")
	case len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]):
		return badRequest("malformed Host header")
	}
	if len(hosts) == 1 {
		r.host = hosts[0]
	}
	if r.url.Host != "" {
		r.host = r.url.Host
	}
	delete(h, "Host")

	conn := h["Connection"]
	if r.minor == 0 {
		r.close = !hasToken(conn, "keep-alive")
	} else {
		r.close = hasToken(conn, "close")
	}
	if e, ok := h["Expect"]; ok {
		if len(e) != 1 || !strings.EqualFold(e[0], "100-continue") {
			return &headError{http.StatusExpectationFailed, "unsupported Expect header"}
		}
		r.expectContinue = r.minor >= 1
	}

	if te, ok := h["Transfer-Encoding"]; ok {
		if r.minor == 0 {
			return badRequest("Transfer-Encoding in an HTTP/1.0 request")
		}
		if len(te) != 1 || !strings.EqualFold(strings.TrimSpace(te[0]), "chunked") {
			return &headError{http.StatusNotImplemented, "unsupported transfer encoding"}
		}
		// A chunked body's length is its chunks'; a Content-Length beside
		// it is dropped, as net/http does.
		delete(h, "Content-Length")
		delete(h, "Transfer-Encoding") // it is Request.TransferEncoding, as in net/http
		r.chunked, r.contentLength = true, -1
		return nil
	}
	cl := h["Content-Length"]
	if len(cl) == 0 {
		return nil
	}
	for _, v := range cl[1:] {
		if v != cl[0] {
			return badRequest("conflicting Content-Length headers")
		}
	}
	n, err := strconv.ParseUint(cl[0], 10, 63)
	if err != nil || cl[0][0] == '+' {
		return badRequest("bad Content-Length")
	}
	r.contentLength = int64(n)
	return nil
}

// cutLine splits s after its first line, dropping the line's "\r\n" or
// "\n".
func cutLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// hasToken reports whether a comma-separated header holds token, in any
// case.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func validMethod(m string) bool {
	return m != "" && validFieldName(m)
}

// validFieldName reports whether s is an HTTP token.
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

// canonical reports whether k is already in canonical MIME header form
// (each word's first letter upper case, the rest lower case), so that it
// can be used as it is.
func canonical(k string) bool {
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}
