package async_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/refmodel"
	"github.com/junctionhq/junction/internal/jobs/async"
	"github.com/junctionhq/junction/internal/platform/store/storetest"
	"github.com/junctionhq/junction/internal/testkit/junctiontest"
	"github.com/junctionhq/junction/internal/testkit/s3test"
)

func TestMain(m *testing.M) {
	code := s3test.Run(m)
	storetest.Stop()
	junctiontest.Remove()
	os.Exit(code)
}

const adminKey = "jk-admin-crash-test-key-0123456789"

// deliveries counts webhook notifications per request id, and which came
// before the crash.
type deliveries struct {
	mu      sync.Mutex
	crashed bool
	count   map[string]int
	before  map[string]bool
	status  map[string]string
}

func (d *deliveries) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var n async.Notification
	json.NewDecoder(r.Body).Decode(&n)
	id := r.Header.Get(async.NotificationIDHeader)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.count[id]++
	d.status[id] = n.InvocationStatus
	if !d.crashed {
		d.before[id] = true
	}
}

func (d *deliveries) total() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.count)
}

func call(t *testing.T, base, method, path string, body any, want int) []byte {
	t.Helper()
	var r io.Reader
	if s, ok := body.(string); ok {
		r = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, r)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s (want %d)", method, path, resp.StatusCode, b, want)
	}
	return b
}

// until polls ok until it holds or limit passes.
func until(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCrashMidQueueLosesNothing queues 500 requests (one in ten fails in
// the model), kills Junction with SIGKILL while they are being served,
// and starts it again on the same data: every request ends with exactly
// one object, an output for those that succeed and a failure object for
// those that fail, and every one is notified. Only a notification in
// flight at the crash may be delivered twice; those are counted.
func TestCrashMidQueueLosesNothing(t *testing.T) {
	bucket := s3test.Bucket(t)
	hooks := &deliveries{count: map[string]int{}, before: map[string]bool{}, status: map[string]string{}}
	hs := httptest.NewServer(hooks)
	defer hs.Close()
	art := filepath.Join(t.TempDir(), "model")
	if err := refmodel.WriteDemoArtifact(art); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`
auth: {admin_key: %q}
log: {level: warn}
hosting: {health_interval: 100ms, stop_grace: 2s}
s3: {endpoint: %q, path_style: true, access_key_id: %s, secret_access_key: %s}
async: {lease_ttl: 1s}
`, adminKey, s3test.Endpoint(t), s3test.AccessKey, s3test.SecretKey)
	j := junctiontest.Start(t, junctiontest.Options{Config: cfg})
	call(t, j.URL, "POST", "/api/v1/models", hosting.Model{Name: "m", Artifact: "file://" + art,
		Server: hosting.Server{Command: "junction", Args: []string{"model-server"}, Env: map[string]string{"JUNCTION_MODEL_SERVER_FAULTS": "1"}}}, 201)
	call(t, j.URL, "POST", "/api/v1/endpoint-configs", hosting.EndpointConfig{Name: "c",
		Variants: []hosting.Variant{{Name: "a", Model: "m", InstanceType: "ml.g6.xlarge"}},
		AsyncInference: &hosting.AsyncInference{OutputPath: "s3://" + bucket + "/out", FailurePath: "s3://" + bucket + "/fail",
			MaxConcurrentInvocationsPerInstance: 4,
			Notification:                        &hosting.AsyncNotification{SuccessWebhook: hs.URL + "/ok", ErrorWebhook: hs.URL + "/err"}}}, 201)
	call(t, j.URL, "POST", "/api/v1/endpoints", map[string]string{"name": "e", "config": "c"}, 201)
	waitInService(t, j.URL)
	s3test.Put(t, bucket, "in/x.json", []byte(`{"inputs": "my card was charged twice"}`))

	const n = 500
	type accepted struct{ id, output, failure string }
	reqs := make([]accepted, 0, n)
	failing := map[string]bool{}
	for i := range n {
		attrs := "delay_ms=40"
		if i%10 == 7 {
			attrs = "fault=error"
		}
		req, _ := http.NewRequest("POST", j.URL+"/endpoints/e/async-invocations", nil)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		req.Header.Set("X-Amzn-SageMaker-InputLocation", "s3://"+bucket+"/in/x.json")
		req.Header.Set("X-Amzn-SageMaker-Content-Type", "application/json")
		req.Header.Set("X-Amzn-SageMaker-Custom-Attributes", attrs)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
		a := accepted{output: resp.Header.Get("X-Amzn-SageMaker-OutputLocation"), failure: resp.Header.Get("X-Amzn-SageMaker-FailureLocation")}
		a.id = strings.TrimSuffix(a.output[strings.LastIndex(a.output, "/")+1:], ".out")
		reqs = append(reqs, a)
		if i%10 == 7 {
			failing[a.id] = true
		}
	}
	// Mid-queue: some requests are done, most are not.
	until(t, 2*time.Minute, "50 notifications before the crash", func() bool { return hooks.total() >= 50 })
	j.Kill()
	hooks.mu.Lock()
	hooks.crashed = true
	doneAtCrash := len(hooks.count)
	hooks.mu.Unlock()
	if doneAtCrash >= n {
		t.Fatalf("all %d requests were done before the crash; the test did not crash mid-queue", n)
	}

	j2 := junctiontest.Start(t, junctiontest.Options{Config: cfg, DataDir: j.DataDir})
	until(t, 3*time.Minute, "a notification for every request", func() bool { return hooks.total() >= n })

	outs := map[string]bool{}
	for _, k := range s3test.Keys(t, bucket, "out/") {
		outs[k] = true
	}
	fails := map[string]bool{}
	for _, k := range s3test.Keys(t, bucket, "fail/") {
		fails[k] = true
	}
	if len(outs)+len(fails) != n {
		t.Errorf("%d outputs and %d failure objects for %d requests; want exactly one object each (no temporaries left)", len(outs), len(fails), n)
	}
	dups := 0
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	for _, a := range reqs {
		out := outs[strings.TrimPrefix(a.output, "s3://"+bucket+"/")]
		fail := fails[strings.TrimPrefix(a.failure, "s3://"+bucket+"/")]
		switch {
		case out && fail:
			t.Errorf("request %s has both an output and a failure object", a.id)
		case failing[a.id] && !fail, !failing[a.id] && !out:
			t.Errorf("request %s (model fails: %v): output %v, failure %v", a.id, failing[a.id], out, fail)
		}
		c := hooks.count[a.id]
		if c == 0 {
			t.Errorf("request %s was never notified", a.id)
		}
		if c > 1 {
			dups += c - 1
			if !hooks.before[a.id] {
				t.Errorf("request %s was notified %d times, all after the crash; only a notification in flight at the crash may repeat", a.id, c)
			}
		}
		want := "Completed"
		if failing[a.id] {
			want = "Failed"
		}
		if hooks.status[a.id] != want {
			t.Errorf("request %s notified %q, want %q", a.id, hooks.status[a.id], want)
		}
	}
	t.Logf("%d of %d requests notified before the kill; %d duplicate notifications after the restart", doneAtCrash, n, dups)
	if dups > 8 {
		t.Errorf("%d duplicate notifications; at most the 8 a notifier has in flight may repeat", dups)
	}
	j2.Stop()
}

func waitInService(t *testing.T, base string) {
	until(t, time.Minute, "endpoint in service", func() bool {
		var ep hosting.Endpoint
		json.Unmarshal(call(t, base, "GET", "/api/v1/endpoints/e", nil, 200), &ep)
		return ep.Status == hosting.StatusInService
	})
}
