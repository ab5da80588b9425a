package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
	"github.com/junctionhq/junction/internal/hosting/refmodel"
	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/platform/server"
	"github.com/junctionhq/junction/internal/platform/store/storetest"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
	"github.com/junctionhq/junction/internal/testkit/junctiontest"
	"github.com/junctionhq/junction/internal/testkit/kubetest"
	"github.com/junctionhq/junction/internal/testkit/redistest"
	"github.com/junctionhq/junction/internal/testkit/s3test"
)

// TestMain lets this test binary serve as the reference model server
// (Junction runs "junction model-server" for models whose command is
// "junction", and in tests Junction's own executable is this binary).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "model-server" {
		os.Exit(modelserver.Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	code := redistest.Run(m) // and stop the tests' redis-server
	storetest.Stop()         // and PostgreSQL
	s3test.Stop()            // and the S3 server
	kubetest.Stop()          // and the Kubernetes API server
	junctiontest.Remove()    // and the junction binary built for the replica tests
	os.Exit(code)
}

// startHosted runs Junction with fast hosting timings on dataDir; upstream,
// when set, is an OpenAI-compatible provider named "cloud".
func startHosted(t testing.TB, dataDir string, upstream string, extra string) *junction {
	t.Helper()
	providers := ""
	if upstream != "" {
		providers = fmt.Sprintf("providers:\n  - {name: cloud, type: openai, base_url: %q, api_key: sk-up}\n", upstream+"/v1")
	}
	hostingYAML := "hosting: {health_interval: 100ms, stop_grace: 3s, meter_interval: 100ms, invocation_timeout: 5s}\n"
	if strings.HasPrefix(extra, "hosting:") {
		hostingYAML = ""
	}
	yaml := fmt.Sprintf(`
server: {addr: "127.0.0.1:0", data_dir: %q, upstream_timeout: 5s, shutdown_timeout: 10s}
auth: {admin_key: %q}
log: {level: warn}
ledger: {flush_interval: 5ms}
%s%s%s`, dataDir, adminKey, hostingYAML, providers, extra)
	cfg, err := config.Parse([]byte(yaml), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	j := &junction{t: t, url: "http://" + srv.Addr(), cancel: cancel, done: make(chan error, 1), dataDir: dataDir}
	go func() { j.done <- srv.Serve(ctx) }()
	t.Cleanup(j.stop)
	return j
}

// demoArtifact writes the reference model's artifact once per test.
func demoArtifact(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := refmodel.WriteDemoArtifact(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// admin sends an admin API request and decodes the answer into out.
func (j *junction) admin(method, path string, body any, wantStatus int, out any) {
	j.t.Helper()
	b, _ := json.Marshal(body)
	if body == nil {
		b = nil
	}
	status, _, resp := j.do(method, path, adminKey, string(b))
	if status != wantStatus {
		j.t.Fatalf("%s %s: %d %s (want %d)", method, path, status, resp, wantStatus)
	}
	if out != nil {
		if err := json.Unmarshal(resp, out); err != nil {
			j.t.Fatalf("%s %s: %v: %s", method, path, err, resp)
		}
	}
}

// model creates a reference-server model; env adds fault knobs. The
// knobs a request can reach (custom attributes, /faults) are on, as the
// tests drive faults through them.
func (j *junction) model(name, artifact, serverType string, env map[string]string) {
	j.t.Helper()
	all := map[string]string{modelserver.EnvFaults: "1"}
	for k, v := range env {
		all[k] = v
	}
	env = all
	j.admin("POST", "/api/v1/models", hosting.Model{Name: name, Artifact: "file://" + artifact,
		Server: hosting.Server{Type: serverType, Command: "junction", Args: []string{"model-server"}, Env: env, StartupTimeoutSeconds: 30}},
		http.StatusCreated, nil)
}

func (j *junction) endpointConfig(name string, variants ...hosting.Variant) {
	j.t.Helper()
	j.admin("POST", "/api/v1/endpoint-configs", hosting.EndpointConfig{Name: name, Variants: variants}, http.StatusCreated, nil)
}

// waitEndpoint polls until the endpoint's status satisfies ok.
func (j *junction) waitEndpoint(name string, within time.Duration, ok func(*hosting.Endpoint) bool) *hosting.Endpoint {
	j.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var ep hosting.Endpoint
		status, _, b := j.do("GET", "/api/v1/endpoints/"+name, adminKey, "")
		if status == http.StatusOK {
			json.Unmarshal(b, &ep)
			if ok(&ep) {
				return &ep
			}
		}
		if time.Now().After(deadline) {
			_, _, ev := j.do("GET", "/api/v1/endpoints/"+name+"/events", adminKey, "")
			j.t.Fatalf("endpoint %s: still %d %s after %s; events: %s", name, status, b, within, ev)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func inService(ep *hosting.Endpoint) bool {
	return ep.Status == hosting.StatusInService && ep.PendingConfig == ""
}

// converged is an endpoint in service on the last spec asked for.
func converged(ep *hosting.Endpoint) bool {
	return inService(ep) && ep.ObservedGeneration == ep.Generation
}

// sagemakerClient is the AWS SDK's SageMaker runtime client as an
// application would configure it for Junction.
func (j *junction) sagemakerClient() *sagemakerruntime.Client {
	j.t.Helper()
	isolateAWS(j.t)
	id, _ := j.createKey("app", map[string]string{"team": "ml"})
	akid, secret := j.awsCredentials(id)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(akid, secret, "")}
	return sagemakerruntime.NewFromConfig(cfg, func(o *sagemakerruntime.Options) {
		o.BaseEndpoint = aws.String(j.url)
		o.RetryMaxAttempts = 1
		o.HTTPClient = &http.Client{Transport: hideWriteTo{http.DefaultTransport}}
	})
}

// hideWriteTo hides the request body's WriteTo. The SDK closes a request
// body once the response headers arrive; net/http, still checking with
// WriteTo that nothing follows the body, can take the closed body's EOF
// for a failed write and close the connection under a response stream.
// With Read only, it sees a plain end of file.
type hideWriteTo struct{ http.RoundTripper }

func (t hideWriteTo) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r = r.Clone(r.Context())
		r.Body = struct{ io.ReadCloser }{r.Body}
	}
	return t.RoundTripper.RoundTrip(r)
}

type predictions struct {
	Predictions []struct {
		Label string `json:"label"`
	} `json:"predictions"`
}

// invoke calls an endpoint with a bearer key and returns status, headers
// and body.
func (j *junction) invoke(endpoint, body string, hdr ...string) (int, http.Header, []byte) {
	return j.do("POST", "/endpoints/"+endpoint+"/invocations", adminKey, body, hdr...)
}

func TestEndpointLifecycleWithTheSageMakerSDK(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	art := demoArtifact(t)
	j.model("intent", art, "byoc", nil)
	j.endpointConfig("intent-v1", hosting.Variant{Name: "primary", Model: "intent", InstanceType: "ml.g6.xlarge", InstanceCount: 2})

	var ep hosting.Endpoint
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "intent", "config": "intent-v1"}, http.StatusCreated, &ep)
	if ep.Status != hosting.StatusCreating {
		t.Fatalf("a new endpoint is %s, want Creating", ep.Status)
	}
	got := j.waitEndpoint("intent", 30*time.Second, inService)
	if len(got.Variants) != 1 || got.Variants[0].CurrentInstanceCount != 2 || len(got.Variants[0].Instances) != 2 {
		t.Fatalf("want 2 ready instances: %+v", got.Variants)
	}

	// A model or config an endpoint runs cannot change under it.
	if st, _, b := j.do("PUT", "/api/v1/models/intent", adminKey, fmt.Sprintf(`{"artifact":"file://%s","server":{"command":"junction"}}`, art)); st != 409 || !strings.Contains(string(b), "new model") {
		t.Fatalf("update a served model: %d %s", st, b)
	}
	if st, _, b := j.do("PUT", "/api/v1/endpoint-configs/intent-v1", adminKey, `{"production_variants":[{"name":"primary","model":"intent","instance_type":"ml.g6.xlarge"}]}`); st != 409 {
		t.Fatalf("update a used config: %d %s", st, b)
	}

	// The SDK, pointed at Junction, invokes it unchanged; the answer is the
	// model's own, computed from the artifact.
	sm := j.sagemakerClient()
	model, err := refmodel.Load(art)
	if err != nil {
		t.Fatal(err)
	}
	text := "I was charged twice for my subscription this month"
	out, err := sm.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("intent"), ContentType: aws.String("application/json"), Accept: aws.String("application/json"),
		Body: []byte(fmt.Sprintf(`{"inputs": %q}`, text)), CustomAttributes: aws.String("trace=abc123"),
		InferenceId: aws.String("inf-1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var p predictions
	if err := json.Unmarshal(out.Body, &p); err != nil || len(p.Predictions) != 1 {
		t.Fatalf("answer: %v %s", err, out.Body)
	}
	if want := model.Classify(text).Label; p.Predictions[0].Label != want {
		t.Fatalf("label %q, the model says %q", p.Predictions[0].Label, want)
	}
	if aws.ToString(out.InvokedProductionVariant) != "primary" || aws.ToString(out.CustomAttributes) != "trace=abc123" {
		t.Fatalf("variant %q, custom attributes %q", aws.ToString(out.InvokedProductionVariant), aws.ToString(out.CustomAttributes))
	}

	// Bad requests get SageMaker's errors, decoded by the SDK.
	_, err = sm.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("nope"), Body: []byte(`{}`)})
	var ve *smtypes.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(ve.ErrorMessage(), "nope") {
		t.Fatalf("unknown endpoint: %v", err)
	}
	_, err = sm.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("intent"),
		TargetVariant: aws.String("blue"), Body: []byte(`{"inputs":"x"}`), ContentType: aws.String("application/json")})
	if !errors.As(err, &ve) || !strings.Contains(ve.ErrorMessage(), "blue") || !strings.Contains(ve.ErrorMessage(), "primary") {
		t.Fatalf("wrong variant: %v", err)
	}
	_, err = sm.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("intent"),
		Body: []byte(strings.Repeat("x", 6291457)), ContentType: aws.String("text/plain")})
	if !errors.As(err, &ve) || !strings.Contains(ve.ErrorMessage(), "6291456") {
		t.Fatalf("oversize body: %v", err)
	}
	_, err = sm.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("intent"),
		Body: []byte(`{not json`), ContentType: aws.String("application/json")})
	var me *smtypes.ModelError
	if !errors.As(err, &me) || aws.ToInt32(me.OriginalStatusCode) != 400 {
		t.Fatalf("the container's 400 must reach the client as ModelError: %v", err)
	}

	// The instances' time is in the ledger, priced by the instance type,
	// and so are the invocations (the oversize body is refused before it
	// is one): both are written off the request path, so poll for them.
	var usage struct {
		Hosting []hosting.HostingRow `json:"hosting"`
		Rows    []struct {
			Group    string `json:"group"`
			Requests int    `json:"requests"`
		} `json:"rows"`
	}
	invocations := func() int {
		for _, r := range usage.Rows {
			if r.Group == "sagemaker" {
				return r.Requests
			}
		}
		return 0
	}
	metered := time.Now().Add(10 * time.Second)
	for {
		j.admin("GET", "/api/v1/usage?group_by=surface", nil, http.StatusOK, &usage)
		if len(usage.Hosting) > 0 && usage.Hosting[0].InstanceHours > 0 && invocations() >= 4 {
			break
		}
		if time.Now().After(metered) {
			t.Fatalf("after 10s the ledger has hosting %+v and invocations %+v", usage.Hosting, usage.Rows)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(usage.Hosting) != 1 || usage.Hosting[0].Endpoint != "intent" {
		t.Fatalf("hosting usage: %+v", usage.Hosting)
	}
	h := usage.Hosting[0]
	if d := h.CostUSD - h.InstanceHours*0.80; d > 1e-9 || d < -1e-9 {
		t.Fatalf("cost %g for %g instance hours of ml.g6.xlarge ($0.80/h)", h.CostUSD, h.InstanceHours)
	}
	if n := invocations(); n != 4 {
		t.Fatalf("the ledger has %d invocations, want 4: %+v", n, usage.Rows)
	}

	// Delete stops its instances and forgets it; the history stays.
	pids := []int{}
	for _, in := range got.Variants[0].Instances {
		pids = append(pids, in.PID)
	}
	j.admin("DELETE", "/api/v1/endpoints/intent", nil, http.StatusAccepted, nil)
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, _, _ := j.do("GET", "/api/v1/endpoints/intent", adminKey, "")
		if status == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("endpoint not deleted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range pids {
		if processAlive(pid) {
			t.Fatalf("model server %d still runs after delete", pid)
		}
	}
	var events struct{ Events []hosting.Event }
	j.admin("GET", "/api/v1/endpoints/intent/events", nil, http.StatusOK, &events)
	if n := len(events.Events); n < 3 || !strings.Contains(events.Events[n-1].Message, "deleted") {
		t.Fatalf("events: %+v", events.Events)
	}
}

func processAlive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	if err != nil {
		return false
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	// A zombie (state Z) has exited.
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && len(b) > i+2 {
		return b[i+2] != 'Z'
	}
	return true
}

func TestBadResourcesAreRefusedWithReasons(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	art := demoArtifact(t)
	cases := []struct {
		path, body, want string
		status           int
	}{
		{"/api/v1/models", `{"name":"bad name","artifact":"file:///x","server":{"command":"junction"}}`, "letters, digits and hyphens", 400},
		{"/api/v1/models", `{"name":"m","server":{"type":"grpc","command":"x"}}`, "artifact: required", 400},
		{"/api/v1/models", `{"name":"m","artifact":"/x","server":{"type":"grpc","command":"x"}}`, "byoc or openai", 400},
		{"/api/v1/models", `{"name":"m","artifact":"/x","server":{"command":"x"},"bogus":1}`, "bogus", 400},
		{"/api/v1/endpoint-configs", `{"name":"c","production_variants":[{"name":"a","model":"missing","instance_type":"ml.g6.xlarge"}]}`, "does not exist", 400},
		{"/api/v1/endpoint-configs", `{"name":"c","production_variants":[]}`, "1 to 10 variants", 400},
		{"/api/v1/endpoints", `{"name":"e","config":"nope"}`, "does not exist", 400},
	}
	for _, c := range cases {
		status, _, b := j.do("POST", c.path, adminKey, c.body)
		if status != c.status || !strings.Contains(string(b), c.want) {
			t.Errorf("POST %s %s: %d %s, want %d mentioning %q", c.path, c.body, status, b, c.status, c.want)
		}
	}
	j.model("m", art, "byoc", nil)
	// A model no endpoint serves can be updated (all of it; not renamed).
	if st, _, b := j.do("PUT", "/api/v1/models/m", adminKey, fmt.Sprintf(`{"artifact":"file://%s","server":{"command":"junction","args":["model-server","--shutdown-timeout","1s"]}}`, art)); st != 200 {
		t.Fatalf("update: %d %s", st, b)
	}
	var m hosting.Model
	j.admin("GET", "/api/v1/models/m", nil, http.StatusOK, &m)
	if len(m.Server.Args) != 3 || m.CreatedAt.IsZero() {
		t.Fatalf("after update: %+v", m)
	}
	if st, _, b := j.do("PUT", "/api/v1/models/m", adminKey, `{"name":"other","artifact":"/x","server":{"command":"x"}}`); st != 400 || !strings.Contains(string(b), "renamed") {
		t.Fatalf("rename: %d %s", st, b)
	}
	status, _, b := j.do("POST", "/api/v1/endpoint-configs", adminKey, `{"name":"c","production_variants":[{"name":"a","model":"m","instance_type":"ml.nope"}]}`)
	if status != 400 || !strings.Contains(string(b), "instance-types") {
		t.Errorf("unknown instance type: %d %s", status, b)
	}
	j.model("broken", art, "byoc", map[string]string{"JUNCTION_MODEL_SERVER_EXIT_AT_START": "7"})
	j.endpointConfig("broken-c", hosting.Variant{Name: "a", Model: "broken", InstanceType: "ml.g6.xlarge"})
	// A server that cannot start fails the endpoint with the reason.
	var ep hosting.Endpoint
	j.admin("POST", "/api/v1/models", hosting.Model{Name: "slow-fail", Artifact: "file://" + art,
		Server: hosting.Server{Command: "junction", Args: []string{"model-server"}, Env: map[string]string{"JUNCTION_MODEL_SERVER_EXIT_AT_START": "7"}, StartupTimeoutSeconds: 2}},
		http.StatusCreated, nil)
	j.endpointConfig("slow-fail-c", hosting.Variant{Name: "a", Model: "slow-fail", InstanceType: "ml.g6.xlarge"})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "sf", "config": "slow-fail-c"}, http.StatusCreated, &ep)
	failed := j.waitEndpoint("sf", 20*time.Second, func(e *hosting.Endpoint) bool { return e.Status == hosting.StatusFailed })
	if !strings.Contains(failed.FailureReason, "did not become ready") || !strings.Contains(failed.FailureReason, "status 7") {
		t.Fatalf("failure reason: %q", failed.FailureReason)
	}
	if status, _, b := j.invoke("sf", `{"inputs":"x"}`); status != 400 || !strings.Contains(string(b), "Failed") {
		t.Fatalf("invoking a failed endpoint: %d %s", status, b)
	}
}

