package sagemaker

import (
	"bytes"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/auth/sigv4"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/wire/llm"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// response renders a response as the golden files hold it: the status,
// the headers in order, a blank line and the body.
func response(rec *httptest.ResponseRecorder) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP %d\n", rec.Code)
	names := make([]string, 0, len(rec.Header()))
	for k := range rec.Header() {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(rec.Header()[k], ", "))
	}
	b.WriteString("\n")
	b.Write(rec.Body.Bytes())
	b.WriteString("\n")
	return b.Bytes()
}

// The error responses, byte for byte. The shapes are the runtime's
// service model's (com.amazonaws.sagemakerruntime): the code in
// X-Amzn-ErrorType, the members by their model names in the body.
func TestErrorWireShapes(t *testing.T) {
	for _, tc := range []struct {
		golden string
		err    wireError
	}{
		{"validation_error", fromHosting(hosting.Validation("Endpoint nonexistent not found."))},
		{"model_error", fromHosting(hosting.ModelFailed("AllTraffic", 500, `{"error":"CUDA out of memory"}`))},
		{"model_error_timeout", fromHosting(hosting.TimedOut("AllTraffic", 60*time.Second))},
		{"model_not_ready", fromHosting(&hosting.Error{Code: hosting.ErrModelNotReady, Message: "Endpoint cold is scaling up from zero instances."})},
		{"service_unavailable", fromHosting(hosting.Unavailable("Every instance of endpoint busy is at its concurrency limit."))},
		{"service_unavailable_retry", fromHosting(&hosting.Error{Status: 503, Code: hosting.ErrServiceUnavailable, RetryAfter: "1",
			Message: "Endpoint ep is Creating and cannot take invocations yet (it is starting, or being brought back after a restart); retry shortly."})},
		{"internal_failure", fromHosting(internalFailure("faulty", "req-1"))},
		{"invalid_signature", fromAPI(&llm.Error{Status: 403, Type: llm.ErrAuthentication, Code: sigv4.CodeInvalidSignature,
			Message: "The request signature we calculated does not match the signature you provided."})},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest("POST", "/endpoints/x/invocations", nil)
			r = r.WithContext(api.WithInfo(r.Context(), &api.Info{RequestID: "req-1"}))
			writeError(rec, r, tc.err)
			got := response(rec)
			path := filepath.Join("testdata", tc.golden+".http")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// An error without a code the runtime knows still reaches the SDKs as a
// type they decode: by its status, or else as an InternalFailure.
func TestFromHostingWithoutAKnownCode(t *testing.T) {
	for _, tc := range []struct {
		in          hosting.Error
		code        string
		status      int
		hasOriginal bool
	}{
		{hosting.Error{Status: 400, Message: "m"}, hosting.ErrValidation, 400, false},
		{hosting.Error{Status: 424, Message: "m", OriginalStatus: 502}, hosting.ErrModel, 424, true},
		{hosting.Error{Status: 429, Code: "Throttled", Message: "m"}, hosting.ErrModelNotReady, 429, false},
		{hosting.Error{Status: 503, Message: "m"}, hosting.ErrServiceUnavailable, 503, false},
		{hosting.Error{Status: 502, Message: "m"}, hosting.ErrInternalFailure, 500, false},
		{hosting.Error{Message: "m"}, hosting.ErrInternalFailure, 500, false},
		// A known code keeps the model's status.
		{hosting.Error{Status: 500, Code: hosting.ErrValidation, Message: "m"}, hosting.ErrValidation, 400, false},
	} {
		we := fromHosting(&tc.in)
		if we.code != tc.code || we.status != tc.status || (we.body.OriginalStatusCode != nil) != tc.hasOriginal {
			t.Errorf("%+v: %s %d (original %v), want %s %d", tc.in, we.code, we.status, we.body.OriginalStatusCode, tc.code, tc.status)
		}
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "my-endpoint": true, "a--b": true, "A1": true, strings.Repeat("x", 63): true,
		"": false, "-a": false, "a-": false, "a_b": false, "a.b": false, "é": false, strings.Repeat("x", 64): false,
	} {
		if got := validName(name); got != want {
			t.Errorf("validName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestFromAPI(t *testing.T) {
	for _, tc := range []struct {
		in     llm.Error
		code   string
		status int
	}{
		{llm.Error{Status: 403, Type: llm.ErrAuthentication, Code: sigv4.CodeMissingToken}, sigv4.CodeMissingToken, 403},
		{llm.Error{Status: 401, Type: llm.ErrAuthentication}, sigv4.CodeUnrecognizedClient, 403},
		{llm.Error{Status: 403, Type: llm.ErrPermission}, CodeAccessDenied, 403},
		{llm.Error{Status: 400, Type: llm.ErrInvalidRequest}, hosting.ErrValidation, 400},
		{llm.Error{Status: 500, Type: llm.ErrInternal}, hosting.ErrInternalFailure, 500},
	} {
		if we := fromAPI(&tc.in); we.code != tc.code || we.status != tc.status {
			t.Errorf("%+v: %s %d, want %s %d", tc.in, we.code, we.status, tc.code, tc.status)
		}
	}
}
