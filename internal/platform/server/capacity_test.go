package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/advisor"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/capacity"
	"github.com/junctionhq/junction/internal/ledger"
)

// junction bench endpoint, end to end: a reference-server endpoint of two
// instances is driven with rising load through Junction's SageMaker
// runtime path (as the CLI drives it, with short steps), the measurement
// is stored through the REST API and read back, and the advisor sizes a
// fleet of the endpoint's instance type with the measured capacity.
func TestCapacityMeasuredStoredAndAdvised(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	j.model("intent", demoArtifact(t), "byoc", nil)
	j.endpointConfig("intent-v1", hosting.Variant{Name: "primary", Model: "intent", InstanceType: "ml.g6.xlarge", InstanceCount: 2})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "intent", "config": "intent-v1"}, http.StatusCreated, nil)
	ep := j.waitEndpoint("intent", 30*time.Second, func(ep *hosting.Endpoint) bool {
		return inService(ep) && ep.Variants[0].CurrentInstanceCount == 2
	})

	tgt, err := capacity.TargetOf(ep, "")
	if err != nil {
		t.Fatal(err)
	}
	if tgt.Instances != 2 || tgt.InstanceType != "ml.g6.xlarge" || tgt.Config != "intent-v1" {
		t.Fatalf("target %+v", tgt)
	}
	jn := &capacity.Junction{URL: j.url, Key: adminKey, Client: capacity.HTTPClient(8, 5*time.Second)}
	var progress []capacity.Step
	d := &capacity.Driver{
		Invoke: jn.Invocations("intent", "", "application/json"), Body: []byte(`{"inputs": "I was charged twice this month"}`),
		LatencyTarget: 500 * time.Millisecond, StepDuration: 300 * time.Millisecond, MaxConcurrency: 8, MinGain: 0.05,
		Progress: func(s capacity.Step) { progress = append(progress, s) },
	}
	res, err := d.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(progress) != len(res.Steps) || res.Best == nil || res.Stopped == "" {
		t.Fatalf("run: %+v", res)
	}
	for i, s := range res.Steps {
		if s.Concurrency != []int{1, 2, 4, 8}[i] || s.Errors != 0 || s.Requests == 0 || s.RPS <= 0 || s.P95MS > 500 {
			t.Errorf("step %d: %+v", i, s)
		}
	}
	b := res.Best
	m, err := res.Measurement(tgt, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	// Stored through the REST API: the server takes the endpoint from the
	// path, prices the instance type and divides by the instances.
	var stored capacity.Measurement
	j.admin("POST", "/api/v1/endpoints/intent/capacity", m, http.StatusCreated, &stored)
	if stored.ID == 0 || stored.Endpoint != "intent" || stored.Config != "intent-v1" || stored.InstanceCount != 2 ||
		stored.RPS != b.RPS || stored.RPSPerInstance != b.RPS/2 || stored.USDPerHour != 0.8 || stored.LatencyTargetMS != 500 ||
		stored.StepMS != 300 || stored.Concurrency != b.Concurrency || len(stored.Steps) != len(res.Steps) {
		t.Fatalf("stored %+v", stored)
	}
	var list struct{ Measurements []capacity.Measurement }
	j.admin("GET", "/api/v1/endpoints/intent/capacity", nil, http.StatusOK, &list)
	if len(list.Measurements) != 1 || list.Measurements[0].ID != stored.ID || list.Measurements[0].P95MS != b.P95MS ||
		list.Measurements[0].Steps[0] != res.Steps[0] {
		t.Fatalf("read back: %+v", list.Measurements)
	}

	// The bench traffic is in the ledger, tagged as such.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, body := j.do("GET", "/api/v1/usage/records?limit=5", adminKey, "")
		var out struct{ Records []ledger.Record }
		json.Unmarshal(body, &out)
		if slices.ContainsFunc(out.Records, func(r ledger.Record) bool { return r.Tags["bench"] == "capacity" && r.Model == "intent" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no bench record in the ledger: %s", body)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The advisor sizes the endpoint's fleet with it. 100,000 requests a
	// day, flat, are 1.16 req/s: one instance serves that every hour
	// (the reference server answers hundreds a second), 24 instance-hours
	// a day × $0.80 × 30 days = $576.00.
	scenario := func(latencyMS int) string {
		return fmt.Sprintf(`{"traffic": {"requests_per_day": 100000, "avg_input_tokens": 1000, "avg_output_tokens": 200, "latency_target_ms": %d},
			"options": [{"kind": "on_demand", "model": "gpt-4o-mini"}]}`, latencyMS)
	}
	type advice struct {
		Options []struct {
			Name       string      `json:"name"`
			Kind       string      `json:"kind"`
			MonthlyUSD json.Number `json:"monthly_usd"`
			Detail     string      `json:"detail"`
			Notes      []string    `json:"notes"`
			ByHour     []int64     `json:"instances_by_hour"`
		} `json:"options"`
		Recommendation struct {
			Option string `json:"option"`
		} `json:"recommendation"`
	}
	var a advice
	j.admin("POST", "/api/v1/advisor?endpoint=intent", json.RawMessage(scenario(500)), http.StatusOK, &a)
	if len(a.Options) != 2 {
		t.Fatalf("advice: %+v", a)
	}
	o := a.Options[1]
	wantRPS := capacity.FormatRPS(b.RPS / 2)
	if o.Name != "endpoint intent" || o.Kind != "instances" || o.MonthlyUSD != "576.00" ||
		!strings.Contains(o.Detail, "fleet sized hour by hour for "+advisor.MustDec(wantRPS).String()+" req/s per instance at $0.8/h") {
		t.Errorf("measured option: %+v", o)
	}
	if len(o.Notes) == 0 || o.Notes[0] != stored.Summary() ||
		!strings.HasSuffix(o.Notes[0], "by junction bench endpoint: "+wantRPS+" req/s per ml.g6.xlarge at p95 < 500 ms") {
		t.Errorf("notes: %q, want %q first", o.Notes, stored.Summary())
	}
	// A strict latency target picks dedicated instances.
	if a.Recommendation.Option != "endpoint intent" {
		t.Errorf("recommendation: %+v", a.Recommendation)
	}

	// A measurement at a stricter target, 0.5 req/s an instance, is used
	// for a scenario whose target only it meets: 1.16 req/s need 3
	// instances every hour, 72 × 0.80 × 30 = $1,728.00.
	strict := capacity.Measurement{InstanceType: "ml.g6.xlarge", InstanceCount: 1, LatencyTargetMS: 200, RPS: 0.5,
		P50MS: 150, P95MS: 190, P99MS: 199, Concurrency: 1, StepMS: 5000}
	j.admin("POST", "/api/v1/endpoints/intent/capacity", strict, http.StatusCreated, nil)
	a = advice{}
	j.admin("POST", "/api/v1/advisor?endpoint=intent&max_instances=10", json.RawMessage(scenario(250)), http.StatusOK, &a)
	if o := a.Options[1]; o.MonthlyUSD != "1728.00" || len(o.ByHour) != 24 || o.ByHour[0] != 3 ||
		!strings.Contains(o.Notes[0], "0.500 req/s per ml.g6.xlarge at p95 < 200 ms") {
		t.Errorf("stricter measurement: %+v", o)
	}
	// At 500 ms the measurement at 500 ms still fits best.
	a = advice{}
	j.admin("POST", "/api/v1/advisor?endpoint=intent", json.RawMessage(scenario(500)), http.StatusOK, &a)
	if o := a.Options[1]; o.MonthlyUSD != "576.00" {
		t.Errorf("at 500 ms: %+v", o)
	}

	// What cannot be answered says why, naming the field.
	for _, tc := range []struct {
		method, path, body string
		status             int
		param, message     string
	}{
		{"POST", "/api/v1/advisor?endpoint=intent", scenario(100), 400, "endpoint",
			"intent has no capacity measurement at p95 within the scenario's 100 ms latency target (the latest is at 200 ms); run junction bench endpoint intent --latency-target 100ms"},
		{"POST", "/api/v1/advisor?endpoint=nobody", scenario(500), 400, "endpoint", "nobody has no capacity measurement"},
		{"POST", "/api/v1/advisor?endpoint=intent&max_instances=lots", scenario(500), 400, "max_instances", "must be a whole number"},
		{"POST", "/api/v1/endpoints/nobody/capacity", `{"instance_type": "ml.g6.xlarge"}`, 404, "", `endpoint "nobody" does not exist`},
		{"POST", "/api/v1/endpoints/intent/capacity", `{"instance_type": "ml.g6.xlarge", "latency_target_ms": 500, "rps": 10, "concurrency": 1}`, 400,
			"instance_count", "instance_count: 0 must be at least 1"},
		{"POST", "/api/v1/endpoints/intent/capacity", `{"instance_type": "ml.x9.huge", "instance_count": 1}`, 400, "instance_type", "not in the instance catalog"},
		{"POST", "/api/v1/endpoints/intent/capacity", `{"endpoint": "other", "instance_type": "ml.g6.xlarge"}`, 400, "endpoint", "the endpoint in the path"},
		{"POST", "/api/v1/endpoints/intent/capacity", `{"rps_per_second": 1}`, 400, "", `unknown field "rps_per_second"`},
		{"GET", "/api/v1/endpoints/nobody/capacity", "", 404, "", `endpoint "nobody" does not exist`},
	} {
		status, _, body := j.do(tc.method, tc.path, adminKey, tc.body)
		var e struct {
			Error struct {
				Message string `json:"message"`
				Param   string `json:"param"`
			} `json:"error"`
		}
		json.Unmarshal(body, &e)
		if status != tc.status || e.Error.Param != tc.param || !strings.Contains(e.Error.Message, tc.message) {
			t.Errorf("%s %s: %d %s; want %d, param %q, message with %q", tc.method, tc.path, status, body, tc.status, tc.param, tc.message)
		}
	}
	if status, _, _ := j.do("GET", "/api/v1/endpoints/intent/capacity", "", ""); status != http.StatusUnauthorized {
		t.Errorf("without a key: %d", status)
	}
}
