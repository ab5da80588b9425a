package hosting

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/store"
)

func TestDeploymentSteps(t *testing.T) {
	cases := []struct {
		d    Deployment
		want []float64
	}{
		{Deployment{}, []float64{1}},
		{Deployment{Type: PolicyCanary}, []float64{0.1, 1}},
		{Deployment{Type: PolicyCanary, CanaryPercent: 25}, []float64{0.25, 1}},
		{Deployment{Type: PolicyLinear}, []float64{0.25, 0.5, 0.75, 1}},
		{Deployment{Type: PolicyLinear, LinearStepPercent: 40}, []float64{0.4, 0.8, 1}},
		{Deployment{Type: PolicyLinear, LinearStepPercent: 100}, []float64{1}},
	}
	for _, c := range cases {
		if err := c.d.Validate(); err != nil {
			t.Fatal(err)
		}
		got := c.d.steps()
		if len(got) != len(c.want) {
			t.Fatalf("%+v: steps %v, want %v", c.d, got, c.want)
		}
		for i := range got {
			if math.Abs(got[i]-c.want[i]) > 1e-9 {
				t.Fatalf("%+v: steps %v, want %v", c.d, got, c.want)
			}
		}
	}
	bad := Deployment{Type: "blue_green", CanaryPercent: 100, Alarms: Alarms{MaxErrorRate: 2}}
	err := bad.Validate()
	for _, want := range []string{"all_at_once, canary or linear", "canary_percent", "max_error_rate"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error mentioning %q, got %v", want, err)
		}
	}
}

func TestConfigValidationFillsSageMakerDefaults(t *testing.T) {
	known := func(s string) bool { return s == "ml.g6.xlarge" }
	c := EndpointConfig{Name: "c", Variants: []Variant{{Name: "a", Model: "m", InstanceType: "ml.g6.xlarge"}, {Name: "b", Model: "m", InstanceType: "ml.g6.xlarge"}}}
	if err := c.Validate(known); err != nil {
		t.Fatal(err)
	}
	if c.Routing != RoutingLeastOutstanding || c.Variants[0].InstanceCount != 1 || c.Variants[0].Weight != 1 || c.Variants[1].Weight != 1 {
		t.Fatalf("defaults: %+v", c)
	}
	bad := EndpointConfig{Name: "-c", Routing: "round_robin",
		Variants: []Variant{{Name: "a", InstanceType: "ml.x", InstanceCount: 99, Weight: -1}, {Name: "a", Model: "m", InstanceType: "ml.g6.xlarge"}},
		Shadow:   []Variant{{Name: "s", Model: "m", InstanceType: "ml.g6.xlarge"}}}
	err := bad.Validate(known)
	for _, want := range []string{"name:", "routing:", "model: required", "instance_count: 99", "weight: -1", "used twice", "not in the instance catalog", "exactly one production variant"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error mentioning %q, got %v", want, err)
		}
	}
}

func TestStatsP99AndAlarm(t *testing.T) {
	v := &variant{spec: Variant{Name: "primary"}}
	v.stats.init()
	f := &fleet{variants: []*variant{v}}
	a := Alarms{MaxErrorRate: 0.1, MaxP99MS: 50, MinInvocations: 10}
	for i := range 9 {
		v.stats.record(float64(i), true) // too few to judge
	}
	if r := alarm(f, a); r != "" {
		t.Fatalf("judged before min_invocations: %s", r)
	}
	v.stats = stats{}
	v.stats.init()
	for i := 1; i <= 100; i++ {
		v.stats.record(float64(i), i%20 == 0) // 5% errors; latencies 1..100 ms
	}
	inv, errs, p99 := v.stats.snapshot()
	if inv != 100 || errs != 5 || p99 != 99 {
		t.Fatalf("snapshot: %d invocations, %d errors, p99 %g", inv, errs, p99)
	}
	if r := alarm(f, a); !strings.Contains(r, "p99 latency 99 ms is above 50 ms") {
		t.Fatalf("p99 alarm: %q", r)
	}
	a.MaxP99MS = 0
	if r := alarm(f, a); r != "" {
		t.Fatalf("5%% errors under a 10%% alarm tripped: %s", r)
	}
	a.MaxErrorRate = 0.04
	if r := alarm(f, a); !strings.Contains(r, "error rate 5.0% (5 of 100)") {
		t.Fatalf("error alarm: %q", r)
	}
}

func TestCatalogInstancesProfiles(t *testing.T) {
	types := CatalogInstances(ledger.Builtin())
	cases := map[string]InstanceType{
		"ml.g7e.2xlarge":   {GPUs: 2, CPUs: 8, MemoryMB: 32 * 1024, USDPerHour: 5},
		"ml.g6.xlarge":     {GPUs: 1, CPUs: 4, MemoryMB: 16 * 1024, USDPerHour: 0.80},
		"ml.inf2.24xlarge": {GPUs: 0, CPUs: 96, MemoryMB: 384 * 1024, USDPerHour: 6.50},
	}
	for typ, want := range cases {
		got, ok := types[typ]
		if !ok {
			t.Fatalf("%s is not in the catalog", typ)
		}
		if got.GPUs != want.GPUs || got.CPUs != want.CPUs || got.MemoryMB != want.MemoryMB || got.USDPerHour != want.USDPerHour {
			t.Errorf("%s: %+v, want %+v", typ, got, want)
		}
	}
}

func TestHostingReportClipsSegmentsToTheWindow(t *testing.T) {
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := &Store{DB: db}
	price := 0.80
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	segs := []Segment{
		// 10:00-12:00 on a priced type, in two segments.
		{Endpoint: "e", Variant: "a", InstanceID: "i1", InstanceType: "ml.g6.xlarge", Start: t0, End: t0.Add(time.Hour), USDPerHour: &price},
		{Endpoint: "e", Variant: "a", InstanceID: "i1", InstanceType: "ml.g6.xlarge", Start: t0.Add(time.Hour), End: t0.Add(2 * time.Hour), USDPerHour: &price},
		// 11:30-12:30 on an unpriced type.
		{Endpoint: "e", Variant: "b", InstanceID: "i2", InstanceType: "local.x", Start: t0.Add(90 * time.Minute), End: t0.Add(150 * time.Minute)},
	}
	if err := s.addSegments(context.Background(), segs); err != nil {
		t.Fatal(err)
	}
	// Window 10:30-12:00: 1.5 h of i1 ($1.20), 0.5 h of i2 (unpriced).
	rows, err := HostingReport(context.Background(), db, t0.Add(30*time.Minute), t0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("rows: %+v", rows)
	}
	a, b := rows[0], rows[1]
	if a.Variant != "a" || math.Abs(a.InstanceHours-1.5) > 1e-9 || math.Abs(a.CostUSD-1.2) > 1e-9 || a.Unpriced {
		t.Fatalf("priced row: %+v", a)
	}
	if b.Variant != "b" || math.Abs(b.InstanceHours-0.5) > 1e-9 || b.CostUSD != 0 || !b.Unpriced {
		t.Fatalf("unpriced row: %+v", b)
	}
	until, err := s.meteredUntil(context.Background(), "i1")
	if err != nil || !until.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("metered until %v %v", until, err)
	}
}
