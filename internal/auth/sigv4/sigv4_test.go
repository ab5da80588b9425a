package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/logging"
)

// loggerFunc receives the SDK signer's log lines.
type loggerFunc func(format string, v ...any)

func (f loggerFunc) Logf(_ logging.Classification, format string, v ...any) { f(format, v...) }

const (
	testAKID   = "JKAKTESTTESTTESTTEST"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

type secrets map[string]string

func (s secrets) SecretAccessKey(id string) (string, bool) {
	v, ok := s[id]
	return v, ok
}

// rig is a server that verifies every request it receives with v, whose
// clock the test sets, and answers 204 or 403 with the failure's code and
// message.
type rig struct {
	url   string
	now   atomic.Int64
	creds chan Credential
}

func newRig(t *testing.T) *rig {
	t.Helper()
	rg := &rig{creds: make(chan Credential, 1)}
	rg.now.Store(time.Now().UnixNano())
	v := &Verifier{Service: "bedrock", Secrets: secrets{testAKID: testSecret},
		Now: func() time.Time { return time.Unix(0, rg.now.Load()) }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		cred, err := v.Verify(r, body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("Verify returned %T, want *Error", err)
			}
			w.Header().Set("X-Code", e.Code)
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, e.Message)
			return
		}
		rg.creds <- cred
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	rg.url = srv.URL
	return rg
}

// request is a request before signing: path and query are appended to the
// rig's URL as written, already escaped, as the SDK sends them.
type request struct {
	method, target string
	body           string
	header         http.Header
}

