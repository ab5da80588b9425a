package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/platform/store/storetest"
)

// TestRebuildMatchesTheWriter: roll-ups recomputed from the raw records
// equal those the writer kept as it wrote them, row for row, for every
// roll-up table, with the records read in several chunks.
func TestRebuildMatchesTheWriter(t *testing.T) { eachBackend(t, testRebuildMatchesTheWriter) }

func testRebuildMatchesTheWriter(t *testing.T, b storetest.Backend) {
	ctx := context.Background()
	db := openDB(t, b)
	rng := rand.New(rand.NewPCG(3, 4))
	recs := randomRecords(rng, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), 3, 3000)
	// 800 records at one instant: a chunk of 701 ends inside them, so
	// reading on from a chunk's last record must skip none and repeat
	// none of those that share its time.
	for i := range 800 {
		recs[i].Time = recs[0].Time
	}
	write(t, db, recs)
	before := rollupTables(t, db)
	// The roll-ups are spoiled first, so a rebuild that kept them would
	// show.
	if _, err := db.Exec(`UPDATE usage_hourly SET requests = requests + 1`); err != nil {
		t.Fatal(err)
	}
	defer func(n int) { rebuildChunk = n }(rebuildChunk)
	rebuildChunk = 701
	n, err := Rebuild(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3000 {
		t.Fatalf("Rebuild read %d records, want 3000", n)
	}
	after := rollupTables(t, db)
	for table, rows := range before {
		if len(rows) == 0 {
			t.Fatalf("%s is empty after the writer: the test checks nothing", table)
		}
		if len(after[table]) != len(rows) {
			t.Fatalf("%s: %d rows rebuilt, the writer kept %d", table, len(after[table]), len(rows))
		}
		for i := range rows {
			if !sameRow(rows[i], after[table][i]) {
				t.Fatalf("%s row %d: rebuilt %v, the writer kept %v", table, i, after[table][i], rows[i])
			}
		}
	}
}

// rollupTables reads every roll-up table, rows in a stable order, each
// row's values as text or float.
func rollupTables(t *testing.T, db *sql.DB) map[string][][]any {
	t.Helper()
	out := map[string][][]any{}
	for table, order := range map[string]string{
		"usage_hourly":         "hour, model, provider, key_id, key_name, surface, status, route, deployment, tags",
		"usage_daily":          "day, model, provider, key_id, key_name, surface, status, route, deployment, tags",
		"usage_latency_hourly": "hour, model, surface, route, tags, bucket",
		"usage_latency_daily":  "day, model, surface, route, tags, bucket",
	} {
		rows, err := db.Query(`SELECT * FROM ` + table + ` ORDER BY ` + order)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out[table] = append(out[table], vals)
		}
		rows.Close()
	}
	return out
}

// sameRow compares two rows' values; sums of floats may differ in their
// last bits, as they were added in another order.
func sameRow(a, b []any) bool {
	for i := range a {
		x, xok := number(a[i])
		y, yok := number(b[i])
		if xok && yok {
			if math.Abs(x-y) > 1e-9*math.Max(1, math.Abs(x)) {
				return false
			}
			continue
		}
		if !strings.EqualFold(fmt.Sprint(a[i]), fmt.Sprint(b[i])) {
			return false
		}
	}
	return true
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case int32:
		return float64(n), true
	}
	return 0, false
}
