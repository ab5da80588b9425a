package upstream

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// A Local client (model servers) asks for no transparent compression, so
// an answer is passed on byte for byte as the server sent it; a client
// for remote APIs lets net/http ask for gzip.
func TestLocalClientAsksForNoCompression(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Accept-Encoding")
	}))
	defer srv.Close()
	for _, tc := range []struct {
		opts []Option
		want string
	}{{nil, "gzip"}, {[]Option{Local(), Traced()}, ""}, {[]Option{Local(), Lean()}, ""}} {
		resp, err := NewClient(0, tc.opts...).Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got != tc.want {
			t.Errorf("%d options: Accept-Encoding %q, want %q", len(tc.opts), got, tc.want)
		}
	}
}
