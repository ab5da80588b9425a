package sagemaker

import (
	"net/http"
	"strconv"

	"github.com/junctionhq/junction/internal/hosting"
)

// The runtime's headers, as the service model names them.
const (
	headerCustomAttributes = "X-Amzn-SageMaker-Custom-Attributes"
	headerTargetVariant    = "X-Amzn-SageMaker-Target-Variant"
	headerTargetModel      = "X-Amzn-SageMaker-Target-Model"
	headerInferenceID      = "X-Amzn-SageMaker-Inference-Id"
	// headerStreamAccept is the stream operation's Accept: the HTTP
	// Accept header of that request asks for the event stream itself.
	headerStreamAccept = "X-Amzn-SageMaker-Accept"
	// headerStreamContentType carries the model server's Content-Type on
	// a stream, whose own Content-Type is the event stream's.
	headerStreamContentType = "X-Amzn-SageMaker-Content-Type"
	headerInvokedVariant    = "X-Amzn-Invoked-Production-Variant"
)

// unserved are request headers that select something Junction does not
// host. SageMaker refuses them on an endpoint that lacks the feature, and
// so does Junction: ignoring one would answer from a different model than
// the one asked for.
var unserved = []struct{ header, feature string }{
	{"X-Amzn-SageMaker-Target-Container-Hostname", "multi-container endpoints with direct invocation"},
	{"X-Amzn-SageMaker-Inference-Component", "inference components"},
	{"X-Amzn-SageMaker-Session-Id", "stateful sessions"},
	{"X-Amzn-SageMaker-Enable-Explanations", "SageMaker Clarify explanations"},
}

// Limits from the runtime's service model.
const (
	maxNameLen             = 63
	maxCustomAttributesLen = 1024
	maxInferenceIDLen      = 64
	maxTargetModelLen      = 1024
)

// parseInvocation reads the invocation an InvokeEndpoint or
// InvokeEndpointWithResponseStream request asks for, without its body,
// and checks each value against the runtime's service model. A value out
// of bounds is a ValidationError naming the header or path member.
func parseInvocation(r *http.Request, stream bool) (hosting.Invocation, *hosting.Error) {
	inv := hosting.Invocation{
		Endpoint:         r.PathValue("EndpointName"),
		TargetVariant:    r.Header.Get(headerTargetVariant),
		TargetModel:      r.Header.Get(headerTargetModel),
		ContentType:      r.Header.Get("Content-Type"),
		Accept:           r.Header.Get("Accept"),
		CustomAttributes: r.Header.Get(headerCustomAttributes),
		InferenceID:      r.Header.Get(headerInferenceID),
	}
	if stream {
		inv.Accept = r.Header.Get(headerStreamAccept)
	}
	if !validName(inv.Endpoint) {
		return inv, hosting.Validation("EndpointName %q is not an endpoint name: it must be 1 to %d letters, digits and hyphens, "+
			"beginning and ending with a letter or digit", inv.Endpoint, maxNameLen)
	}
	if inv.TargetVariant != "" && !validName(inv.TargetVariant) {
		return inv, hosting.Validation("%s %q is not a variant name: it must be 1 to %d letters, digits and hyphens, "+
			"beginning and ending with a letter or digit", headerTargetVariant, inv.TargetVariant, maxNameLen)
	}
	if v := inv.TargetModel; v != "" && (len(v) > maxTargetModelLen || firstBad(v, printable) >= 0 || v[0] == ' ') {
		return inv, hosting.Validation("%s must be 1 to %d printable US-ASCII characters, the first not a space; it has %d bytes%s",
			headerTargetModel, maxTargetModelLen, len(v), badNote(firstBad(v, printable)))
	}
	if v := inv.CustomAttributes; len(v) > maxCustomAttributesLen || firstBad(v, visible) >= 0 {
		return inv, hosting.Validation("%s must be at most %d visible US-ASCII characters (an RFC 7230 field value); it has %d bytes%s",
			headerCustomAttributes, maxCustomAttributesLen, len(v), badNote(firstBad(v, visible)))
	}
	if v := inv.InferenceID; v != "" && (len(v) > maxInferenceIDLen || firstBad(v, printable) >= 0 || v[0] == ' ') {
		return inv, hosting.Validation("%s must be 1 to %d printable US-ASCII characters, the first not a space; it has %d bytes%s",
			headerInferenceID, maxInferenceIDLen, len(v), badNote(firstBad(v, printable)))
	}
	for _, u := range unserved {
		if r.Header.Get(u.header) != "" {
			return inv, hosting.Validation("%s: Junction does not host %s; send the request without it", u.header, u.feature)
		}
	}
	return inv, nil
}

// validName reports whether s matches the service model's pattern for
// endpoint and variant names, ^[a-zA-Z0-9](-*[a-zA-Z0-9])*, within its
// 63-character limit: letters, digits and hyphens, with a letter or digit
// at each end.
func validName(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// visible reports whether c may appear in an RFC 7230 field value, less
// obs-text: visible ASCII, space and tab.
func visible(c byte) bool { return c == '\t' || ' ' <= c && c <= '~' }

// printable reports whether c is printable ASCII, space included: Java's
// \p{Print}, which the service model's pattern for inference ids uses.
func printable(c byte) bool { return ' ' <= c && c <= '~' }

// firstBad returns the index of the first byte of s that is not ok, or -1.
func firstBad(s string, ok func(byte) bool) int {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return i
		}
	}
	return -1
}

// badNote points a message at byte i, the first one a value may not
// hold, if there is one.
func badNote(i int) string {
	if i < 0 {
		return ""
	}
	return ", and byte " + strconv.Itoa(i) + " is not allowed"
}
