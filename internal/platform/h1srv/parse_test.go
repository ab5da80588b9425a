package h1srv

import (
	"bufio"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseHead checks the head parser against net/http's: it never
// panics, and a head both accept gives the same method, target, host,
// headers and body length.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: localhost:8080\r\ncontent-type: application/json\r\nContent-Length: 12\r\nAuthorization: Bearer k\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		"GET http://example.com/x HTTP/1.1\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		head, err := readHead(bufio.NewReader(strings.NewReader(s)), nil, 1<<20)
		if err != nil {
			return
		}
		r, err := parseHead(string(head))
		if err != nil || r.handOff {
			return
		}
		std, err := http.ReadRequest(bufio.NewReader(strings.NewReader(string(head))))
		if err != nil {
			return // net/http is stricter in places (Host syntax, some targets)
		}
		if r.method != std.Method || r.target != std.RequestURI || r.host != std.Host {
			t.Fatalf("method/target/host %q %q %q; net/http %q %q %q", r.method, r.target, r.host, std.Method, std.RequestURI, std.Host)
		}
		if r.url.String() != std.URL.String() {
			t.Fatalf("URL %q; net/http %q", r.url, std.URL)
		}
		if !reflect.DeepEqual(r.header, std.Header) {
			t.Fatalf("header %q; net/http %q", r.header, std.Header)
		}
		if r.contentLength != std.ContentLength && !(r.contentLength == 0 && std.ContentLength == 0) {
			t.Fatalf("content length %d; net/http %d", r.contentLength, std.ContentLength)
		}
		if r.close != std.Close {
			t.Fatalf("close %v; net/http %v", r.close, std.Close)
		}
	})
}

func BenchmarkParseHead(b *testing.B) {
	const s = "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: Go-http-client/1.1\r\n" +
		"Content-Length: 120\r\nAuthorization: Bearer sk-0123456789\r\nContent-Type: application/json\r\nAccept-Encoding: gzip\r\n\r\n"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseHead(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseHeadNetHTTP(b *testing.B) {
	const s = "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: Go-http-client/1.1\r\n" +
		"Content-Length: 120\r\nAuthorization: Bearer sk-0123456789\r\nContent-Type: application/json\r\nAccept-Encoding: gzip\r\n\r\n"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := http.ReadRequest(bufio.NewReader(strings.NewReader(s))); err != nil {
			b.Fatal(err)
		}
	}
}
