package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// sample is one line of a Prometheus text exposition.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var (
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
	labelPair  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// scrape reads /metrics.
func (j *junction) scrape() []sample {
	j.t.Helper()
	status, _, b := j.do("GET", "/metrics", "", "")
	if status != http.StatusOK {
		j.t.Fatalf("/metrics: %d", status)
	}
	var out []sample
	for _, line := range strings.Split(string(b), "\n") {
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		s := sample{name: m[1], labels: map[string]string{}}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			s.labels[p[1]] = p[2]
		}
		s.value, _ = strconv.ParseFloat(m[3], 64)
		out = append(out, s)
	}
	return out
}

// sum adds the samples of name whose labels include want.
func sum(samples []sample, name string, want map[string]string) (total float64, found bool) {
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		total += s.value
		found = true
	}
	return total, found
}

// After real invocations of a running endpoint, /metrics counts them by
// endpoint, variant and status, times them, and shows the fleet: desired
// and current instances, instances by state, restarts. A name a client
// makes up does not become a label. An answered invocation's latency,
// plain or streamed, is split into the model server's time, which
// includes the delay the model server was told to add, and Junction's
// overhead.
func TestSageMakerAndFleetMetrics(t *testing.T) {
	const delay = 60 * time.Millisecond
	j := startHosted(t, t.TempDir(), "", "")
	j.model("m", demoArtifact(t), "byoc", map[string]string{modelserver.EnvFaults: "1", modelserver.EnvDelay: delay.String()})
	j.endpointConfig("c1", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 2})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c1"}, http.StatusCreated, nil)
	j.waitEndpoint("ep", 30*time.Second, inService)

	for range 7 {
		if status, _, b := j.invoke("ep", `{"inputs":"the site is down"}`); status != http.StatusOK {
			t.Fatalf("invoke: %d %s", status, b)
		}
	}
	for range 3 {
		if status, _, b := j.do("POST", "/endpoints/ep/invocations-response-stream", adminKey, `{"inputs":"the site is down"}`); status != http.StatusOK {
			t.Fatalf("streamed invoke: %d %s", status, b)
		}
	}
	if status, _, _ := j.invoke("ep", `{"inputs":"x"}`, "X-Amzn-SageMaker-Custom-Attributes", "fault=error"); status != http.StatusFailedDependency {
		t.Fatalf("a model error: %d, want 424", status)
	}
	unknown, _, _ := j.invoke("made-up-name-1234", `{"inputs":"x"}`)
	if unknown < 400 {
		t.Fatalf("an unknown endpoint: %d", unknown)
	}

	m := j.scrape()
	ok := map[string]string{"endpoint": "ep", "variant": "primary"}
	if n, _ := sum(m, "junction_sagemaker_invocations_total", map[string]string{"endpoint": "ep", "variant": "primary", "status": "200"}); n != 10 {
		t.Errorf("invocations with status 200: %g, want 10", n)
	}
	if n, _ := sum(m, "junction_sagemaker_invocations_total", map[string]string{"endpoint": "ep", "variant": "primary", "status": "424"}); n != 1 {
		t.Errorf("invocations with status 424: %g, want 1", n)
	}
	if n, _ := sum(m, "junction_sagemaker_invocations_total", map[string]string{"endpoint": "", "status": strconv.Itoa(unknown)}); n != 1 {
		t.Errorf("the unknown endpoint's invocation under endpoint=\"\": %g, want 1", n)
	}
	if n, _ := sum(m, "junction_sagemaker_invocation_duration_seconds_count", ok); n != 11 {
		t.Errorf("latency histogram count: %g, want 11", n)
	}
	// The split counts the 10 answered invocations, 3 of them streamed,
	// once each; the 424 had no answer to time.
	for _, h := range []string{"junction_sagemaker_model_latency_seconds", "junction_sagemaker_overhead_latency_seconds"} {
		if n, _ := sum(m, h+"_count", ok); n != 10 {
			t.Errorf("%s count: %g, want 10", h, n)
		}
	}
	modelSum, _ := sum(m, "junction_sagemaker_model_latency_seconds_sum", ok)
	if modelSum < 10*delay.Seconds() {
		t.Errorf("model latency sum %gs, want at least 10 × the model server's %s delay", modelSum, delay)
	}
	total, _ := sum(m, "junction_sagemaker_invocation_duration_seconds_sum", ok)
	overhead, _ := sum(m, "junction_sagemaker_overhead_latency_seconds_sum", ok)
	if overhead <= 0 || modelSum+overhead > total {
		t.Errorf("model %gs + overhead %gs must be positive and within the invocations' total %gs", modelSum, overhead, total)
	}
	for _, s := range m {
		for _, v := range s.labels {
			if strings.Contains(v, "made-up") {
				t.Errorf("a client-made name became a label: %s %v", s.name, s.labels)
			}
		}
	}
	if n, _ := sum(m, "junction_hosting_desired_instances", ok); n != 2 {
		t.Errorf("desired instances: %g, want 2", n)
	}
	if n, _ := sum(m, "junction_hosting_current_instances", ok); n != 2 {
		t.Errorf("current instances: %g, want 2", n)
	}
	if n, found := sum(m, "junction_hosting_instances", ok); n != 2 || !found {
		t.Errorf("instances by state add up to %g, want 2", n)
	}

	// A model server that crashes is restarted, and the count shows it.
	j.invoke("ep", `{"inputs":"x"}`, "X-Amzn-SageMaker-Custom-Attributes", "fault=crash")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if n, _ := sum(j.scrape(), "junction_hosting_model_server_restarts", ok); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarts never reached 1: %v", j.scrape())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Every metric the Grafana dashboard in deploy/ queries is one Junction
// exports, once it has served a chat request and an invocation.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../../deploy/grafana/junction.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	up := httptest.NewServer(&fakeopenai.Server{})
	t.Cleanup(up.Close)
	j := startHosted(t, t.TempDir(), up.URL, "models:\n  - {name: cloud-mini, provider: cloud, upstream_model: gpt-4o-mini}\n"+
		"  - {name: guarded, provider: cloud, upstream_model: gpt-4o-mini, guardrail: support}\n"+guardYAML+
		"governance:\n  budgets: [{scope: \"team:ml\", period: daily, limit_usd: 1}]\n")
	j.model("m", demoArtifact(t), "byoc", nil)
	j.endpointConfig("c1", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 1})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c1"}, http.StatusCreated, nil)
	j.waitEndpoint("ep", 30*time.Second, inService)
	if status, _, b := j.invoke("ep", `{"inputs":"hi"}`); status != http.StatusOK {
		t.Fatalf("invoke: %d %s", status, b)
	}
	if status, _, b := j.do("POST", "/v1/chat/completions", adminKey, hiBody("cloud-mini")); status != http.StatusOK {
		t.Fatalf("chat: %d %s", status, b)
	}
	if status, _, b := j.do("POST", "/v1/chat/completions", adminKey, `{"model":"guarded","messages":[{"role":"user","content":"Project Falcon?"}]}`); status != http.StatusOK {
		t.Fatalf("guarded chat: %d %s", status, b)
	}
	exported := map[string]bool{}
	for _, s := range j.scrape() {
		exported[s.name] = true
	}
	name := regexp.MustCompile(`junction_[a-z_]+`)
	queried := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				queried++
				if !exported[n] {
					t.Errorf("panel %q queries %s, which /metrics does not export", p.Title, n)
				}
			}
		}
	}
	if queried < 10 {
		t.Errorf("the dashboard queries only %d metrics", queried)
	}
}
