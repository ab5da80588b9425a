package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/platform/store/storetest"
)

// randomRecords makes n records spread over the days after start, varied
// in every dimension a report groups by, with unpriced, failed and routed
// requests among them.
func randomRecords(rng *rand.Rand, start time.Time, days, n int) []Record {
	models := []string{"gpt-4o", "gpt-4o-mini", "claude", "llama"}
	teams := []string{"search", "ads", "infra"}
	out := make([]Record, n)
	for i := range out {
		model := models[rng.IntN(len(models))]
		r := Record{
			Time:      start.Add(time.Duration(rng.Int64N(int64(days) * int64(24*time.Hour)))),
			RequestID: fmt.Sprintf("rand-%d", i),
			KeyID:     fmt.Sprintf("key_%d", rng.IntN(4)), KeyName: "k",
			Surface: []string{"openai", "anthropic"}[rng.IntN(2)], Model: model, Provider: "p-" + model[:3], UpstreamModel: model,
			Route: model, Deployment: model,
			InputTokens: rng.IntN(1000), OutputTokens: rng.IntN(500), CachedTokens: rng.IntN(100),
			Status: []int{200, 200, 200, 200, 429, 500}[rng.IntN(6)], LatencyMS: rng.Float64() * 1000,
		}
		switch rng.IntN(4) {
		case 0:
		case 1:
			r.Tags = map[string]string{"team": teams[rng.IntN(len(teams))]}
		default:
			r.Tags = map[string]string{"team": teams[rng.IntN(len(teams))], "app": fmt.Sprint("app", rng.IntN(2))}
		}
		if rng.IntN(5) > 0 {
			r.CostUSD = f(float64(rng.IntN(10000)) / 1e6)
		}
		if rng.IntN(3) == 0 {
			r.Route = "auto"
			r.CounterfactualUSD = f(float64(rng.IntN(20000)) / 1e6)
		}
		out[i] = r
	}
	return out
}

func write(t *testing.T, db *sql.DB, recs []Record) {
	t.Helper()
	w, err := NewWriter(context.Background(), db, Options{BatchSize: 97})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		w.Add(r)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// sameRows reports how got (from Report) differs from want (from the raw
// records): groups and counts exactly, sums of floats to a part in 1e9.
func sameRows(got, want []Row) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d groups, want %d", len(got), len(want))
	}
	byGroup := map[string]Row{}
	for _, r := range want {
		byGroup[r.Group] = r
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
	for _, g := range got {
		w, ok := byGroup[g.Group]
		switch {
		case !ok:
			return fmt.Errorf("group %q is not in the raw answer", g.Group)
		case g.Requests != w.Requests || g.Errors != w.Errors || g.InputTokens != w.InputTokens || g.OutputTokens != w.OutputTokens ||
			g.CachedTokens != w.CachedTokens || g.UnpricedRequests != w.UnpricedRequests:
			return fmt.Errorf("group %q counts\n got %+v\nwant %+v", g.Group, g, w)
		case !near(g.CostUSD, w.CostUSD) || !near(g.AvgLatencyMS, w.AvgLatencyMS) || !near(g.SavedUSD, w.SavedUSD) ||
			!near(g.RoutedCounterfactualUSD, w.RoutedCounterfactualUSD):
			return fmt.Errorf("group %q sums\n got %+v\nwant %+v", g.Group, g, w)
		}
	}
	return nil
}

// On random data, Report (roll-up plus ragged edges) answers what the raw
// records answer, for every grouping and for windows aligned to hours or
// not, shorter than an hour, or past the data. A spill replayed twice is
// not counted twice.
func TestRollupMatchesRaw(t *testing.T) { eachBackend(t, testRollupMatchesRaw) }