// load runs invocations from several clients until stop is closed and
// counts failures: all of them, and those of requests sent after mark.
type load struct {
	ok, failed  atomic.Int64
	marked      atomic.Bool
	failedAfter atomic.Int64
	mu          sync.Mutex
	errs        []string
	wg          sync.WaitGroup
	stop        chan struct{}
}

// mark splits the load: failures of requests sent from now on are also
// counted in failedAfter.
func (l *load) mark() { l.marked.Store(true) }

func startLoad(j *junction, endpoint string, clients int) *load {
	l := &load{stop: make(chan struct{})}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				after := l.marked.Load()
				req, _ := http.NewRequest("POST", j.url+"/endpoints/"+endpoint+"/invocations", strings.NewReader(`{"inputs":"my invoice is wrong"}`))
				req.Header.Set("Authorization", "Bearer "+adminKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					l.record(err.Error(), after)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					l.record(fmt.Sprintf("%d %s", resp.StatusCode, b), after)
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	return l
}

func (l *load) record(e string, afterMark bool) {
	l.failed.Add(1)
	if afterMark {
		l.failedAfter.Add(1)
	}
	l.mu.Lock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, e)
	}
	l.mu.Unlock()
}

func (l *load) finish() (ok, failed int64, errs []string) {
	close(l.stop)
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load(), l.errs
}

