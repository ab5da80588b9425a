package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/platform/store/storetest"
)

// BenchmarkReport10M times usage reports over ten million ledger records
// (JUNCTION_BENCH_ROWS overrides the number) on each backend, through the
// roll-ups and, for comparison, from the raw records alone. The
// records span 90 days of traffic from 40 keys, each with its team and
// app tags and two models; 3% of requests fail. Building the data takes
// a few minutes (bulk loads: COPY on PostgreSQL); it is made once per
// backend, and the raw and roll-up answers are checked to agree before
// anything is timed. Run it alone:
//
//	go test ./internal/ledger -run '^$' -bench Report10M -benchtime 5x
func BenchmarkReport10M(b *testing.B) {
	rows := 10_000_000
	if s := os.Getenv("JUNCTION_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("JUNCTION_BENCH_ROWS=%q: want a positive number", s)
		}
		rows = n
	}
	ctx := context.Background()
	for _, be := range storetest.Backends {
		b.Run(be.Name, func(b *testing.B) {
			db, err := store.Open(ctx, be.DSN(b))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			began := time.Now()
			span := loadBenchLedger(b, db, rows)
			b.Logf("%s: %d records and their roll-up loaded in %s", be.Name, rows, time.Since(began).Round(time.Second))

			// Ragged windows: the whole span but for a few minutes at each
			// end, and its last week from mid-hour.
			all := Query{From: span.From.Add(17 * time.Minute), To: span.To.Add(-23 * time.Minute)}
			week := Query{From: span.To.Add(-7*24*time.Hour + 31*time.Minute), To: span.To}
			check := all
			check.GroupBy = "tag:team"
			got, err := Report(ctx, db, check)
			if err != nil {
				b.Fatal(err)
			}
			want, err := reportRaw(ctx, db, check)
			if err != nil {
				b.Fatal(err)
			}
			if err := sameRows(got, want); err != nil {
				b.Fatalf("the roll-up disagrees with the raw records: %v", err)
			}
			for _, c := range []struct {
				name   string
				q      Query
				report func(context.Context, *sql.DB, Query) ([]Row, error)
			}{
				{"90d/model/rollup", all, Report},
				{"90d/tag:team/rollup", all, Report},
				{"7d/model/rollup", week, Report},
				{"90d/model/raw", all, reportRaw},
				{"90d/tag:team/raw", all, reportRaw},
				{"7d/model/raw", week, reportRaw},
			} {
				c.q.GroupBy = "model"
				if c.name[4:7] == "tag" {
					c.q.GroupBy = "tag:team"
				}
				b.Run(c.name, func(b *testing.B) {
					for b.Loop() {
						if _, err := c.report(ctx, db, c.q); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}

// traffic makes records like a busy gateway's: 40 keys, each with its
// team, app and environment tags, its surface and two models (the first
// taking 70% of its requests); one model has no price; 3% of requests
// fail; a fifth of the keys are routed by a prompt router.
type traffic struct {
	rng  *rand.Rand
	keys []trafficKey
}

type trafficModel struct {
	name, provider string
	in, out        float64 // USD per token; 0: unpriced
}

type trafficKey struct {
	id, name, surface string
	tags              map[string]string
	tagsJSON          string
	models            [2]trafficModel
	routed            bool
}

func newTraffic(seed uint64) *traffic {
	models := []trafficModel{
		{"gpt-4o", "openai", 2.5e-6, 10e-6}, {"gpt-4o-mini", "openai", 0.15e-6, 0.6e-6},
		{"claude-sonnet", "anthropic", 3e-6, 15e-6}, {"claude-haiku", "anthropic", 0.8e-6, 4e-6},
		{"llama-70b", "bedrock", 0.99e-6, 0.99e-6}, {"mistral-large", "bedrock", 2e-6, 6e-6},
		{"local-llama", "local", 0, 0}, {"gemma", "local", 0.1e-6, 0.1e-6},
	}
	teams := []string{"search", "ads", "infra", "growth", "support", "research", "payments", "mobile"}
	tr := &traffic{rng: rand.New(rand.NewPCG(seed, seed)), keys: make([]trafficKey, 40)}
	for i := range tr.keys {
		tags := map[string]string{"app": fmt.Sprint("app-", i%13), "env": []string{"prod", "staging"}[i%2], "team": teams[i%len(teams)]}
		tr.keys[i] = trafficKey{id: fmt.Sprintf("key_%04d", i), name: fmt.Sprintf("svc-%d", i), surface: []string{"openai", "anthropic", "bedrock"}[i%3],
			tags: tags, tagsJSON: encodeTags(tags), models: [2]trafficModel{models[i%len(models)], models[(i*3+1)%len(models)]}, routed: i%5 == 0}
	}
	return tr
}

// record makes one request's record, and returns its tags encoded as the
// ledger stores them.
func (tr *traffic) record(ts time.Time, requestID string) (Record, string) {
	rng := tr.rng
	k := &tr.keys[rng.IntN(len(tr.keys))]
	m := k.models[0]
	if rng.IntN(10) >= 7 {
		m = k.models[1]
	}
	r := Record{Time: ts, RequestID: requestID, KeyID: k.id, KeyName: k.name, Tags: k.tags, Surface: k.surface,
		Model: m.name, Provider: m.provider, UpstreamModel: m.name, Route: m.name, Deployment: m.name, Attempts: 1,
		Status: 200, LatencyMS: 200 + rng.Float64()*1800}
	switch p := rng.IntN(100); {
	case p < 2:
		r.Status, r.ErrorType = 429, "rate_limit_error"
	case p < 3:
		r.Status, r.ErrorType = 500, "api_error"
	default:
		r.InputTokens, r.OutputTokens = 100+rng.IntN(2000), 20+rng.IntN(600)
		if m.in > 0 {
			r.CostUSD = f(float64(r.InputTokens)*m.in + float64(r.OutputTokens)*m.out)
		}
	}
	if k.routed {
		r.Route, r.RouteReason = "auto", "knn"
		if r.CostUSD != nil {
			r.CounterfactualUSD = f(float64(r.InputTokens)*2.5e-6 + float64(r.OutputTokens)*10e-6)
		}
	}
	return r, k.tagsJSON
}

// loadBenchLedger bulk-loads n records of traffic, and their roll-ups
// summed as the writer sums them, and returns the window they span.
func loadBenchLedger(b *testing.B, db *sql.DB, n int) Query {
	ctx := context.Background()
	tr := newTraffic(10)
	end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	start := end.Add(-90 * 24 * time.Hour)
	step := end.Sub(start).Milliseconds() / int64(n)
	ru := newRollup()
	columns := strings.Split(strings.Join(strings.Fields(insertColumns), ""), ",")
	const chunk = 500_000
	for first := 0; first < n; first += chunk {
		last := min(first+chunk, n)
		_, err := store.CopyFrom(ctx, db, "usage", columns, func(yield func([]any) bool) {
			row := make([]any, len(columns))
			for i := first; i < last; i++ {
				ts := time.UnixMilli(start.UnixMilli() + int64(i)*step + tr.rng.Int64N(step+1))
				r, tags := tr.record(ts, fmt.Sprintf("req-%09d", i))
				ru.add(&r, tags)
				var cost, cf any
				if r.CostUSD != nil {
					cost = *r.CostUSD
				}
				if r.CounterfactualUSD != nil {
					cf = *r.CounterfactualUSD
				}
				row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8] = r.Time.UnixMilli(), r.RequestID, r.KeyID, r.KeyName,
					tags, r.Surface, r.Model, r.Provider, r.UpstreamModel
				row[9], row[10], row[11], row[12], row[13], row[14], row[15], row[16], row[17] = 0, r.InputTokens, r.OutputTokens, 0,
					r.Status, r.ErrorType, r.LatencyMS, nil, cost
				row[18], row[19], row[20], row[21], row[22], row[23] = r.Route, r.Deployment, r.Attempts, r.RouteReason, cf, ""
				if !yield(row) {
					return
				}
			}
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for i, g := range grains {
		if _, err := store.CopyFrom(ctx, db, g.table, rollupColumns(g), slices.Values(ru.rows(i))); err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: %d rows", g.table, len(ru.sums[i]))
	}
	for i, g := range latencyGrains {
		if _, err := store.CopyFrom(ctx, db, g.table, latencyColumns(g), slices.Values(ru.latency[i].rows())); err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: %d rows", g.table, len(ru.latency[i]))
	}
	analyze := `ANALYZE`
	if store.DialectOf(db) == store.Postgres {
		analyze = `VACUUM ANALYZE`
	}
	if _, err := db.ExecContext(ctx, analyze); err != nil {
		b.Fatal(err)
	}
	return Query{From: start, To: end}
}
