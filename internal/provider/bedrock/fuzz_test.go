package bedrock

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"testing"

	"github.com/junctionhq/junction/internal/testkit/fakebedrock"
)

// replay is a transport that answers every request with 200 and body as an
// AWS event stream, as Bedrock's ConverseStream does.
type replay struct{ body atomic.Pointer[[]byte] }

func (rt *replay) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Request: r, ContentLength: -1,
		Header: http.Header{"Content-Type": {"application/vnd.amazon.eventstream"}},
		Body:   io.NopCloser(bytes.NewReader(*rt.body.Load()))}, nil
}

// FuzzConverseStream: whatever bytes come back as a ConverseStream event
// stream (truncated, corrupt checksums, unknown events, bad JSON), reading
// them ends in events and then io.EOF or an error; it never panics or
// hangs.
func FuzzConverseStream(f *testing.F) {
	for _, name := range []string{"stream_text.json", "stream_tool.json"} {
		raw, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		var fs []fakebedrock.Frame
		if err := json.Unmarshal(raw, &fs); err != nil {
			f.Fatal(err)
		}
		var buf bytes.Buffer
		for _, fr := range fs {
			if err := fr.Encode(&buf); err != nil {
				f.Fatal(err)
			}
		}
		f.Add(buf.Bytes())
		f.Add(buf.Bytes()[:buf.Len()/2])
	}
	f.Add([]byte{})
	f.Add([]byte("not an event stream"))
	rt := &replay{}
	p, err := New(f.Context(), Config{Name: "bedrock-fuzz", Region: "us-east-1", Endpoint: "http://bedrock.invalid",
		AccessKeyID: "AKIDTEST", SecretAccessKey: "secret", HTTPClient: &http.Client{Transport: rt}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rt.body.Store(&body)
		s, err := p.ChatStream(t.Context(), hello)
		if err != nil {
			return
		}
		defer s.Close()
		for n := 0; ; n++ {
			if n > len(body)+2 {
				t.Fatalf("%d events from %d bytes", n, len(body))
			}
			if _, err := s.Recv(); err != nil {
				return
			}
		}
	})
}