// waitOK waits until the load has had n more successes.
func (l *load) waitOK(t *testing.T, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	deadline := time.Now().Add(20 * time.Second)
	for l.ok.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("load stalled at %d successes", l.ok.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCrashedInstanceIsReplacedWhileOthersServe(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	j.model("m", demoArtifact(t), "byoc", map[string]string{modelserver.EnvFaults: "1"})
	j.endpointConfig("c1", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 2})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c1"}, http.StatusCreated, nil)
	j.waitEndpoint("ep", 30*time.Second, inService)

	l := startLoad(j, "ep", 4)
	l.waitOK(t, 50)
	// This request kills the instance that takes it.
	status, _, b := j.invoke("ep", `{"inputs":"x"}`, "X-Amzn-SageMaker-Custom-Attributes", "fault=crash")
	if status != http.StatusFailedDependency || !strings.Contains(string(b), "primary") {
		t.Fatalf("the crashing request: %d %s", status, b)
	}
	restarts := func(e *hosting.Endpoint) int {
		n := 0
		for _, in := range e.Variants[0].Instances {
			n += in.Restarts
		}
		return n
	}
	// Once Junction has seen the instance die (it is restarting), it is
	// out of rotation: from then on every request goes to the survivor
	// until the replacement is ready, and none may fail.
	j.waitEndpoint("ep", 20*time.Second, func(e *hosting.Endpoint) bool { return restarts(e) == 1 })
	l.mark()
	l.waitOK(t, 100)
	replaced := j.waitEndpoint("ep", 20*time.Second, func(e *hosting.Endpoint) bool {
		return restarts(e) == 1 && e.Variants[0].CurrentInstanceCount == 2
	})
	l.waitOK(t, 100)
	ok, failed, errs := l.finish()
	// Only requests in flight on the crashed instance when it died may
	// fail: at most one per client.
	if failed > 4 || l.failedAfter.Load() != 0 {
		t.Fatalf("%d of %d requests failed around the crash, %d of them sent after Junction saw it: %v", failed, ok+failed, l.failedAfter.Load(), errs)
	}
	t.Logf("%d ok, %d failed (in flight on the crashed instance); instances %+v", ok, failed, replaced.Variants[0].Instances)
}

func TestUpdateUnderLoadFailsNoRequest(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	art := demoArtifact(t)
	j.model("m", art, "byoc", nil)
	// The new version ships as a .tar.gz, unpacked once into the cache.
	tgz := filepath.Join(t.TempDir(), "model.tar.gz")
	if err := refmodel.WriteDemoTarGz(tgz); err != nil {
		t.Fatal(err)
	}
	j.model("m2", tgz, "byoc", map[string]string{"JUNCTION_MODEL_SERVER_DELAY": "1ms"})
	j.endpointConfig("v1", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 2})
	j.endpointConfig("v2", hosting.Variant{Name: "primary", Model: "m2", InstanceType: "ml.g5.xlarge", InstanceCount: 2})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "v1"}, http.StatusCreated, nil)
	first := j.waitEndpoint("ep", 30*time.Second, inService)

	l := startLoad(j, "ep", 4)
	l.waitOK(t, 50)
	var ep hosting.Endpoint
	j.admin("PUT", "/api/v1/endpoints/ep", map[string]any{"config": "v2", "deployment": map[string]any{"type": "linear", "linear_step_percent": 50, "wait_seconds": 0.3}},
		http.StatusAccepted, &ep)
	if ep.Status != hosting.StatusUpdating {
		t.Fatalf("updating endpoint is %s", ep.Status)
	}
	done := j.waitEndpoint("ep", 30*time.Second, func(e *hosting.Endpoint) bool { return inService(e) && e.Config == "v2" })
	l.waitOK(t, 50)
	ok, failed, errs := l.finish()
	if failed != 0 {
		t.Fatalf("%d of %d requests failed during the update: %v", failed, ok+failed, errs)
	}
	if done.FailureReason != "" || len(done.Variants) != 1 || done.Variants[0].InstanceType != "ml.g5.xlarge" {
		t.Fatalf("after the update: %+v", done)
	}
	for _, in := range first.Variants[0].Instances {
		if processAlive(in.PID) {
			t.Fatalf("old instance %s (pid %d) still runs", in.ID, in.PID)
		}
	}
	cached, _ := filepath.Glob(filepath.Join(j.dataDir, "artifacts", "*", "model.json"))
	if len(cached) != 1 {
		t.Fatalf("the archive should be unpacked once into the artifact cache: %v", cached)
	}
	var events struct{ Events []hosting.Event }
	j.admin("GET", "/api/v1/endpoints/ep/events", nil, http.StatusOK, &events)
	all := ""
	for _, e := range events.Events {
		all += e.Message + "\n"
	}
	if !strings.Contains(all, "shifted 50%") || !strings.Contains(all, "shifted 100%") || !strings.Contains(all, "update complete") {
		t.Fatalf("events:\n%s", all)
	}
}

