package console

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/keys"
	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/store"
)

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
	now := time.Now()
	w, err := ledger.NewWriter(ctx, db, ledger.Options{BatchSize: 2000, QueueSize: 10000})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	models := []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama-70b", "mistral-large"}
	teams := []string{"search", "ads", "infra", "support"}
	for i := range rows {
		cost := float64(rng.IntN(5000)) / 1e6
		w.Add(ledger.Record{Time: now.Add(-time.Duration(rng.Int64N(int64(30 * 24 * time.Hour)))), RequestID: "r" + strconv.Itoa(i),
			KeyID: admin.ID, KeyName: "k", Tags: map[string]string{"team": teams[rng.IntN(len(teams))]}, Surface: "openai",
			Model: models[rng.IntN(len(models))], Provider: "openai", InputTokens: rng.IntN(2000), OutputTokens: rng.IntN(500),
			Status: 200, LatencyMS: rng.Float64() * 900, CostUSD: &cost})
	}
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
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