func testRollupMatchesRaw(t *testing.T, b storetest.Backend) {
	ctx := context.Background()
	db := openDB(t, b)
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	recs := randomRecords(rng, start, 3, 3000)
	write(t, db, recs)
	write(t, db, recs[:500]) // the same request ids again: skipped, raw and roll-up alike

	var raw, hourly, daily int64
	db.QueryRow(`SELECT COUNT(*) FROM usage`).Scan(&raw)
	db.QueryRow(`SELECT SUM(requests) FROM usage_hourly`).Scan(&hourly)
	db.QueryRow(`SELECT SUM(requests) FROM usage_daily`).Scan(&daily)
	if raw != 3000 || hourly != 3000 || daily != 3000 {
		t.Fatalf("%d raw records, %d rolled up by the hour, %d by the day; want 3000 each", raw, hourly, daily)
	}

	windows := []Query{
		{From: start, To: start.Add(72 * time.Hour)},                                                // whole hours only
		{From: start.Add(-time.Hour), To: start.Add(100 * time.Hour)},                               // past both ends
		{From: start.Add(90 * time.Minute), To: start.Add(30 * time.Hour)},                          // ragged start
		{From: start.Add(2 * time.Hour), To: start.Add(50*time.Hour + 1)},                           // ragged end
		{From: start.Add(10 * time.Minute), To: start.Add(50 * time.Minute)},                        // inside one hour
		{From: start.Add(50 * time.Minute), To: start.Add(70 * time.Minute)},                        // across one boundary
		{From: start.Add(5 * time.Hour), To: start.Add(5 * time.Hour)},                              // empty
		{From: start.Add(24 * time.Hour), To: start.Add(12 * time.Hour)},                            // backwards
		{From: start.Add(-48 * time.Hour), To: start.Add(-24 * time.Hour)},                          // before the data
		{From: start.Add(12*time.Hour + 1), To: start.Add(13*time.Hour - 1)},                        // an hour less two ms
		{From: start.Add(12 * time.Hour), To: start.Add(13*time.Hour + 1)},                          // an hour and a ms
		{From: start.Add(7*time.Hour + 123), To: start.Add(71*time.Hour + 456)},                     // ragged both
		{From: start.Add(5*time.Hour + 7*time.Minute), To: start.Add(65*time.Hour + 3*time.Minute)}, // day, hours, raw
		{From: start.Add(24 * time.Hour), To: start.Add(48*time.Hour + 2*time.Hour)},                // a day and hours
		{From: start.Add(22 * time.Hour), To: start.Add(48 * time.Hour)},                            // hours and a day
	}
	for range 8 {
		a := start.Add(time.Duration(rng.Int64N(int64(80 * time.Hour))))
		windows = append(windows, Query{From: a, To: a.Add(time.Duration(rng.Int64N(int64(30 * time.Hour))))})
	}
	groups := []string{"model", "provider", "key", "surface", "status", "route", "deployment", "tag:team", "tag:app", "tag:none"}
	for _, w := range windows {
		for _, g := range groups {
			w.GroupBy = g
			got, err := Report(ctx, db, w)
			if err != nil {
				t.Fatal(err)
			}
			want, err := reportRaw(ctx, db, w)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameRows(got, want); err != nil {
				t.Fatalf("%s to %s by %s: %v", w.From.Sub(start), w.To.Sub(start), g, err)
			}
		}
		// Filtered to one team, the report counts exactly that team's
		// records in the window.
		w.GroupBy, w.Tags = "model", map[string]string{"team": "search"}
		got, err := Report(ctx, db, w)
		if err != nil {
			t.Fatal(err)
		}
		var n, counted int64
		for _, r := range recs {
			if r.Tags["team"] == "search" && !r.Time.Before(w.From) && r.Time.Before(w.To) {
				n++
			}
		}
		for _, r := range got {
			counted += r.Requests
		}
		if counted != n {
			t.Fatalf("%s to %s for team search: %d requests, want %d", w.From.Sub(start), w.To.Sub(start), counted, n)
		}
		want, err := reportRaw(ctx, db, w)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameRows(got, want); err != nil {
			t.Fatalf("%s to %s for team search: %v", w.From.Sub(start), w.To.Sub(start), err)
		}
	}
}

// A request id recorded before, or twice in one batch, is written and
// rolled up once: the first record with it wins.
func TestInsertSkipsDuplicates(t *testing.T) { eachBackend(t, testInsertSkipsDuplicates) }

func testInsertSkipsDuplicates(t *testing.T, b storetest.Backend) {
	ctx := context.Background()
	db := openDB(t, b)
	if err := insert(ctx, db, []Record{rec("old", "m", nil, f(1), 200)}); err != nil {
		t.Fatal(err)
	}
	batch := []Record{rec("a", "m", nil, f(2), 200), rec("old", "m", nil, f(100), 200), rec("a", "m", nil, f(200), 200), rec("b", "m", nil, f(4), 200)}
	if err := insert(ctx, db, batch); err != nil {
		t.Fatal(err)
	}
	var n int
	var cost float64
	db.QueryRow(`SELECT COUNT(*), SUM(cost_usd) FROM usage`).Scan(&n, &cost)
	if n != 3 || cost != 7 {
		t.Fatalf("%d records costing %v, want 3 costing 7", n, cost)
	}
	for _, table := range []string{"usage_hourly", "usage_daily"} {
		db.QueryRow(`SELECT SUM(requests), SUM(cost_usd) FROM `+table).Scan(&n, &cost)
		if n != 3 || cost != 7 {
			t.Fatalf("%s: %d requests costing %v, want 3 costing 7", table, n, cost)
		}
	}
}

// Replicas writing at once to one PostgreSQL add to the same roll-up rows
// without deadlocking and without losing a count.
func TestConcurrentWritersOnPostgres(t *testing.T) {
	dsn := storetest.Postgres(t)
	start := time.Now().Truncate(time.Hour)
	const replicas, each = 3, 1500
	var writers []*Writer
	for range replicas {
		db, err := store.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		w, err := NewWriter(context.Background(), db, Options{BatchSize: 100, FlushInterval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		writers = append(writers, w)
	}
	var wg sync.WaitGroup
	for i, w := range writers {
		wg.Go(func() {
			tr := newTraffic(uint64(i))
			for j := range each {
				r, _ := tr.record(start.Add(time.Duration(j)*time.Second), fmt.Sprintf("r%d-%d", i, j))
				w.Add(r)
			}
			w.Close(context.Background())
		})
	}
	wg.Wait()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var raw, hourly, daily int64
	db.QueryRow(`SELECT COUNT(*) FROM usage`).Scan(&raw)
	db.QueryRow(`SELECT SUM(requests) FROM usage_hourly`).Scan(&hourly)
	db.QueryRow(`SELECT SUM(requests) FROM usage_daily`).Scan(&daily)
	if raw != replicas*each || hourly != raw || daily != raw {
		t.Fatalf("%d records, %d and %d rolled up; want %d", raw, hourly, daily, replicas*each)
	}
	for _, w := range writers {
		if s := w.Stats(); s.Written != each || s.Spilled != 0 {
			t.Fatalf("writer stats %+v", s)
		}
	}
}