func TestCanaryThatTripsItsAlarmRollsBack(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	art := demoArtifact(t)
	j.model("good", art, "byoc", nil)
	j.model("bad", art, "byoc", map[string]string{"JUNCTION_MODEL_SERVER_FAIL_RATE": "1"})
	j.endpointConfig("good-c", hosting.Variant{Name: "primary", Model: "good", InstanceType: "ml.g6.xlarge"})
	j.endpointConfig("bad-c", hosting.Variant{Name: "primary", Model: "bad", InstanceType: "ml.g6.xlarge"})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "good-c"}, http.StatusCreated, nil)
	j.waitEndpoint("ep", 30*time.Second, inService)

	l := startLoad(j, "ep", 4)
	j.admin("PUT", "/api/v1/endpoints/ep", map[string]any{"config": "bad-c", "deployment": map[string]any{
		"type": "canary", "canary_percent": 20, "wait_seconds": 30, "alarms": map[string]any{"max_error_rate": 0.1, "min_invocations": 5}}},
		http.StatusAccepted, nil)
	back := j.waitEndpoint("ep", 30*time.Second, func(e *hosting.Endpoint) bool { return inService(e) && e.FailureReason != "" })
	ok, failed, _ := l.finish()
	if back.Config != "good-c" || !strings.Contains(back.FailureReason, "alarm") || !strings.Contains(back.FailureReason, "error rate") {
		t.Fatalf("after rollback: config %s, reason %q", back.Config, back.FailureReason)
	}
	// Only the canary's share failed, and only until the alarm tripped.
	if failed == 0 || failed > ok {
		t.Fatalf("%d ok, %d failed: the canary should have taken a small share", ok, failed)
	}
	for _, v := range back.Variants {
		if v.Config != "good-c" {
			t.Fatalf("the canary fleet still runs: %+v", back.Variants)
		}
	}
	// After the rollback every request succeeds again.
	for range 20 {
		if status, _, b := j.invoke("ep", `{"inputs":"hello"}`); status != 200 {
			t.Fatalf("after rollback: %d %s", status, b)
		}
	}
}