func (rg *rig) build(t *testing.T, rq request) *http.Request {
	t.Helper()
	method := rq.method
	if method == "" {
		method = http.MethodPost
	}
	r, err := http.NewRequest(method, rg.url+rq.target, strings.NewReader(rq.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range rq.header {
		r.Header[k] = vs
	}
	return r
}

// sign signs r with the SDK's own signer, as bedrockruntime does: the
// hex SHA-256 of body, signing name bedrock.
func sign(t testing.TB, r *http.Request, body, akid, secret string, at time.Time) {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret},
		r, hex.EncodeToString(sum[:]), "bedrock", "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
}

// send sends r and returns the status and the failure code and message.
func send(t *testing.T, r *http.Request) (int, string, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Code"), string(msg)
}

// resend returns a copy of a signed request with the same headers and
// body, as a replaying attacker would send it.
func resend(t *testing.T, r *http.Request, body string) *http.Request {
	t.Helper()
	c, err := http.NewRequest(r.Method, r.URL.String(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	c.Header = r.Header.Clone()
	return c
}

const converseBody = `{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}`

func TestVerifyAcceptsSDKSignatures(t *testing.T) {
	rg := newRig(t)
	cases := []struct {
		name string
		rq   request
	}{
		{"converse with an escaped model id", request{target: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse", body: converseBody,
			header: http.Header{"Content-Type": {"application/json"}, "X-Junction-Tags": {"team=search,  app=faq"}}}},
		{"model id with a slash", request{target: "/model/openai%2Fgpt-4o/converse-stream", body: converseBody}},
		{"query params", request{target: "/model/m/converse?b=2&a=1&a=0&sp=a%20b&e=&u=%C3%A9", body: converseBody}},
		{"no body", request{method: http.MethodGet, target: "/async-invoke?maxResults=10"}},
		{"repeated header", request{target: "/model/m/converse", body: converseBody, header: http.Header{"X-Amz-Meta-A": {"1", " two  words "}}}},
		{"signed payload header", request{target: "/model/m/converse", body: converseBody,
			header: http.Header{"X-Amz-Content-Sha256": {func() string { s := sha256.Sum256([]byte(converseBody)); return hex.EncodeToString(s[:]) }()}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rg.build(t, tc.rq)
			sign(t, r, tc.rq.body, testAKID, testSecret, time.Now())
			if status, code, msg := send(t, r); status != http.StatusNoContent {
				t.Fatalf("status %d %s: %s", status, code, msg)
			}
			cred := <-rg.creds
			if cred.AccessKeyID != testAKID || cred.Region != "us-east-1" || cred.Service != "bedrock" {
				t.Fatalf("credential %+v", cred)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	rg := newRig(t)
	target := "/model/anthropic.claude-v2%3A1/converse"
	now := time.Now()
	cases := []struct {
		name string
		// make returns the request to send.
		make func(t *testing.T) *http.Request
		code string
		want string
	}{
		{"tampered body", func(t *testing.T) *http.Request {
			r := rg.build(t, request{target: target, body: converseBody})
			sign(t, r, converseBody, testAKID, testSecret, now)
			tampered := strings.Replace(converseBody, "Hello", "Hallo", 1)
			r.Body = io.NopCloser(strings.NewReader(tampered))
			return r
		}, CodeInvalidSignature, "signature we calculated does not match"},
		{"body does not match the signed payload header", func(t *testing.T) *http.Request {
			sum := sha256.Sum256([]byte(converseBody))
			r := rg.build(t, request{target: target, body: converseBody, header: http.Header{"X-Amz-Content-Sha256": {hex.EncodeToString(sum[:])}}})
			sign(t, r, converseBody, testAKID, testSecret, now)
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(converseBody, "Hello", "Hallo", 1)))
			return r
		}, CodeInvalidSignature, "body changed after signing"},
		{"unsigned payload", func(t *testing.T) *http.Request {
			r := rg.build(t, request{target: target, body: converseBody, header: http.Header{"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}}})
			sign(t, r, converseBody, testAKID, testSecret, now)
			return r
		}, CodeInvalidSignature, "UNSIGNED-PAYLOAD is not accepted"},
		{"wrong secret", func(t *testing.T) *http.Request {
			r := rg.build(t, request{target: target, body: converseBody})
			sign(t, r, converseBody, testAKID, "not-the-secret", now)
			return r
		}, CodeInvalidSignature, "Check your AWS Secret Access Key"},
		{"unknown access key", func(t *testing.T) *http.Request {
			r := rg.build(t, request{target: target, body: converseBody})
			sign(t, r, converseBody, "AKIAIOSFODNN7EXAMPLE", testSecret, now)
			return r
		}, CodeUnrecognizedClient, `"AKIAIOSFODNN7EXAMPLE" is unknown or revoked`},
		{"expired", func(t *testing.T) *http.Request {
			r := rg.build(t, request{target: target, body: converseBody})
			sign(t, r, converseBody, testAKID, testSecret, now.Add(-6*time.Minute))
			return r
		}, CodeInvalidSignature, "Signature expired"},
		{"from the future", func(t *testing.T) *http.Request {
			r := rg.build(t, request{target: target, body: converseBody})
			sign(t, r, converseBody, testAKID, testSecret, now.Add(6*time.Minute))
			return r
		}, CodeInvalidSignature, "Signature not yet current"},
		{"signed header changed", func(t *testing.T) *http.Request {
			r := rg.build(t, request{target: target, body: converseBody, header: http.Header{"X-Junction-Tags": {"team=search"}}})
			sign(t, r, converseBody, testAKID, testSecret, now)
			r.Header.Set("X-Junction-Tags", "team=finance")
			return r
		}, CodeInvalidSignature, "does not match"},
		{"query changed", func(t *testing.T) *http.Request {
			r := rg.build(t, request{target: target + "?limit=1", body: converseBody})
			sign(t, r, converseBody, testAKID, testSecret, now)
			r.URL.RawQuery = "limit=2"
			return r
		}, CodeInvalidSignature, "does not match"},
		{"path changed", func(t *testing.T) *http.Request {
			r := rg.build(t, request{target: target, body: converseBody})
			sign(t, r, converseBody, testAKID, testSecret, now)
			r.URL.RawPath = strings.Replace(target, "converse", "converse-stream", 1)
			r.URL.Path = strings.Replace(r.URL.Path, "converse", "converse-stream", 1)
			return r
		}, CodeInvalidSignature, "does not match"},
		{"other service", func(t *testing.T) *http.Request {
			r := rg.build(t, request{target: target, body: converseBody})
			sum := sha256.Sum256([]byte(converseBody))
			v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret},
				r, hex.EncodeToString(sum[:]), "sagemaker", "us-east-1", now)
			return r
		}, CodeInvalidSignature, "scoped to correct service: 'bedrock'"},
		{"no credentials", func(t *testing.T) *http.Request {
			return rg.build(t, request{target: target, body: converseBody})
		}, CodeMissingToken, "Missing Authentication Token"},
		{"malformed authorization", func(t *testing.T) *http.Request {
			r := rg.build(t, request{target: target, body: converseBody})
			r.Header.Set("Authorization", Algorithm+" Credential="+testAKID+"/20260101/us-east-1/bedrock/aws4_request, Signature=00")
			return r
		}, CodeIncomplete, "SignedHeaders"},
		{"scope date is not the signing date", func(t *testing.T) *http.Request {
			r := rg.build(t, request{target: target, body: converseBody})
			sign(t, r, converseBody, testAKID, testSecret, now)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), now.UTC().Format("20060102"), "20000101", 1))
			return r
		}, CodeInvalidSignature, "valid date"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, code, msg := send(t, tc.make(t))
			if status != http.StatusForbidden || code != tc.code || !strings.Contains(msg, tc.want) {
				t.Fatalf("got %d %s %q, want 403 %s containing %q", status, code, msg, tc.code, tc.want)
			}
			if strings.Contains(msg, testSecret) {
				t.Fatal("the message shows the secret")
			}
		})
	}
}

// TestUnsignedHeadersMayChange checks that headers outside SignedHeaders
// (added by a proxy, say) do not break the signature.
func TestUnsignedHeadersMayChange(t *testing.T) {
	rg := newRig(t)
	r := rg.build(t, request{target: "/model/m/converse", body: converseBody})
	sign(t, r, converseBody, testAKID, testSecret, time.Now())
	r.Header.Set("User-Agent", "changed-after-signing")
	r.Header.Set("X-Forwarded-For", "10.0.0.1")
	if status, code, msg := send(t, r); status != http.StatusNoContent {
		t.Fatalf("status %d %s: %s", status, code, msg)
	}
	<-rg.creds
}

// TestReplay checks that a captured request verifies again only while
// its signing time is within the skew window.
func TestReplay(t *testing.T) {
	rg := newRig(t)
	signedAt := time.Now()
	rg.now.Store(signedAt.UnixNano())
	r := rg.build(t, request{target: "/model/m/converse", body: converseBody})
	sign(t, r, converseBody, testAKID, testSecret, signedAt)
	if status, code, msg := send(t, resend(t, r, converseBody)); status != http.StatusNoContent {
		t.Fatalf("first send: %d %s: %s", status, code, msg)
	}
	<-rg.creds
	rg.now.Store(signedAt.Add(4 * time.Minute).UnixNano())
	if status, code, msg := send(t, resend(t, r, converseBody)); status != http.StatusNoContent {
		t.Fatalf("replay inside the window: %d %s: %s", status, code, msg)
	}
	<-rg.creds
	rg.now.Store(signedAt.Add(5*time.Minute + time.Second).UnixNano())
	if status, code, msg := send(t, resend(t, r, converseBody)); status != http.StatusForbidden || code != CodeInvalidSignature || !strings.Contains(msg, "Signature expired") {
		t.Fatalf("replay outside the window: %d %s: %s", status, code, msg)
	}
}

// TestCanonicalRequestMatchesSDK compares the canonical request with the
// one the SDK's signer logs, byte for byte.
func TestCanonicalRequestMatchesSDK(t *testing.T) {
	var logged bytes.Buffer
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:9470/model/us.anthropic.claude%3A0/converse?x=a%2Fb&x=a-b", strings.NewReader(converseBody))
	r.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256([]byte(converseBody))
	payload := hex.EncodeToString(sum[:])
	err := v4.NewSigner(func(o *v4.SignerOptions) {
		o.LogSigning = true
		o.Logger = loggerFunc(func(format string, v ...any) { logged.WriteString(fmt.Sprintf(format, v...)) })
	}).SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}, r, payload, "bedrock", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The server's view: RequestURI as it arrives on the wire.
	r.RequestURI = r.URL.RequestURI()
	r.Host = r.URL.Host
	a, perr := parseAuthorization(r.Header.Get("Authorization"))
	if perr != nil {
		t.Fatal(perr)
	}
	got, cerr := canonicalRequest(r, a.signedHeaders, payload)
	if cerr != nil {
		t.Fatal(cerr)
	}
	if !strings.Contains(logged.String(), got) {
		t.Fatalf("canonical request\n%s\nis not the SDK's\n%s", got, logged.String())
	}
	if !strings.Contains(got, "/model/us.anthropic.claude%253A0/converse\nx=a%2Fb&x=a-b\n") {
		t.Fatalf("path or query not canonical:\n%s", got)
	}
}

func BenchmarkVerify(b *testing.B) {
	v := &Verifier{Service: "bedrock", Secrets: secrets{testAKID: testSecret}}
	body := []byte(converseBody)
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:9470/model/us.anthropic.claude%3A0/converse", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret},
		r, hex.EncodeToString(sum[:]), "bedrock", "us-east-1", time.Now()); err != nil {
		b.Fatal(err)
	}
	r.RequestURI = r.URL.RequestURI()
	r.Host = r.URL.Host
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r, body); err != nil {
			b.Fatal(err)
		}
	}
}
