// Package sigv4 verifies AWS Signature Version 4 on incoming HTTP requests,
// so that clients built on an AWS SDK (the bedrockruntime and
// sagemakerruntime clients) can call Junction with access keys Junction
// issued. It rebuilds the canonical request exactly as the SDKs' signers
// build it, recomputes the signature with the secret the caller's lookup
// returns, and compares in constant time.
//
// It verifies header-signed requests (an Authorization header), not
// presigned URLs or chunked (streaming) payload signatures, and it does not
// know where secrets are kept: a Secrets implementation supplies them.
//
// Within the skew window a signed request can be sent again and verifies
// again, as with AWS itself; the window bounds how long a captured request
// stays usable.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Algorithm is the only signing algorithm verified.
const Algorithm = "AWS4-HMAC-SHA256"

// DefaultMaxSkew is how far a request's signing time may be from the
// verifier's clock, either way, as AWS allows.
const DefaultMaxSkew = 5 * time.Minute

// Error codes, as AWS names them in X-Amzn-ErrorType. Every failure is
// answered with HTTP 403.
const (
	// CodeMissingToken: the request carries no credentials at all.
	CodeMissingToken = "MissingAuthenticationTokenException"
	// CodeIncomplete: the Authorization header is not a well-formed
	// SigV4 header, or a part the signature needs is missing.
	CodeIncomplete = "IncompleteSignatureException"
	// CodeUnrecognizedClient: the access key id is unknown or revoked.
	CodeUnrecognizedClient = "UnrecognizedClientException"
	// CodeInvalidSignature: the signature does not match, or the signing
	// time is outside the skew window.
	CodeInvalidSignature = "InvalidSignatureException"
)

// Error is a verification failure. Message says what to fix; it never
// holds a secret.
type Error struct {
	Code    string
	Message string
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

func fail(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Secrets finds the secret access key of an access key id.
type Secrets interface {
	// SecretAccessKey returns the secret of a live access key id.
	SecretAccessKey(accessKeyID string) (secret string, ok bool)
}

// Verifier checks the signatures of requests to one signing service.
type Verifier struct {
	// Service is the signing name the credential scope must name, e.g.
	// "bedrock" for the Bedrock runtime, "sagemaker" for SageMaker's.
	Service string
	// Secrets supplies the secret of each access key id.
	Secrets Secrets
	// MaxSkew bounds the distance between the signing time and Now;
	// zero means DefaultMaxSkew.
	MaxSkew time.Duration
	// Now returns the current time; nil means time.Now. Tests fix it.
	Now func() time.Time

	// keys caches derived signing keys: deriving one costs four HMACs,
	// and a client signs every request of a day with the same one.
	mu   sync.Mutex
	keys map[string]cachedKey
}

// cachedKey is a derived signing key and the secret it came from, so a
// credential whose secret changes never verifies with a stale key.
type cachedKey struct {
	secret string
	key    []byte
}

// maxCachedKeys bounds the signing-key cache; past it the cache starts
// over.
const maxCachedKeys = 4096

// Credential is what a verified request was signed with.
type Credential struct {
	AccessKeyID string
	// Date is the scope's date, YYYYMMDD.
	Date    string
	Region  string
	Service string
	// SignedAt is the request's X-Amz-Date.
	SignedAt time.Time
}

// authorization is a parsed Authorization header.
type authorization struct {
	cred          Credential
	signedHeaders string
	signature     string
}

// Check checks everything of r's signature that does not need its body:
// the Authorization header's form, the credential's service, date and
// skew, and that its access key id is live. A server calls it before
// reading a body, so that an unsigned or wrongly signed client is turned
// away without being read. It returns nil or an *Error.
func (v *Verifier) Check(r *http.Request) error {
	_, _, _, err := v.check(r)
	return err
}

// check is Check, returning what Verify goes on with.
func (v *Verifier) check(r *http.Request) (a authorization, amzDate, secret string, err error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return a, "", "", fail(CodeMissingToken, "Missing Authentication Token: sign the request with AWS Signature Version 4")
	}
	if a, err = parseAuthorization(h); err != nil {
		return a, "", "", err
	}
	if a.cred.Service != v.Service {
		return a, "", "", fail(CodeInvalidSignature, "Credential should be scoped to correct service: '%s', not '%s'", v.Service, a.cred.Service)
	}
	signedAt, amzDate, err := signingTime(r)
	if err != nil {
		return a, "", "", err
	}
	a.cred.SignedAt = signedAt
	if d := amzDate[:8]; d != a.cred.Date {
		return a, "", "", fail(CodeInvalidSignature, "Credential should be scoped to a valid date: the scope's date %s is not the X-Amz-Date %s", a.cred.Date, amzDate)
	}
	if err := v.checkSkew(signedAt); err != nil {
		return a, "", "", err
	}
	secret, ok := v.Secrets.SecretAccessKey(a.cred.AccessKeyID)
	if !ok {
		return a, "", "", fail(CodeUnrecognizedClient, "The security token included in the request is invalid: access key id %q is unknown or revoked", a.cred.AccessKeyID)
	}
	return a, amzDate, secret, nil
}

// Verify checks r's signature over body, the request body as received.
// It returns the credential used, or an *Error.
func (v *Verifier) Verify(r *http.Request, body []byte) (Credential, error) {
	a, amzDate, secret, err := v.check(r)
	if err != nil {
		return Credential{}, err
	}
	payload, err := payloadHash(r, body)
	if err != nil {
		return Credential{}, err
	}
	canonical, err := canonicalRequest(r, a.signedHeaders, payload)
	if err != nil {
		return Credential{}, err
	}
	scope := a.cred.Date + "/" + a.cred.Region + "/" + a.cred.Service + "/aws4_request"
	sum := sha256.Sum256([]byte(canonical))
	toSign := Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	key := v.signingKey(secret, a.cred, scope)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(toSign))
	var want [64]byte
	hex.Encode(want[:], mac.Sum(nil))
	if !hmac.Equal(want[:], []byte(a.signature)) {
		return Credential{}, fail(CodeInvalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method: "+
			"the secret must be the one Junction issued with access key id %s, and the request must not change after signing", a.cred.AccessKeyID)
	}
	return a.cred, nil
}