func TestSelfHostedModelBehindTheGatewayWithCloudFallback(t *testing.T) {
	fake := &fakeopenai.Server{Record: true}
	up := httptest.NewServer(fake)
	defer up.Close()
	j := startHosted(t, t.TempDir(), up.URL, `
models:
  - {name: local-lm, provider: endpoint, upstream_model: lm}
  - {name: cloud-mini, provider: cloud, upstream_model: gpt-4o-mini}
routes:
  - name: chat
    strategy: weighted
    deployments: [{model: local-lm}]
    fallbacks: [cloud-mini]
`)
	j.model("lm", demoArtifact(t), "openai", nil)
	j.endpointConfig("lm-c", hosting.Variant{Name: "primary", Model: "lm", InstanceType: "ml.g6.xlarge"})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "lm", "config": "lm-c"}, http.StatusCreated, nil)
	j.waitEndpoint("lm", 30*time.Second, inService)

	ask := func(model string) (int, map[string]any) {
		status, _, b := j.do("POST", "/v1/chat/completions", adminKey,
			fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"the keeper climbs the stairs"}],"max_tokens":12,"temperature":0}`, model))
		var out map[string]any
		json.Unmarshal(b, &out)
		return status, out
	}
	// The endpoint is listed among the models.
	_, _, list := j.do("GET", "/v1/models", adminKey, "")
	if !strings.Contains(string(list), `"id":"lm","object":"model","created":0,"owned_by":"junction-endpoint"`) {
		t.Fatalf("/v1/models: %s", list)
	}
	// The endpoint's own name, a configured model on it, and a route.
	for _, name := range []string{"lm", "local-lm", "chat"} {
		status, out := ask(name)
		if status != 200 {
			t.Fatalf("%s: %d %v", name, status, out)
		}
		msg := out["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"].(string)
		if msg == "" || strings.Contains(msg, "fake") {
			t.Fatalf("%s: the answer should come from the reference model: %q", name, msg)
		}
	}
	// Streamed, through the same endpoint.
	status, _, sse := j.do("POST", "/v1/chat/completions", adminKey,
		`{"model":"lm","stream":true,"messages":[{"role":"user","content":"the keeper climbs"}],"max_tokens":8,"temperature":0}`)
	if status != 200 || !strings.Contains(string(sse), `"chat.completion.chunk"`) || !strings.HasSuffix(strings.TrimSpace(string(sse)), "data: [DONE]") {
		t.Fatalf("stream: %d %s", status, sse)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("the cloud was called %d times while the endpoint served", n)
	}
	// With the endpoint gone, the route falls back to the cloud model.
	j.admin("DELETE", "/api/v1/endpoints/lm", nil, http.StatusAccepted, nil)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if status, _, _ := j.do("GET", "/api/v1/endpoints/lm", adminKey, ""); status == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not deleted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status, out := ask("chat"); status != 200 || len(fake.Requests()) != 1 {
		t.Fatalf("fallback: %d %v (cloud calls %d)", status, out, len(fake.Requests()))
	}
	recs := j.records(5)
	providers := map[string]int{}
	for _, r := range recs {
		providers[r.Provider]++
	}
	if providers["endpoint"] != 4 || providers["cloud"] != 1 {
		t.Fatalf("ledger providers: %v", providers)
	}
}

func TestRestartAdoptsRunningModelServers(t *testing.T) {
	dir := t.TempDir()
	keep := "hosting: {health_interval: 100ms, stop_grace: 3s, meter_interval: 100ms, keep_instances_on_shutdown: true}\n"
	j := startHosted(t, dir, "", keep)
	j.model("m", demoArtifact(t), "byoc", nil)
	j.endpointConfig("c", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 2})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c"}, http.StatusCreated, nil)
	before := j.waitEndpoint("ep", 30*time.Second, inService)
	j.stop()
	for _, in := range before.Variants[0].Instances {
		if !processAlive(in.PID) {
			t.Fatalf("keep_instances_on_shutdown: model server %d was stopped", in.PID)
		}
	}

	// The next Junction adopts them: same processes, no second fleet.
	j2 := startHosted(t, dir, "", keep)
	after := j2.waitEndpoint("ep", 30*time.Second, inService)
	if len(after.Variants[0].Instances) != 2 {
		t.Fatalf("instances after restart: %+v", after.Variants[0].Instances)
	}
	for i, in := range after.Variants[0].Instances {
		if !in.Adopted || in.PID != before.Variants[0].Instances[0].PID && in.PID != before.Variants[0].Instances[1].PID {
			t.Fatalf("instance %d was not adopted: %+v (before: %+v)", i, in, before.Variants[0].Instances)
		}
	}
	if status, _, b := j2.invoke("ep", `{"inputs":"where is my refund"}`); status != 200 {
		t.Fatalf("invoke after adoption: %d %s", status, b)
	}
	j2.stop()

	// A Junction that does not keep them stops them on shutdown.
	j3 := startHosted(t, dir, "", "")
	again := j3.waitEndpoint("ep", 30*time.Second, inService)
	j3.stop()
	for _, in := range again.Variants[0].Instances {
		if processAlive(in.PID) {
			t.Fatalf("model server %d outlived a plain shutdown", in.PID)
		}
	}
}

func TestShadowVariantGetsACopyOfTrafficAndStreamsWork(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	art := demoArtifact(t)
	j.model("live", art, "byoc", nil)
	j.model("candidate", art, "byoc", map[string]string{"JUNCTION_MODEL_SERVER_FAIL_RATE": "1"})
	j.admin("POST", "/api/v1/endpoint-configs", hosting.EndpointConfig{Name: "c",
		Variants: []hosting.Variant{{Name: "primary", Model: "live", InstanceType: "ml.g6.xlarge"}},
		Shadow:   []hosting.Variant{{Name: "shadow", Model: "candidate", InstanceType: "ml.g6.xlarge"}}}, http.StatusCreated, nil)
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c"}, http.StatusCreated, nil)
	j.waitEndpoint("ep", 30*time.Second, inService)

	// The shadow fails every call; clients never see it.
	for range 20 {
		status, hdr, b := j.invoke("ep", `{"inputs":"please reset my password"}`)
		if status != 200 || hdr.Get("X-Amzn-Invoked-Production-Variant") != "primary" {
			t.Fatalf("invoke: %d %s %s", status, hdr.Get("X-Amzn-Invoked-Production-Variant"), b)
		}
	}
	ep := j.waitEndpoint("ep", 10*time.Second, func(e *hosting.Endpoint) bool {
		for _, v := range e.Variants {
			if v.Shadow && v.Invocations == 20 {
				return true
			}
		}
		return false
	})
	for _, v := range ep.Variants {
		switch {
		case v.Shadow && (v.Errors != 20 || v.TrafficShare != 0):
			t.Fatalf("shadow: %+v", v)
		case !v.Shadow && (v.Invocations != 20 || v.Errors != 0 || v.TrafficShare != 1):
			t.Fatalf("primary: %+v", v)
		}
	}

	// InvokeEndpointWithResponseStream through the SDK: the parts join
	// into the same answer a plain invocation gets.
	sm := j.sagemakerClient()
	body := []byte(`{"inputs":"the dashboard will not load"}`)
	_, _, plain := j.invoke("ep", string(body))
	out, err := sm.InvokeEndpointWithResponseStream(context.Background(), &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
		EndpointName: aws.String("ep"), Body: body, ContentType: aws.String("application/json")})
	if err != nil {
		t.Fatal(err)
	}
	stream := out.GetStream()
	var got []byte
	for ev := range stream.Events() {
		if p, ok := ev.(*smtypes.ResponseStreamMemberPayloadPart); ok {
			got = append(got, p.Value.Bytes...)
		}
	}
	if err := stream.Close(); err != nil || stream.Err() != nil {
		t.Fatalf("stream: %v %v", err, stream.Err())
	}
	if string(got) != string(plain) || aws.ToString(out.InvokedProductionVariant) != "primary" {
		t.Fatalf("streamed %q (variant %q), plain %q", got, aws.ToString(out.InvokedProductionVariant), plain)
	}
}

func TestInvocationsAreRateLimited(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "governance: {rate_limits: [{scope: \"model:ep\", rpm: 3}]}\n")
	j.model("m", demoArtifact(t), "byoc", nil)
	j.endpointConfig("c", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge"})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c"}, http.StatusCreated, nil)
	j.waitEndpoint("ep", 30*time.Second, inService)
	var statuses []int
	for range 5 {
		status, hdr, b := j.invoke("ep", `{"inputs":"hello"}`)
		statuses = append(statuses, status)
		if status == http.StatusTooManyRequests && (hdr.Get("X-Amzn-Errortype") != "ThrottlingException" || hdr.Get("Retry-After") == "" || !strings.Contains(string(b), "model:ep")) {
			t.Fatalf("refusal: %v %s", hdr, b)
		}
	}
	if fmt.Sprint(statuses) != "[200 200 200 429 429]" {
		t.Fatalf("statuses %v, want 3 admitted of 5 at 3 per minute", statuses)
	}
}

func TestUnhealthyInstanceIsDrainedAndReplaced(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	j.model("m", demoArtifact(t), "byoc", map[string]string{modelserver.EnvFaults: "1"})
	j.endpointConfig("c", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 2})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c"}, http.StatusCreated, nil)
	ep := j.waitEndpoint("ep", 30*time.Second, inService)
	sick := ep.Variants[0].Instances[0]

	l := startLoad(j, "ep", 4)
	l.waitOK(t, 50)
	// Its health checks start failing while it still answers invocations:
	// it is drained, stopped gracefully and started again.
	resp, err := http.Post("http://"+sick.Addr+"/faults", "application/json", strings.NewReader(`{"ping_fail": true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	j.waitEndpoint("ep", 20*time.Second, func(e *hosting.Endpoint) bool {
		for _, in := range e.Variants[0].Instances {
			if in.ID == sick.ID {
				return in.Restarts == 1 && in.State == "Ready" && in.PID != sick.PID && e.Variants[0].CurrentInstanceCount == 2
			}
		}
		return false
	})
	l.waitOK(t, 50)
	ok, failed, errs := l.finish()
	if failed != 0 {
		t.Fatalf("%d of %d requests failed while an unhealthy instance was replaced: %v", failed, ok+failed, errs)
	}
	// The two history lines are written by the effects worker after the
	// state they report is visible, so they are waited for, not read once.
	j.waitEvent("ep", "is Unhealthy: 3 health checks failed", 5*time.Second)
	j.waitEvent("ep", "ready again after 1 restart", 5*time.Second)
}

