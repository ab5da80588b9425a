package capacity_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting/capacity"
	"github.com/junctionhq/junction/internal/platform/store"
)

// Measurements go into Junction's database and come back as they went
// in, latest first; Latest honours the latency target asked for.
func TestCapacityStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "junction.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := &capacity.Store{DB: db}

	day := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	steps := []capacity.Step{
		{Concurrency: 1, Requests: 100, Seconds: 1, RPS: 100, P50MS: 10, P95MS: 10, P99MS: 10},
		{Concurrency: 2, Requests: 180, Errors: 1, Seconds: 1, RPS: 179, P50MS: 11, P95MS: 12.5, P99MS: 14, FirstError: "HTTP 503"},
	}
	older := &capacity.Measurement{Endpoint: "intent", Config: "intent-v1", InstanceType: "ml.g6.xlarge", InstanceCount: 2,
		LatencyTargetMS: 500, RPS: 179, P50MS: 11, P95MS: 12.5, P99MS: 14, Concurrency: 2, StepMS: 1000,
		Stopped: "reached the maximum concurrency, 2", USDPerHour: 0.8, MeasuredAt: day, Steps: steps}
	strict := &capacity.Measurement{Endpoint: "intent", Config: "intent-v1", Variant: "primary", InstanceType: "ml.g6.xlarge", InstanceCount: 1,
		LatencyTargetMS: 100, RPS: 40, P50MS: 30, P95MS: 90, P99MS: 99, Concurrency: 4, StepMS: 1000, MeasuredAt: day.Add(time.Hour)}
	other := &capacity.Measurement{Endpoint: "other", Config: "c", InstanceType: "ml.g5.xlarge", InstanceCount: 1,
		LatencyTargetMS: 500, RPS: 5, Concurrency: 1, MeasuredAt: day.Add(2 * time.Hour)}
	for _, m := range []*capacity.Measurement{older, strict, other} {
		if err := s.Add(ctx, m); err != nil {
			t.Fatal(err)
		}
		if m.ID == 0 {
			t.Fatalf("no id for %+v", m)
		}
	}

	list, err := s.List(ctx, "intent", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != strict.ID || list[1].ID != older.ID {
		t.Fatalf("list: %+v", list)
	}
	got := list[1]
	if got.Endpoint != "intent" || got.Config != "intent-v1" || got.Variant != "" || got.InstanceType != "ml.g6.xlarge" ||
		got.InstanceCount != 2 || got.LatencyTargetMS != 500 || got.RPS != 179 || got.RPSPerInstance != 89.5 ||
		got.P50MS != 11 || got.P95MS != 12.5 || got.P99MS != 14 || got.Concurrency != 2 || got.StepMS != 1000 ||
		got.Stopped != older.Stopped || got.USDPerHour != 0.8 || !got.MeasuredAt.Equal(day) || len(got.Steps) != 2 || got.Steps[1] != steps[1] {
		t.Errorf("round trip: %+v", got)
	}
	if list[0].Variant != "primary" || list[0].USDPerHour != 0 || list[0].Steps == nil {
		t.Errorf("round trip: %+v", list[0])
	}

	for _, tc := range []struct {
		endpoint string
		maxMS    int
		want     int64
	}{
		{"intent", 0, strict.ID},   // no target: the most recent
		{"intent", 1000, older.ID}, // the loosest target within 1000 ms: 500
		{"intent", 500, older.ID},  // measured at exactly the target
		{"intent", 499, strict.ID}, // 500 ms is too loose; 100 fits
		{"intent", 100, strict.ID},
		{"intent", 99, 0}, // nothing measured that strictly
		{"nobody", 0, 0},
	} {
		m, err := s.Latest(ctx, tc.endpoint, tc.maxMS)
		if err != nil {
			t.Fatal(err)
		}
		if (m == nil && tc.want != 0) || (m != nil && m.ID != tc.want) {
			t.Errorf("Latest(%s, %d) = %+v, want id %d", tc.endpoint, tc.maxMS, m, tc.want)
		}
	}

	// A newer measurement at the same target replaces the older.
	newer := *older
	newer.ID, newer.MeasuredAt, newer.RPS = 0, day.Add(3*time.Hour), 200
	if err := s.Add(ctx, &newer); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Latest(ctx, "intent", 500); err != nil || m.ID != newer.ID || m.RPSPerInstance != 100 {
		t.Errorf("Latest after a newer measurement: %+v, %v", m, err)
	}

	if err := s.Add(ctx, &capacity.Measurement{Endpoint: "intent"}); err == nil {
		t.Error("an invalid measurement was stored")
	}
}
