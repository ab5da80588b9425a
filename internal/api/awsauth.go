package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/junctionhq/junction/internal/auth/awscreds"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/auth/sigv4"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// AWSAuth authenticates requests to the AWS-shaped surfaces (the Bedrock
// runtime, SageMaker's), whose clients are AWS SDKs: a request signed with
// Signature Version 4 by an access key Junction issued is attributed to
// the Junction key the access key belongs to; a request with
// "Authorization: Bearer <junction key>", as Bedrock API keys are sent,
// is admitted as on every other surface.
type AWSAuth struct {
	Keys     *keys.Store
	Creds    *awscreds.Store
	Verifier *sigv4.Verifier
}

// NewAWSAuth returns an AWSAuth that verifies signatures for the signing
// service, e.g. "bedrock".
func NewAWSAuth(ks *keys.Store, creds *awscreds.Store, service string) *AWSAuth {
	return &AWSAuth{Keys: ks, Creds: creds, Verifier: &sigv4.Verifier{Service: service, Secrets: creds}}
}

// Authenticate admits r, whose body (covered by a signature) is body, and
// records its key and tags in its Info. A failure is a 403 *llm.Error of
// type ErrAuthentication whose Code is AWS's name for it
// (MissingAuthenticationTokenException, UnrecognizedClientException,
// InvalidSignatureException, IncompleteSignatureException).
func (a *AWSAuth) Authenticate(r *http.Request, body []byte) *llm.Error {
	h := r.Header.Get("Authorization")
	if token, ok := strings.CutPrefix(h, "Bearer "); ok {
		k, ok := a.Keys.Authenticate(strings.TrimSpace(token))
		if !ok {
			return authError(sigv4.CodeUnrecognizedClient, "The Junction key sent as 'Authorization: Bearer' is invalid or revoked")
		}
		return admit(r, k)
	}
	if h == "" {
		return authError(sigv4.CodeMissingToken, "Missing Authentication Token: sign the request with AWS Signature Version 4 using an access key "+
			"Junction issued ('junction keys aws-credentials create KEY_ID'), or send 'Authorization: Bearer <junction key>'")
	}
	cred, err := a.Verifier.Verify(r, body)
	if err != nil {
		var se *sigv4.Error
		if !errors.As(err, &se) {
			return authError(sigv4.CodeInvalidSignature, err.Error())
		}
		return authError(se.Code, se.Message)
	}
	keyID, ok := a.Creds.Owner(cred.AccessKeyID)
	if !ok {
		// Revoked between the signature check and now.
		return authError(sigv4.CodeUnrecognizedClient, "The security token included in the request is invalid: access key id "+cred.AccessKeyID+" was revoked")
	}
	k, ok := a.Keys.Live(keyID)
	if !ok {
		return authError(sigv4.CodeUnrecognizedClient, "The security token included in the request is invalid: access key id "+
			cred.AccessKeyID+" belongs to Junction key "+keyID+", which is revoked")
	}
	return admit(r, k)
}

// ReadBody reads r's body of at most limit bytes (see api.ReadBody) and
// authenticates r with it. What can be judged without the body — a
// missing Authorization header, an invalid Junction key, a malformed or
// stale signature, an unknown access key — is refused first, without
// reading the body.
func (a *AWSAuth) ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *llm.Error) {
	if e := a.precheck(r); e != nil {
		RefuseUnread(w, r)
		return nil, e
	}
	body, e := ReadBody(w, r, limit)
	if e != nil {
		return nil, e
	}
	if e := a.Authenticate(r, body); e != nil {
		return nil, e
	}
	return body, nil
}

// precheck is the part of Authenticate that needs no body.
func (a *AWSAuth) precheck(r *http.Request) *llm.Error {
	h := r.Header.Get("Authorization")
	if token, ok := strings.CutPrefix(h, "Bearer "); ok {
		if _, ok := a.Keys.Authenticate(strings.TrimSpace(token)); !ok {
			return authError(sigv4.CodeUnrecognizedClient, "The Junction key sent as 'Authorization: Bearer' is invalid or revoked")
		}
		return nil
	}
	if h == "" {
		return a.Authenticate(r, nil)
	}
	if err := a.Verifier.Check(r); err != nil {
		var se *sigv4.Error
		if !errors.As(err, &se) {
			return authError(sigv4.CodeInvalidSignature, err.Error())
		}
		return authError(se.Code, se.Message)
	}
	return nil
}

func authError(code, message string) *llm.Error {
	return &llm.Error{Status: http.StatusForbidden, Type: llm.ErrAuthentication, Code: code, Message: message}
}
