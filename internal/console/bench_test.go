package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/store"
)

// generateUsage inserts the records numbered ?1 to ?2 of ?6: times
// spread evenly over the ?4 milliseconds before ?3, in time order as a
// ledger is written (record i at the i/?6th of the span, with up to a
// second of jitter), five models, four teams, costs up to half a cent,
// latencies up to 900 ms, one request in fifty failed.
const generateUsage = `WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
	INSERT INTO usage(ts, request_id, key_id, key_name, tags, surface, model, provider, upstream_model, stream,
		input_tokens, output_tokens, cached_tokens, status, error_type, latency_ms, cost_usd)
	SELECT ?3 - ?4 + i * ?4 / ?6 + abs(random()) % 1000, 'r' || i, ?5, 'k',
		'{"team":"' || (CASE abs(random()) % 4 WHEN 0 THEN 'search' WHEN 1 THEN 'ads' WHEN 2 THEN 'infra' ELSE 'support' END) || '"}',
		'openai', m, 'openai', m, 0, abs(random()) % 2000, abs(random()) % 500, 0,
		CASE WHEN abs(random()) % 50 = 0 THEN 500 ELSE 200 END, '', (abs(random()) % 900000) / 1000.0, (abs(random()) % 5000) / 1e6
	FROM (SELECT i, CASE abs(random()) % 5 WHEN 0 THEN 'gpt-4o' WHEN 1 THEN 'gpt-4o-mini' WHEN 2 THEN 'claude-sonnet'
		WHEN 3 THEN 'llama-70b' ELSE 'mistral-large' END AS m FROM n)`

// BenchmarkPages is the server time of the console's pages over a ledger
// of JUNCTION_BENCH_ROWS records (default 200,000) spread over the last
// 30 days, in SQLite: the time to build each page, rendering included,
// without the network. The reports read the roll-ups, so the time grows
// with periods and groups drawn, not with records.
//
//	JUNCTION_BENCH_ROWS=1000000 go test -run XXX -bench Pages -benchtime 20x ./internal/console
func BenchmarkPages(b *testing.B) {
	rows := 200_000
	if s := os.Getenv("JUNCTION_BENCH_ROWS"); s != "" {
		rows, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "junction.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	ks, err := keys.Open(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	admin, _, err := ks.Create(ctx, "admin", nil, true)
	if err != nil {
		b.Fatal(err)
	}
	// The records are generated in SQL, in transactions of a million,
	// and the roll-ups rebuilt from them (ledger.Rebuild, which is tested
	// to give what the writer keeps): ten million records through the
	// writer would take longer than the measurement.
	start := time.Now()
	const chunk = 1_000_000
	for from := 0; from < rows; from += chunk {
		if _, err := db.ExecContext(ctx, generateUsage, from, min(from+chunk, rows)-1, time.Now().UnixMilli(), int64(30*24*time.Hour/time.Millisecond), admin.ID, rows); err != nil {
			b.Fatal(err)
		}
	}
	if n, err := ledger.Rebuild(ctx, db); err != nil || n != int64(rows) {
		b.Fatalf("rebuild: %d records, %v", n, err)
	}
	b.Logf("%d ledger records generated and rolled up in %s", rows, time.Since(start).Round(time.Second))
	h := &Handler{Keys: ks, DB: db}
	h.Register(http.NewServeMux(), func(next http.Handler) http.Handler { return next }) // parses the templates
	for _, page := range []struct {
		name, path string
		serve      http.HandlerFunc
	}{
		{"overview", "/ui/", h.overview},
		{"spend-7d-by-day-model", "/ui/spend?from=7d&group_by=model", h.spend},
		{"spend-30d-by-day-team", "/ui/spend?from=30d&group_by=tag:team", h.spend},
		{"spend-48h-by-hour-model", "/ui/spend?from=48h&group_by=model", h.spend},
		{"routing-24h", "/ui/routing", h.routing},
	} {
		b.Run(page.name, func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest("GET", page.path, nil)
				req = req.WithContext(withViewer(req.Context(), &viewer{Key: admin}))
				page.serve(rec, req) // as signed in: the session check is not what is measured
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %.300s", page.path, rec.Code, rec.Body)
				}
			}
		})
	}
}