func TestScaleAndReweightARunningEndpoint(t *testing.T) {
	dir := t.TempDir()
	j := startHosted(t, dir, "", "")
	art := demoArtifact(t)
	j.model("a", art, "byoc", nil)
	j.model("b", art, "byoc", nil)
	j.endpointConfig("c",
		hosting.Variant{Name: "blue", Model: "a", InstanceType: "ml.g6.xlarge", Weight: 1},
		hosting.Variant{Name: "green", Model: "b", InstanceType: "ml.g6.xlarge", Weight: 1})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c"}, http.StatusCreated, nil)
	j.waitEndpoint("ep", 30*time.Second, inService)

	l := startLoad(j, "ep", 4)
	l.waitOK(t, 50)
	// blue to three instances and all the traffic; green to none.
	var ep hosting.Endpoint
	j.admin("PUT", "/api/v1/endpoints/ep/variants", map[string]any{"variants": []map[string]any{
		{"variant": "blue", "instance_count": 3, "weight": 1}, {"variant": "green", "weight": 0}}}, http.StatusOK, &ep)
	if ep.Generation != ep.ObservedGeneration+1 || ep.Status != hosting.StatusUpdating {
		t.Fatalf("the answer should come once the change is stored, before it is applied: %+v", ep)
	}
	ep = *j.waitEndpoint("ep", 30*time.Second, converged)
	for _, v := range ep.Variants {
		switch {
		case v.Name == "blue" && (v.CurrentInstanceCount != 3 || v.TrafficShare != 1):
			t.Fatalf("blue: %+v", v)
		case v.Name == "green" && v.TrafficShare != 0:
			t.Fatalf("green: %+v", v)
		}
	}
	l.waitOK(t, 50)
	for range 10 {
		if _, hdr, _ := j.invoke("ep", `{"inputs":"x"}`); hdr.Get("X-Amzn-Invoked-Production-Variant") != "blue" {
			t.Fatalf("a zero-weight variant got traffic: %s", hdr.Get("X-Amzn-Invoked-Production-Variant"))
		}
	}
	// And back down to one, under load.
	j.admin("PUT", "/api/v1/endpoints/ep/variants", map[string]any{"variants": []map[string]any{{"variant": "blue", "instance_count": 1}}}, http.StatusOK, &ep)
	j.waitEndpoint("ep", 30*time.Second, converged)
	l.waitOK(t, 50)
	ok, failed, errs := l.finish()
	if failed != 0 {
		t.Fatalf("%d of %d requests failed while scaling: %v", failed, ok+failed, errs)
	}
	if st, _, b := j.do("PUT", "/api/v1/endpoints/ep/variants", adminKey, `{"variants":[{"variant":"red","instance_count":2},{"variant":"blue","instance_count":99}]}`); st != 400 ||
		!strings.Contains(string(b), `\"red\" is not a variant`) || !strings.Contains(string(b), "instance_count: 99") {
		t.Fatalf("bad capacities: %d %s", st, b)
	}

	// The shape survives a restart of Junction.
	j.stop()
	j2 := startHosted(t, dir, "", "")
	after := j2.waitEndpoint("ep", 30*time.Second, inService)
	for _, v := range after.Variants {
		if v.Name == "blue" && (v.DesiredInstanceCount != 1 || v.Weight != 1) || v.Name == "green" && v.Weight != 0 {
			t.Fatalf("after restart: %+v", after.Variants)
		}
	}
}
