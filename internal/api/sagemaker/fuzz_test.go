package sagemaker

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzParseInvocation: whatever an InvokeEndpoint request carries in its
// path and headers, it is read as an invocation or refused with a 400
// ValidationError; the parser never panics, and what it accepts is within
// the runtime's bounds.
func FuzzParseInvocation(f *testing.F) {
	f.Add("demo", "", "application/json", "application/json", "trace=abc", "", false)
	f.Add("demo", "blue", "text/csv", "*/*", `a=1; "b"=2`, "id-1", true)
	f.Add("-bad-", "x y", "", "", "\x00", " lead", false)
	f.Fuzz(func(t *testing.T, endpoint, variant, contentType, accept, attrs, inferenceID string, stream bool) {
		r := httptest.NewRequest("POST", "/endpoints/x/invocations", nil)
		r.SetPathValue("EndpointName", endpoint)
		for k, v := range map[string]string{headerTargetVariant: variant, "Content-Type": contentType, "Accept": accept,
			headerStreamAccept: accept, headerCustomAttributes: attrs, headerInferenceID: inferenceID} {
			if v != "" {
				r.Header[http.CanonicalHeaderKey(k)] = []string{v}
			}
		}
		inv, he := parseInvocation(r, stream)
		if he != nil {
			if he.Status != http.StatusBadRequest || he.Message == "" {
				t.Fatalf("refusal %d %q, want a 400 that says why", he.Status, he.Message)
			}
			return
		}
		if !validName(inv.Endpoint) || (inv.TargetVariant != "" && !validName(inv.TargetVariant)) || len(inv.CustomAttributes) > maxCustomAttributesLen {
			t.Fatalf("accepted an invocation out of bounds: %+v", inv)
		}
	})
}
