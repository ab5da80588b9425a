package sigv4

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzVerify: a request signed by the AWS SDK's own signer verifies,
// whatever its path, query and body; the same request with its body
// changed does not; and a fuzzed Authorization header or date is refused
// with an *Error, never a panic.
func FuzzVerify(f *testing.F) {
	f.Add("model/anthropic.claude-3-haiku:0/converse", "a=1&b=%20x", `{"messages":[]}`, "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=00", "20260101T000000Z")
	f.Add("a b/é/../%2F", "x", "", "AWS4-HMAC-SHA256 ", "")
	f.Add("", "=&=", "body", "Bearer x", "garbage")
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	v := &Verifier{Service: "bedrock", Secrets: secrets{testAKID: testSecret}, Now: func() time.Time { return at }}
	f.Fuzz(func(t *testing.T, path, query, body, auth, date string) {
		u := &url.URL{Scheme: "https", Host: "bedrock-runtime.us-east-1.amazonaws.com", Path: "/" + path, RawQuery: url.Values{"q": {query}}.Encode()}
		r, err := http.NewRequest("POST", u.String(), strings.NewReader(body))
		if err != nil {
			return
		}
		sign(t, r, body, testAKID, testSecret, at)
		if _, err := v.Verify(r, []byte(body)); err != nil {
			t.Fatalf("an SDK-signed request to %q (query %q) failed: %v", u.String(), query, err)
		}
		if _, err := v.Verify(r, []byte(body+"x")); err == nil {
			t.Fatal("a changed body verified")
		}
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Date", date)
		if _, err := v.Verify(r, []byte(body)); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code == "" {
				t.Fatalf("Verify returned %v, want an *Error with a code", err)
			}
		}
	})
}
