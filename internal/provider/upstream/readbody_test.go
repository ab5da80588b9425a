package upstream

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// ReadBody returns the whole body whether the upstream announced its
// length or streamed it chunked, and fails on one cut short of the
// length it announced, with each client Junction builds.
func TestReadBody(t *testing.T) {
	body := strings.Repeat(`{"id":"chatcmpl-1","choices":[]}`, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sized":
			w.Header().Set("Content-Length", "3200")
			w.Write([]byte(body))
		case "/chunked":
			w.Write([]byte(body[:100]))
			w.(http.Flusher).Flush()
			w.Write([]byte(body[100:]))
		case "/short":
			conn, buf, _ := w.(http.Hijacker).Hijack()
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 3200\r\n\r\n" + body[:1000])
			buf.Flush()
			conn.Close()
		}
	}))
	defer srv.Close()
	for _, opts := range [][]Option{{Local(), Lean()}, {Local()}} {
		c := NewClient(0, opts...)
		for _, path := range []string{"/sized", "/chunked"} {
			resp, err := c.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ReadBody(resp)
			resp.Body.Close()
			if err != nil || !bytes.Equal(b, []byte(body)) {
				t.Errorf("%d options, %s: %d bytes, %v; want the %d sent", len(opts), path, len(b), err, len(body))
			}
		}
		resp, err := c.Get(srv.URL + "/short")
		if err != nil {
			continue // the client saw the cut already
		}
		b, err := ReadBody(resp)
		resp.Body.Close()
		if err == nil {
			t.Errorf("%d options: a body cut at %d of 3,200 bytes read without an error", len(opts), len(b))
		}
	}
}