// SigningKey derives the SigV4 signing key for a secret and a scope.
func SigningKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

// signingKey returns the signing key for a credential's scope, from the
// cache when it can.
func (v *Verifier) signingKey(secret string, c Credential, scope string) []byte {
	id := c.AccessKeyID + "/" + scope
	v.mu.Lock()
	ck, ok := v.keys[id]
	v.mu.Unlock()
	if ok && ck.secret == secret {
		return ck.key
	}
	key := SigningKey(secret, c.Date, c.Region, c.Service)
	v.mu.Lock()
	if v.keys == nil || len(v.keys) >= maxCachedKeys {
		v.keys = make(map[string]cachedKey)
	}
	v.keys[id] = cachedKey{secret: secret, key: key}
	v.mu.Unlock()
	return key
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func (v *Verifier) checkSkew(signedAt time.Time) error {
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	const f = "20060102T150405Z"
	mins := strconv.FormatFloat(skew.Minutes(), 'f', -1, 64)
	switch {
	case signedAt.Before(now.Add(-skew)):
		return fail(CodeInvalidSignature, "Signature expired: %s is now earlier than %s (%s - %s min.); sign the request again, and check the client's clock",
			signedAt.UTC().Format(f), now.Add(-skew).UTC().Format(f), now.UTC().Format(f), mins)
	case signedAt.After(now.Add(skew)):
		return fail(CodeInvalidSignature, "Signature not yet current: %s is still later than %s (%s + %s min.); check the client's clock",
			signedAt.UTC().Format(f), now.Add(skew).UTC().Format(f), now.UTC().Format(f), mins)
	}
	return nil
}

// parseAuthorization parses
// "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=hex".
func parseAuthorization(h string) (authorization, error) {
	var a authorization
	rest, ok := strings.CutPrefix(h, Algorithm+" ")
	if !ok {
		alg, _, _ := strings.Cut(h, " ")
		return a, fail(CodeIncomplete, "Authorization header: algorithm %q is not supported; sign with %s", alg, Algorithm)
	}
	var cred string
	for _, part := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "Credential":
			cred = val
		case "SignedHeaders":
			a.signedHeaders = val
		case "Signature":
			a.signature = val
		}
	}
	switch {
	case cred == "":
		return a, fail(CodeIncomplete, "Authorization header requires 'Credential' parameter")
	case a.signedHeaders == "":
		return a, fail(CodeIncomplete, "Authorization header requires 'SignedHeaders' parameter")
	case a.signature == "":
		return a, fail(CodeIncomplete, "Authorization header requires 'Signature' parameter")
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" || len(parts[1]) != 8 {
		return a, fail(CodeIncomplete, "Authorization header: Credential %q is not ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request", cred)
	}
	a.cred = Credential{AccessKeyID: parts[0], Date: parts[1], Region: parts[2], Service: parts[3]}
	return a, nil
}

// signingTime returns the request's signing time from X-Amz-Date, or from
// Date when X-Amz-Date is absent, with its X-Amz-Date form.
func signingTime(r *http.Request) (time.Time, string, error) {
	const f = "20060102T150405Z"
	if s := r.Header.Get("X-Amz-Date"); s != "" {
		t, err := time.Parse(f, s)
		if err != nil {
			return time.Time{}, "", fail(CodeIncomplete, "X-Amz-Date %q is not in the form 20060102T150405Z", s)
		}
		return t, s, nil
	}
	if s := r.Header.Get("Date"); s != "" {
		t, err := http.ParseTime(s)
		if err != nil {
			return time.Time{}, "", fail(CodeIncomplete, "Date %q is not an HTTP date", s)
		}
		return t, t.UTC().Format(f), nil
	}
	return time.Time{}, "", fail(CodeIncomplete, "the request must carry the signing time in an X-Amz-Date header")
}

