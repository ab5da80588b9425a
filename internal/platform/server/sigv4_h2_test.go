package server_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// hmacSum is HMAC-SHA256 of data under key.
func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// signAuthority signs r the way the AWS SDK for JavaScript signs over
// HTTP/2: the :authority pseudo-header, not host, among the signed
// headers, its value the authority the request goes to. The canonical
// request is built here from the SigV4 specification, independently of
// Junction's verifier.
func signAuthority(r *http.Request, body, authority, akid, secret string, at time.Time) {
	amzDate := at.UTC().Format("20060102T150405Z")
	day := amzDate[:8]
	sum := sha256.Sum256([]byte(body))
	payload := hex.EncodeToString(sum[:])
	r.Header.Set("X-Amz-Date", amzDate)
	r.Header.Set("X-Amz-Content-Sha256", payload)
	// The canonical URI escapes the path as sent once more: %3A becomes %253A.
	var uri strings.Builder
	for _, c := range []byte(r.URL.EscapedPath()) {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			uri.WriteByte(c)
		} else {
			uri.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	signed := ":authority;content-type;x-amz-content-sha256;x-amz-date"
	canonical := r.Method + "\n" + uri.String() + "\n\n" +
		":authority:" + authority + "\n" +
		"content-type:" + r.Header.Get("Content-Type") + "\n" +
		"x-amz-content-sha256:" + payload + "\n" +
		"x-amz-date:" + amzDate + "\n\n" +
		signed + "\n" + payload
	scope := day + "/us-east-1/bedrock/aws4_request"
	creq := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(creq[:])
	key := hmacSum(hmacSum(hmacSum(hmacSum([]byte("AWS4"+secret), day), "us-east-1"), "bedrock"), "aws4_request")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+akid+"/"+scope+", SignedHeaders="+signed+
		", Signature="+hex.EncodeToString(hmacSum(key, toSign)))
}

// TestSigV4AuthorityOverHTTP2: a Converse call signed over :authority
// arrives over h2c and is accepted and attributed to the credential's
// key; the same signature over a changed body or another authority is
// refused.
func TestSigV4AuthorityOverHTTP2(t *testing.T) {
	isolateAWS(t)
	fake := &fakeopenai.Server{Record: true, PromptTokens: 12, CompletionTokens: 5}
	j := start(t, fake, bedrockModels)
	keyID, _ := j.createKey("js-sdk", map[string]string{"team": "web"})
	akid, secret := j.awsCredentials(keyID)
	c := h2cClient()
	authority := strings.TrimPrefix(j.url, "http://")
	const body = `{"messages":[{"role":"user","content":[{"text":"Say hello"}]}]}`
	url := j.url + "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"

	send := func(url, sent, host string) (int, string, string) {
		t.Helper()
		r, _ := http.NewRequest("POST", url, strings.NewReader(sent))
		r.Header.Set("Content-Type", "application/json")
		signAuthority(r, body, authority, akid, secret, time.Now())
		r.Host = host
		resp, err := c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), string(b)
	}

	status, _, b := send(url, body, authority)
	if status != http.StatusOK || !strings.Contains(b, "Hello from the fake upstream. Junction forwarded this.") {
		t.Fatalf("signed over :authority: %d %s", status, b)
	}
	if r := j.records(1)[0]; r.KeyID != keyID || r.Tags["team"] != "web" || r.Surface != "bedrock" {
		t.Fatalf("record %+v", r)
	}

	// The event stream of converse-stream, signed the same way.
	status, _, b = send(url+"-stream", body, authority)
	if status != http.StatusOK || !strings.Contains(b, "messageStop") || !strings.Contains(b, `"text":"forwarded "`) || !strings.Contains(b, `"stopReason":"end_turn"`) {
		t.Fatalf("converse-stream signed over :authority: %d %q", status, b)
	}

	for name, tc := range map[string]struct{ body, host string }{
		"body changed after signing": {strings.Replace(body, "hello", "HELLO", 1), authority},
		"sent to another authority":  {body, "junction.example:443"},
	} {
		status, code, b := send(url, tc.body, tc.host)
		if status != http.StatusForbidden || code != "InvalidSignatureException" {
			t.Errorf("%s: %d %s %s, want 403 InvalidSignatureException", name, status, code, b)
		}
	}
	if n := len(fake.Requests()); n != 2 {
		t.Fatalf("%d requests reached the upstream, want only the 2 signed ones", n)
	}
}
