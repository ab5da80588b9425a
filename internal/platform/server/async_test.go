package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/jobs/async"
	"github.com/junctionhq/junction/internal/platform/server"
	"github.com/junctionhq/junction/internal/testkit/s3test"
)

// webhook records the notifications it receives, answering failure
// while fail says so.
type webhook struct {
	*httptest.Server
	mu    sync.Mutex
	got   map[string][]async.Notification // by path
	byID  map[string]int                  // deliveries per request id
	fails int                             // answer 503 to this many first deliveries
}

func newWebhook(t testing.TB, fails int) *webhook {
	h := &webhook{got: map[string][]async.Notification{}, byID: map[string]int{}, fails: fails}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n async.Notification
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &n); err != nil {
			t.Errorf("webhook body %s: %v", b, err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.fails > 0 {
			h.fails--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		h.got[r.URL.Path] = append(h.got[r.URL.Path], n)
		h.byID[r.Header.Get(async.NotificationIDHeader)]++
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *webhook) wait(t testing.TB, path string, n int) []async.Notification {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h.mu.Lock()
		got := append([]async.Notification(nil), h.got[path]...)
		h.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook %s: %d notifications after 30s, want %d", path, len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// asyncEndpoint creates the reference model behind an async endpoint
// whose outputs go to bucket/out and failures to bucket/fail.
func (j *junction) asyncEndpoint(name, bucket string, perInstance int, hook string) {
	j.t.Helper()
	j.model(name, demoArtifact(j.t), "byoc", nil)
	ai := &hosting.AsyncInference{OutputPath: "s3://" + bucket + "/out", FailurePath: "s3://" + bucket + "/fail",
		MaxConcurrentInvocationsPerInstance: perInstance}
	if hook != "" {
		ai.Notification = &hosting.AsyncNotification{SuccessWebhook: hook + "/ok", ErrorWebhook: hook + "/err"}
	}
	j.admin("POST", "/api/v1/endpoint-configs", hosting.EndpointConfig{Name: name + "-c", AsyncInference: ai,
		Variants: []hosting.Variant{{Name: "a", Model: name, InstanceType: "ml.g6.xlarge"}}}, http.StatusCreated, nil)
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": name, "config": name + "-c"}, http.StatusCreated, nil)
	j.waitEndpoint(name, 60*time.Second, inService)
}

// waitObject polls the S3 server until the object at uri exists, and
// returns its body.
func waitObject(t testing.TB, uri string) string {
	t.Helper()
	bucket, key, _ := strings.Cut(strings.TrimPrefix(uri, "s3://"), "/")
	c := s3test.Client(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err == nil {
			b, _ := io.ReadAll(out.Body)
			out.Body.Close()
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within 30s: %v", uri, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAsyncInvocationsWithTheSageMakerSDK: InvokeEndpointAsync from the
// AWS SDK queues an input that lies in S3; the answer lands at the output
// location it was given and the success webhook hears of it; a failing
// model writes a failure object and calls the error webhook; bad requests
// are refused with ValidationErrors that say what to fix.
func TestAsyncInvocationsWithTheSageMakerSDK(t *testing.T) {
	bucket := s3test.Bucket(t)
	hook := newWebhook(t, 1) // the first delivery fails and is retried
	j := startHosted(t, t.TempDir(), "", s3YAML(t)+"async: {lease_ttl: 1s}\n")
	j.asyncEndpoint("scorer", bucket, 2, hook.URL)
	j.model("plain", demoArtifact(t), "byoc", nil)
	j.endpointConfig("plain-c", hosting.Variant{Name: "a", Model: "plain", InstanceType: "ml.g6.xlarge"})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "plain", "config": "plain-c"}, http.StatusCreated, nil)
	s3test.Put(t, bucket, "in/one.json", []byte(`{"inputs": "the site is down again"}`))
	sm := j.sagemakerClient()
	ctx := context.Background()

	out, err := sm.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("scorer"),
		InputLocation: aws.String("s3://" + bucket + "/in/one.json"), ContentType: aws.String("application/json"),
		InferenceId: aws.String("inf-1"), RequestTTLSeconds: aws.Int32(600), InvocationTimeoutSeconds: aws.Int32(30)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.InferenceId) != "inf-1" || !strings.HasPrefix(aws.ToString(out.OutputLocation), "s3://"+bucket+"/out/") ||
		!strings.HasPrefix(aws.ToString(out.FailureLocation), "s3://"+bucket+"/fail/") {
		t.Fatalf("InvokeEndpointAsync answered %+v", out)
	}
	if body := waitObject(t, aws.ToString(out.OutputLocation)); !strings.Contains(body, `"label"`) {
		t.Fatalf("output object: %s", body)
	}
	ok := hook.wait(t, "/ok", 1)[0]
	if ok.InferenceID != "inf-1" || ok.InvocationStatus != "Completed" || ok.Response.OutputLocation != aws.ToString(out.OutputLocation) ||
		ok.RequestParameters.EndpointName != "scorer" || ok.Response.ContentType == "" {
		t.Fatalf("success notification: %+v", ok)
	}

	// The model fails: a failure object and the error webhook.
	failed, err := sm.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("scorer"),
		InputLocation: aws.String("s3://" + bucket + "/in/one.json"), CustomAttributes: aws.String("fault=error")})
	if err != nil {
		t.Fatal(err)
	}
	if body := waitObject(t, aws.ToString(failed.FailureLocation)); !strings.Contains(body, "ModelError") {
		t.Fatalf("failure object: %s", body)
	}
	bad := hook.wait(t, "/err", 1)[0]
	if bad.InvocationStatus != "Failed" || bad.Response.FailureLocation != aws.ToString(failed.FailureLocation) || !strings.Contains(bad.FailureReason, "ModelError") {
		t.Fatalf("error notification: %+v", bad)
	}
	// A missing input fails the same way, naming the object.
	missing, err := sm.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("scorer"),
		InputLocation: aws.String("s3://" + bucket + "/in/missing.json")})
	if err != nil {
		t.Fatal(err)
	}
	if body := waitObject(t, aws.ToString(missing.FailureLocation)); !strings.Contains(body, "s3://"+bucket+"/in/missing.json") {
		t.Fatalf("failure object of a missing input: %s", body)
	}
	// An inline body instead of an input location.
	inline, err := sm.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("scorer"),
		Body: []byte(`{"inputs": "refund my order"}`), ContentType: aws.String("application/json"), Filename: aws.String("refund.json")})
	if err != nil {
		t.Fatal(err)
	}
	if loc := aws.ToString(inline.OutputLocation); loc != "s3://"+bucket+"/out/refund.json" {
		t.Fatalf("output location with a file name: %s", loc)
	}
	waitObject(t, aws.ToString(inline.OutputLocation))

	var ve *smtypes.ValidationError
	for name, in := range map[string]*sagemakerruntime.InvokeEndpointAsyncInput{
		"not async":    {EndpointName: aws.String("plain"), InputLocation: aws.String("s3://" + bucket + "/in/one.json")},
		"no endpoint":  {EndpointName: aws.String("nope"), InputLocation: aws.String("s3://" + bucket + "/in/one.json")},
		"no input":     {EndpointName: aws.String("scorer")},
		"bad ttl":      {EndpointName: aws.String("scorer"), InputLocation: aws.String("s3://b/k"), RequestTTLSeconds: aws.Int32(5)},
		"file denied":  {EndpointName: aws.String("scorer"), InputLocation: aws.String("file:///etc/passwd")},
		"http input":   {EndpointName: aws.String("scorer"), InputLocation: aws.String("http://example.com/x")},
		"bad filename": {EndpointName: aws.String("scorer"), InputLocation: aws.String("s3://b/k"), Filename: aws.String("../x")},
	} {
		_, err := sm.InvokeEndpointAsync(ctx, in)
		if !errors.As(err, &ve) {
			t.Errorf("%s: %v, want a ValidationError", name, err)
		}
	}
	// Each invocation the queue served went through the call lifecycle:
	// one ledger record on the async surface.
	var served int
	for _, rec := range j.records(3) {
		if rec.Surface == server.AsyncSurface && rec.Model == "scorer" {
			served++
		}
	}
	if served != 3 {
		t.Errorf("%d ledger records of async invocations, want one for each of the 3 the model was called for", served)
	}
	// The queue as operators see it: the admin API and Prometheus.
	var st async.Stats
	j.admin("GET", "/api/v1/endpoints/scorer/async", nil, http.StatusOK, &st)
	if st.Succeeded != 2 || st.Failed != 2 || st.Queued != 0 || st.Running != 0 {
		t.Errorf("queue stats: %+v, want 2 succeeded and 2 failed", st)
	}
	var list struct{ Requests []async.Info }
	j.admin("GET", "/api/v1/endpoints/scorer/async/requests?state=failed", nil, http.StatusOK, &list)
	if len(list.Requests) != 2 || !strings.Contains(list.Requests[0].Error, "missing.json") {
		t.Errorf("failed requests: %+v", list.Requests)
	}
	if status, _, b := j.do("GET", "/api/v1/endpoints/scorer/async/requests?state=lost", adminKey, ""); status != 400 || !strings.Contains(string(b), "state") {
		t.Errorf("a bad state filter: %d %s", status, b)
	}
	_, _, metrics := j.do("GET", "/metrics", "", "")
	for _, want := range []string{`junction_async_queue_depth{endpoint="scorer",state="failed"} 2`, `junction_async_requests_total{outcome="succeeded"} 2`,
		`junction_async_notifications_total{outcome="retried"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	evs := j.events("scorer")
	if !strings.Contains(evs, "failed: ModelError") {
		t.Errorf("endpoint events lack the failed invocation: %s", evs)
	}
	if hook.byID[""] != 0 {
		t.Errorf("a notification without its request id header")
	}
	checkQueueInConsole(t, j, "scorer", st)
}