// emptySHA256 is the hex SHA-256 of an empty body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// payloadHash returns the hex SHA-256 of body. An X-Amz-Content-Sha256
// header must agree with it: the signature covers the header's value, and
// the body must be the one that was signed.
func payloadHash(r *http.Request, body []byte) (string, error) {
	var sum string
	if len(body) == 0 {
		sum = emptySHA256
	} else {
		s := sha256.Sum256(body)
		sum = hex.EncodeToString(s[:])
	}
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && !strings.EqualFold(h, sum) {
		if h == "UNSIGNED-PAYLOAD" || strings.HasPrefix(h, "STREAMING-") {
			return "", fail(CodeInvalidSignature, "x-amz-content-sha256 %s is not accepted: the body must be signed, with its SHA-256", h)
		}
		return "", fail(CodeInvalidSignature, "The request body does not match its signed SHA-256 (x-amz-content-sha256): the body changed after signing")
	}
	return sum, nil
}

// canonicalRequest builds the canonical request as the AWS SDKs do for
// every service but S3:
//
//	METHOD
//	path as sent, each byte outside A-Z a-z 0-9 - . _ ~ / escaped again
//	query, each name and value escaped, sorted by name then value
//	name:value lines of the signed headers
//	signed header names
//	payload hash
func canonicalRequest(r *http.Request, signedHeaders, payload string) (string, error) {
	var b strings.Builder
	b.Grow(512)
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(escapePath(rawPath(r)))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery))
	b.WriteByte('\n')
	hasHost := false
	for _, name := range strings.Split(signedHeaders, ";") {
		if name == "" || name != strings.ToLower(name) {
			return "", fail(CodeIncomplete, "SignedHeaders %q: header names must be lower case, separated by ';'", signedHeaders)
		}
		b.WriteString(name)
		b.WriteByte(':')
		switch name {
		case "host", ":authority":
			// Over HTTP/2 the AWS SDKs for JavaScript sign the
			// :authority pseudo-header in host's place; either is the
			// authority the request was sent to, which net/http keeps
			// in r.Host for both versions.
			hasHost = true
			b.WriteString(stripSpaces(r.Host))
		case "content-length":
			if v := r.Header.Get("Content-Length"); v != "" {
				b.WriteString(stripSpaces(v))
			} else if r.ContentLength >= 0 {
				b.WriteString(strconv.FormatInt(r.ContentLength, 10))
			}
		default:
			for i, v := range r.Header.Values(name) {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(stripSpaces(v))
			}
		}
		b.WriteByte('\n')
	}
	if !hasHost {
		return "", fail(CodeIncomplete, "SignedHeaders %q must include host (or :authority over HTTP/2)", signedHeaders)
	}
	b.WriteByte('\n')
	b.WriteString(signedHeaders)
	b.WriteByte('\n')
	b.WriteString(payload)
	return b.String(), nil
}

// rawPath is the request's path exactly as the client sent it, escaping
// included.
func rawPath(r *http.Request) string {
	p := r.RequestURI
	if p == "" {
		p = r.URL.EscapedPath()
	} else if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if !strings.HasPrefix(p, "/") {
		// An absolute-form request target: keep only its path.
		if u, err := url.ParseRequestURI(p); err == nil {
			p = u.EscapedPath()
		}
	}
	if p == "" {
		p = "/"
	}
	return p
}

// unreserved reports the bytes SigV4 never escapes.
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

const upperHex = "0123456789ABCDEF"

// escapePath escapes every byte of p but unreserved ones and '/'. Applied
// to the path as sent, it escapes it a second time, as the SDKs do: the
// bedrockruntime client sends a model id's ':' as %3A and signs %253A.
func escapePath(p string) string {
	n := 0
	for i := 0; i < len(p); i++ {
		if !unreserved(p[i]) && p[i] != '/' {
			n++
		}
	}
	if n == 0 {
		return p
	}
	b := make([]byte, 0, len(p)+2*n)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if unreserved(c) || c == '/' {
			b = append(b, c)
		} else {
			b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return string(b)
}

// escapeQuery escapes a query name or value: every byte but unreserved
// ones, a space as %20.
func escapeQuery(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return string(b)
}

// canonicalQuery decodes the raw query and encodes it again, sorted by
// the encoded names and then values, as the signer does.
func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, _ := url.ParseQuery(raw)
	type kv struct{ k, v string }
	params := make([]kv, 0, len(q))
	for k, vs := range q {
		ek := escapeQuery(k)
		for _, v := range vs {
			params = append(params, kv{ek, escapeQuery(v)})
		}
	}
	sort.Slice(params, func(i, j int) bool {
		if params[i].k != params[j].k {
			return params[i].k < params[j].k
		}
		return params[i].v < params[j].v
	})
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// stripSpaces trims a header value and collapses each run of spaces to
// one, as the signer does.
func stripSpaces(s string) string {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "  ") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' && i > 0 && s[i-1] == ' ' {
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}
