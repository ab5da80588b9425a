package bedrock

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// This file is a fake Bedrock runtime speaking the wire format the SDK
// expects: rest-json bodies for Converse, application/vnd.amazon.eventstream
// frames for ConverseStream, and AWS JSON error documents.

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
	reqs := make(chan seen, 16)
	record := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("fake: read body: %v", err)
		}
		reqs <- seen{method: r.Method, path: r.URL.Path, model: r.PathValue("model"),
			auth: r.Header.Get("Authorization"), body: body}
		w.Header().Set("X-Amzn-Requestid", testRequestID)
		reply(w, r)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /model/{model}/converse", record)
	mux.HandleFunc("POST /model/{model}/converse-stream", record)
	srv := httptest.NewServer(mux)
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

// jsonReply answers with a Converse response body.
func jsonReply(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}
}

// awsError answers with an AWS JSON error: the type in X-Amzn-ErrorType and
// {"message": ...} in the body, as Bedrock does. header adds headers.
func awsError(status int, errType, message string, header map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		if errType != "" {
			w.Header().Set("X-Amzn-Errortype", errType+":http://internal.amazon.com/coral/com.amazon.bedrock/")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		b, _ := json.Marshal(map[string]string{"message": message})
		w.Write(b)
	}
}

// frame is one event-stream message, as the stream_*.json golden files
// list them: an event named by its ConverseStreamOutput member, or a
// modelled exception.
type frame struct {
	Event     string          `json:"event,omitempty"`
	Exception string          `json:"exception,omitempty"`
	Payload   json.RawMessage `json:"payload"`
}

// frames reads a stream_*.json golden file.
func frames(t *testing.T, name string) []frame {
	t.Helper()
	var fs []frame
	if err := json.Unmarshal(golden(t, name), &fs); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return fs
}

// encode writes f in the AWS event-stream binary framing with the SDK's
// own encoder.
func (f frame) encode(w io.Writer) error {
	var msg eventstream.Message
	if f.Exception != "" {
		msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
		msg.Headers.Set(":exception-type", eventstream.StringValue(f.Exception))
	} else {
		msg.Headers.Set(":message-type", eventstream.StringValue("event"))
		msg.Headers.Set(":event-type", eventstream.StringValue(f.Event))
	}
	msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	msg.Payload = f.Payload
	return eventstream.NewEncoder().Encode(w, msg)
}

// streamReply answers ConverseStream with fs, flushing after each frame.
// then, if set, runs after the last frame, with the response still open.
func streamReply(fs []frame, then func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		w.WriteHeader(http.StatusOK)
		for _, f := range fs {
			if err := f.encode(w); err != nil {
				panic(err)
			}
			w.(http.Flusher).Flush()
		}
		if then != nil {
			then(w, r)
		}
	}
}

// cutMidFrame writes the first half of f and drops the connection.
func cutMidFrame(f frame) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		if err := f.encode(&buf); err != nil {
			panic(err)
		}
		w.Write(buf.Bytes()[:buf.Len()/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
}
