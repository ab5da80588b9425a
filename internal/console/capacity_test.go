package console

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/autoscale"
	"github.com/junctionhq/junction/internal/platform/store"
)

// TestCapacityHistory: the Endpoints page's bars are each variant's
// metered instance time over ten minutes (an instance that ran half of
// one adds half), its line the desired count the scaling activities say
// held at each period's end (what the first activity started from,
// before it).
func TestCapacityHistory(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "junction.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	day := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	for _, seg := range []struct {
		variant, instance string
		from, to          time.Time
	}{
		{"a", "i1", at(11, 0), at(11, 30)},
		{"a", "i2", at(11, 5), at(11, 10)},
		{"b", "i3", at(11, 20), at(11, 25)},
		{"shadow", "i4", at(11, 0), at(12, 0)}, // not drawn
		{"a", "old", at(3, 0), at(4, 0)},       // before the window
	} {
		if _, err := db.Exec(`INSERT INTO hosting_usage(endpoint, variant, instance_id, instance_type, start_ts, end_ts) VALUES ('e', ?, ?, 'ml.m5.large', ?, ?)`,
			seg.variant, seg.instance, seg.from.UnixMilli(), seg.to.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	acts := &autoscale.Store{DB: db}
	for _, a := range []autoscale.Activity{
		{ID: "x1", Endpoint: "e", Variant: "a", From: 1, To: 2, StartTime: at(11, 2), StatusCode: autoscale.Successful},
		{ID: "x2", Endpoint: "e", Variant: "a", From: 2, To: 1, StartTime: at(11, 31), StatusCode: autoscale.Successful},
		{ID: "x3", Endpoint: "other", Variant: "a", From: 1, To: 9, StartTime: at(11, 1), StatusCode: autoscale.Successful},
	} {
		if err := acts.AddActivity(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}
	h := &Handler{DB: db, Activities: func(ctx context.Context, endpoint string) ([]autoscale.Activity, error) {
		return acts.Activities(ctx, endpoint, "", 1000)
	}}
	ep := &hosting.Endpoint{Name: "e", CreatedAt: at(10, 45), Variants: []hosting.VariantSummary{{Name: "a", DesiredInstanceCount: 1},
		{Name: "b", DesiredInstanceCount: 1}, {Name: "shadow", Shadow: true, DesiredInstanceCount: 1}}}
	c, err := h.capacity(ctx, ep, at(12, 5))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Rows) != 36 || c.Rows[0].Label != "06:10" || c.Rows[35].Label != "12:00" {
		t.Fatalf("%d periods from %s to %s, want 36 from 06:10 to 12:00", len(c.Rows), c.Rows[0].Label, c.Rows[len(c.Rows)-1].Label)
	}
	want := map[string]struct {
		a, b, desired float64
	}{
		"10:30": {0, 0, 0}, // before the endpoint was created
		"10:40": {0, 0, 2}, // created at 10:45: before the first activity, what it started from, for a; b's own
		"10:50": {0, 0, 2},
		"11:00": {1.5, 0, 3},
		"11:10": {1, 0, 3},
		"11:20": {1, 0.5, 3},
		"11:30": {0, 0, 2},
		"12:00": {0, 0, 2},
	}
	seen := 0
	for _, r := range c.Rows {
		w, ok := want[r.Label]
		if !ok {
			if r.Actual[0] != 0 || r.Actual[1] != 0 {
				t.Errorf("%s: %v instances run, want none", r.Label, r.Actual)
			}
			continue
		}
		seen++
		if r.Actual[0] != w.a || r.Actual[1] != w.b || r.Desired != w.desired {
			t.Errorf("%s: run a %v, b %v, asked for %v; want %v, %v, %v", r.Label, r.Actual[0], r.Actual[1], r.Desired, w.a, w.b, w.desired)
		}
	}
	if seen != len(want) {
		t.Fatalf("%d of the %d periods checked were drawn", seen, len(want))
	}
	if c.Chart == nil || c.Chart.Overlay == nil || len(c.Chart.Bars) != 36 || c.Chart.Bars[29].Total != 1.5 {
		t.Fatalf("chart: %+v", c.Chart)
	}
}
