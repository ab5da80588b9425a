package advisor

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/store"
)

// seedUsage inserts usage rows the way the ledger writer stores them.
func seedUsage(t *testing.T, db *sql.DB, rows []usageRow) {
	t.Helper()
	for i, r := range rows {
		var cost any
		if r.cost >= 0 {
			cost = r.cost
		}
		_, err := db.Exec(`INSERT INTO usage(ts, request_id, key_id, key_name, tags, surface, model, provider, upstream_model,
			stream, input_tokens, output_tokens, cached_tokens, status, error_type, latency_ms, cost_usd, route)
			VALUES (?, ?, 'key_1', 'k', ?, 'openai', ?, 'openai', ?, 0, ?, ?, 0, ?, '', 10, ?, ?)`,
			r.ts.UnixMilli(), fmt.Sprintf("req-%d", i), r.tags, r.model, r.model, r.in, r.out, r.status, cost, r.route)
		if err != nil {
			t.Fatal(err)
		}
	}
}

type usageRow struct {
	ts           time.Time
	model, route string
	tags         string
	in, out      int
	status       int
	cost         float64 // negative: unpriced (NULL)
}

// A worked ledger: two days, 2026-03-01 and 02 (UTC), of "chat" traffic
// for team search, plus rows the selection must leave out.
//
//	day 1 00:30  2 requests
//	day 1 09:10  6 requests (the busiest clock hour)
//	day 2 09:20  3 requests, one of them a 500 with no tokens and no cost
//	day 2 15:00  1 request
//
// 12 requests in 2 days = 6 a day. The 11 successful ones have 100 input
// and 20 output tokens and cost 0.25 each: 2.75 spent. Peak-to-average:
// 6 in the busiest hour over 12 / 48 = 0.25 a mean hour = 24.
func seedWorkedLedger(t *testing.T, db *sql.DB) {
	day1 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	day2 := day1.Add(24 * time.Hour)
	ok := func(ts time.Time) usageRow {
		return usageRow{ts: ts, model: "chat", route: "assist", tags: `{"team":"search"}`, in: 100, out: 20, status: 200, cost: 0.25}
	}
	var rows []usageRow
	for i := 0; i < 2; i++ {
		rows = append(rows, ok(day1.Add(30*time.Minute+time.Duration(i)*time.Second)))
	}
	for i := 0; i < 6; i++ {
		rows = append(rows, ok(day1.Add(9*time.Hour+10*time.Minute+time.Duration(i)*time.Minute)))
	}
	rows = append(rows, ok(day2.Add(9*time.Hour+20*time.Minute)), ok(day2.Add(9*time.Hour+21*time.Minute)))
	failed := ok(day2.Add(9*time.Hour + 22*time.Minute))
	failed.in, failed.out, failed.status, failed.cost = 0, 0, 500, -1
	rows = append(rows, failed, ok(day2.Add(15*time.Hour)))
	// Left out: another model, another team, another route, outside the window.
	other := ok(day1.Add(9 * time.Hour))
	other.model = "gpt-4o"
	ads := ok(day1.Add(9 * time.Hour))
	ads.tags = `{"team":"ads"}`
	route := ok(day1.Add(9 * time.Hour))
	route.route = "other"
	late := ok(day2.Add(24 * time.Hour))
	rows = append(rows, other, ads, route, late)
	seedUsage(t, db, rows)
}

