package bedrock

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/junctionhq/junction/internal/testkit/fakebedrock"
)

// The fake Bedrock runtime itself is package fakebedrock, shared with the
// server's end-to-end tests; this file points the adapter at it.

func TestMain(m *testing.M) {
	// Keep the developer's AWS setup out of the tests: the SDK's default
	// chain reads these.
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_BEDROCK_RUNTIME"} {
		os.Unsetenv(k)
	}
	os.Setenv("AWS_CONFIG_FILE", filepath.Join(os.TempDir(), "junction-bedrock-test-no-config"))
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(os.TempDir(), "junction-bedrock-test-no-credentials"))
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Exit(m.Run())
}

const (
	testModel     = "anthropic.claude-3-5-sonnet-20240620-v1:0"
	testRequestID = "7a4e1c2b-91d0-4c3e-a0f5-3b2d9e8c6f10"
)

// seen is a request as the fake received it.
type seen struct {
	method, path, model, auth string
	body                      []byte
}

// newFake starts a fake Bedrock runtime that records each request and
// answers it with reply, and returns a Provider pointed at it and the
// requests it sees.
func newFake(t *testing.T, reply http.HandlerFunc) (*Provider, <-chan seen) {
	t.Helper()
	arrived := make(chan fakebedrock.Request, 16)
	reqs := make(chan seen, 16)
	fake := &fakebedrock.Server{Reply: func(w http.ResponseWriter, r *http.Request) {
		got := <-arrived
		reqs <- seen{method: got.Method, path: got.Path, model: got.Model, auth: got.Auth, body: got.Body}
		reply(w, r)
	}, Arrived: arrived, RequestID: testRequestID}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return testProvider(t, srv.URL), reqs
}

// testProvider returns a Provider with static test credentials calling
// endpoint.
func testProvider(t *testing.T, endpoint string) *Provider {
	t.Helper()
	p, err := New(t.Context(), Config{Name: "bedrock-test", Region: "us-east-1", Endpoint: endpoint,
		AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// golden returns the contents of testdata/name.
func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The fake's wire helpers (package fakebedrock), by their short names.
var (
	jsonReply   = fakebedrock.JSONReply
	awsError    = fakebedrock.AWSError
	streamReply = fakebedrock.StreamReply
	cutMidFrame = fakebedrock.CutMidFrame
)

// frame is one event-stream message, as the stream_*.json golden files
// list them.
type frame = fakebedrock.Frame

// frames reads a stream_*.json golden file.
func frames(t *testing.T, name string) []frame {
	t.Helper()
	var fs []frame
	if err := json.Unmarshal(golden(t, name), &fs); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return fs
}
