package capacity

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
)

// The best step's throughput is shared by the ready instances: 246.9
// req/s on 3 instances is 82.3 per instance.
func TestCapacityMeasurementPerInstance(t *testing.T) {
	steps := []Step{
		{Concurrency: 1, Requests: 400, Seconds: 5, RPS: 80, P50MS: 12, P95MS: 14, P99MS: 15},
		{Concurrency: 2, Requests: 1234, Seconds: 5, RPS: 246.9, P50MS: 8, P95MS: 9.5, P99MS: 11},
		{Concurrency: 4, Requests: 1240, Seconds: 5, RPS: 248, P50MS: 16, P95MS: 40, P99MS: 60},
	}
	res := &Result{LatencyTarget: 500 * time.Millisecond, StepDuration: 5 * time.Second, Steps: steps, Best: &steps[1],
		Stopped: "throughput stopped rising at concurrency 4"}
	at := time.Date(2026, 11, 25, 9, 30, 0, 0, time.FixedZone("CET", 3600))
	m, err := res.Measurement(&Target{Endpoint: "intent", Config: "intent-v1", InstanceType: "ml.g6.xlarge", Instances: 3}, at)
	if err != nil {
		t.Fatal(err)
	}
	if m.RPS != 246.9 || !near(m.RPSPerInstance, 82.3) || m.InstanceCount != 3 || m.Concurrency != 2 || m.P95MS != 9.5 ||
		m.LatencyTargetMS != 500 || m.StepMS != 5000 || len(m.Steps) != 3 || !m.MeasuredAt.Equal(at) || m.MeasuredAt.Location() != time.UTC {
		t.Fatalf("%+v", m)
	}
	if got, want := m.Summary(), "capacity measured 2026-11-25 by junction bench endpoint: 82.3 req/s per ml.g6.xlarge at p95 < 500 ms"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}

	// Validate derives the per-instance figure; a client cannot send
	// one that disagrees.
	m.RPSPerInstance = 1000
	if err := m.Validate(); err != nil || !near(m.RPSPerInstance, 82.3) {
		t.Errorf("validate: %v, %g per instance", err, m.RPSPerInstance)
	}
	bad := Measurement{Endpoint: "x", InstanceType: "ml.g6.xlarge", P95MS: -1}
	err = bad.Validate()
	for _, want := range []string{"instance_count: 0 must be at least 1", "latency_target_ms: 0", "rps: 0 must be a positive number", "p95_ms: -1", "concurrency: 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate %+v: %v, want it to say %q", bad, err, want)
		}
	}
}

func TestCapacityFormatRPS(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{41.23, "41.2"}, {0.3521, "0.352"}, {5.678, "5.68"}, {1234.56, "1234.6"}, {100, "100.0"}, {0.000012345, "0.000012"}, {0, "0.0"},
	} {
		if got := FormatRPS(tc.in); got != tc.want {
			t.Errorf("FormatRPS(%g) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCapacityTargetOf(t *testing.T) {
	variant := func(name, typ string, ready int, mods ...func(*hosting.VariantSummary)) hosting.VariantSummary {
		v := hosting.VariantSummary{Name: name, Config: "c1", Model: "m-" + name, InstanceType: typ, CurrentInstanceCount: ready}
		for _, f := range mods {
			f(&v)
		}
		return v
	}
	shadow := func(v *hosting.VariantSummary) { v.Shadow = true }
	pending := func(v *hosting.VariantSummary) { v.Config = "c2" }
	endpoint := func(vs ...hosting.VariantSummary) *hosting.Endpoint {
		return &hosting.Endpoint{Name: "ep", Config: "c1", Status: hosting.StatusInService, Variants: vs}
	}
	for _, tc := range []struct {
		name      string
		ep        *hosting.Endpoint
		variant   string
		instances int
		typ       string
		models    []string
		err       string
	}{
		{"one variant", endpoint(variant("a", "ml.g6.xlarge", 2)), "", 2, "ml.g6.xlarge", []string{"m-a"}, ""},
		{"shadows take a copy, not a share", endpoint(variant("a", "ml.g6.xlarge", 2), variant("s", "ml.g6.xlarge", 1, shadow)), "", 2, "ml.g6.xlarge", []string{"m-a"}, ""},
		{"variants of one type share the load", endpoint(variant("a", "ml.g6.xlarge", 2), variant("b", "ml.g6.xlarge", 1)), "", 3, "ml.g6.xlarge", []string{"m-a", "m-b"}, ""},
		{"two types need a choice", endpoint(variant("a", "ml.g6.xlarge", 2), variant("b", "ml.g5.xlarge", 1)), "", 0, "", nil,
			"runs more than one instance type (a (ml.g6.xlarge), b (ml.g5.xlarge)): pick a variant"},
		{"the chosen variant", endpoint(variant("a", "ml.g6.xlarge", 2), variant("b", "ml.g5.xlarge", 1)), "b", 1, "ml.g5.xlarge", []string{"m-b"}, ""},
		{"an unknown variant", endpoint(variant("a", "ml.g6.xlarge", 2)), "z", 0, "", nil, `has no production variant "z" (it has a)`},
		{"nothing ready", endpoint(variant("a", "ml.g6.xlarge", 0)), "", 0, "", nil, "no ready instance"},
		{"an update in progress", &hosting.Endpoint{Name: "ep", Config: "c1", Status: hosting.StatusUpdating, PendingConfig: "c2",
			Variants: []hosting.VariantSummary{variant("a", "ml.g6.xlarge", 1), variant("a", "ml.g6.xlarge", 1, pending)}}, "", 0, "", nil,
			"is Updating (moving to c2)"},
		{"still creating", &hosting.Endpoint{Name: "ep", Config: "c1", Status: hosting.StatusCreating}, "", 0, "", nil, "is Creating"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TargetOf(tc.ep, tc.variant)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("%+v, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Instances != tc.instances || got.InstanceType != tc.typ || !slices.Equal(got.Models, tc.models) ||
				got.Endpoint != "ep" || got.Config != "c1" || got.Variant != tc.variant {
				t.Errorf("%+v", got)
			}
		})
	}
}