func openStore(t *testing.T) *sql.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestLedgerProfile(t *testing.T) {
	db := openStore(t)
	seedWorkedLedger(t, db)
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	q := ledger.ProfileQuery{Model: "chat", Route: "assist", Tags: map[string]string{"team": "search"}, From: from, To: from.Add(48 * time.Hour)}
	p, err := ledger.TrafficProfile(context.Background(), db, q)
	if err != nil {
		t.Fatal(err)
	}
	if p.Requests != 12 || p.Errors != 1 || p.InputTokens != 1100 || p.OutputTokens != 220 || p.CostUSD != 2.75 || p.UnpricedRequests != 0 {
		t.Fatalf("totals: %+v", p)
	}
	if p.Days != 2 || p.RequestsPerDay != 6 || p.AvgInputTokens != 100 || p.AvgOutputTokens != 20 {
		t.Errorf("rates: days %v, per day %v, tokens %v/%v", p.Days, p.RequestsPerDay, p.AvgInputTokens, p.AvgOutputTokens)
	}
	var want [24]int64
	want[0], want[9], want[15] = 2, 9, 1
	if p.ByHour != want || p.PeakHourRequests != 6 || p.PeakToAverage != 24 {
		t.Errorf("shape: by hour %v, peak hour %d, peak/avg %v", p.ByHour, p.PeakHourRequests, p.PeakToAverage)
	}

	// A window that starts before the first record is trimmed to the
	// start of that record's day: from 10 days back, the span is still 2
	// days.
	q.From = from.Add(-10 * 24 * time.Hour)
	if p, err := ledger.TrafficProfile(context.Background(), db, q); err != nil || p.Days != 2 || !p.Start.Equal(from) {
		t.Errorf("trimmed window: %+v, %v", p, err)
	}
	// Without filters every row in the window counts (12 + 3 left-out ones).
	if p, _ := ledger.TrafficProfile(context.Background(), db, ledger.ProfileQuery{From: from, To: from.Add(48 * time.Hour)}); p.Requests != 15 {
		t.Errorf("unfiltered: %d requests", p.Requests)
	}
	if p, _ := ledger.TrafficProfile(context.Background(), db, ledger.ProfileQuery{Model: "nope", From: from, To: from.Add(time.Hour)}); p.Requests != 0 {
		t.Errorf("no match: %+v", p)
	}
}

// From the worked ledger to a recommendation. The observed spend, 2.75
// over 2 days, is 2.75 × 30 / 2 = 41.25 a month; per request 2.75 / 12,
// so per 1k requests 229.1667. An ml.g6.xlarge fleet (0.80/h) at 1 req/s
// per instance needs 1 instance every hour (9 o'clock, the busiest, runs
// 6 × 9/12 / 3600 = 0.00125 req/s): 24 × 0.80 × 30 = 576.00. Break-even:
// 41.25 / 6 = 6.875 a month per request-day, so 576 / 6.875 = 83.78 →
// 84 requests/day. With a peak hour 24× the mean the traffic is spiky, and
// the decision path keeps the per-token API.
func TestAdviseFromLedger(t *testing.T) {
	db := openStore(t)
	seedWorkedLedger(t, db)
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	p, err := ledger.TrafficProfile(context.Background(), db, ledger.ProfileQuery{Model: "chat", Tags: map[string]string{"team": "search"}, Route: "assist",
		From: from, To: from.Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	s := &Scenario{Options: []Option{{Name: "g6", Kind: Instances, InstanceType: "ml.g6.xlarge", CapacityRPSPerInstance: IntDec(1)}}}
	if err := FromProfile(s, p); err != nil {
		t.Fatal(err)
	}
	if s.Traffic.RequestsPerDay.String() != "6" || s.Traffic.AvgInputTokens.String() != "100" || s.Traffic.PeakToAverage.String() != "24" {
		t.Errorf("traffic: %+v", s.Traffic)
	}
	r, err := Evaluate(s, ledger.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	wantCost(t, r, ObservedName, "41.25", "229.1667")
	wantCost(t, r, "g6", "576.00", "3200.0000")
	wantBreakEven(t, r, ObservedName, "g6", 84, "g6")
	if !slices.Contains(r.Traffic.Facts, "spiky_traffic") || r.Recommendation.Option != ObservedName {
		t.Errorf("facts %v, recommendation %+v", r.Traffic.Facts, r.Recommendation)
	}
	wantReason(t, r.Recommendation, "spiky traffic (peak hour 24.00× the mean)")

	// No matching traffic is a clear error, not a division by zero.
	empty, _ := ledger.TrafficProfile(context.Background(), db, ledger.ProfileQuery{Model: "nope", From: from, To: from.Add(time.Hour)})
	if err := FromProfile(&Scenario{}, empty); err == nil || err.(*ScenarioError).Field() != "from_ledger" {
		t.Errorf("empty profile: %v", err)
	}
}
