package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/platform/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// openDB opens a new database of backend b for t.
func openDB(t testing.TB, b storetest.Backend) *sql.DB {
	t.Helper()
	db, err := store.Open(context.Background(), b.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// eachBackend runs test once on each backend, as a subtest.
func eachBackend(t *testing.T, test func(t *testing.T, b storetest.Backend)) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) { test(t, b) })
	}
}

func rec(id, model string, tags map[string]string, cost *float64, status int) Record {
	return Record{Time: time.Now(), RequestID: id, KeyID: "key_1", KeyName: "k", Tags: tags, Surface: "openai",
		Model: model, Provider: "openai", UpstreamModel: model, InputTokens: 10, OutputTokens: 5, Status: status,
		LatencyMS: 2, CostUSD: cost}
}

func f(v float64) *float64 { return &v }

func TestWriterDrainsOnCloseAndReports(t *testing.T) {
	eachBackend(t, testWriterDrainsOnCloseAndReports)
}

func testWriterDrainsOnCloseAndReports(t *testing.T, b storetest.Backend) {
	db := openDB(t, b)
	w, err := NewWriter(context.Background(), db, Options{BatchSize: 7, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		team := []string{"search", "ads"}[i%2]
		var cost *float64
		if i%10 != 0 {
			cost = f(0.001)
		}
		w.Add(rec(fmt.Sprint("r", i), "gpt-4o-mini", map[string]string{"team": team}, cost, 200))
	}
	w.Add(rec("r-err", "gpt-4o-mini", nil, nil, 502))
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(rec("late", "m", nil, nil, 200)); err != ErrClosed {
		t.Fatalf("Add after Close with no spill file: %v", err)
	}
	if s := w.Stats(); s.Written != 101 {
		t.Fatalf("written %d, want 101 (a flush interval of an hour means Close drained them)", s.Written)
	}
	rows, err := Report(context.Background(), db, Query{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour), GroupBy: "tag:team"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Row{}
	for _, r := range rows {
		got[r.Group] = r
	}
	if got["search"].Requests != 50 || got["ads"].Requests != 50 || got["(untagged)"].Errors != 1 {
		t.Fatalf("rows: %+v", rows)
	}
	// Every tenth request (all in team search) has no price: it is counted
	// as unpriced, not summed as $0.
	if math.Abs(got["search"].CostUSD-0.040) > 1e-9 || got["search"].UnpricedRequests != 10 {
		t.Fatalf("search: %+v", got["search"])
	}
	if math.Abs(got["ads"].CostUSD-0.050) > 1e-9 || got["ads"].UnpricedRequests != 0 {
		t.Fatalf("ads: %+v", got["ads"])
	}
	if got["(untagged)"].UnpricedRequests != 0 {
		t.Fatal("a failed request is not an unpriced one")
	}
	if _, err := Report(context.Background(), db, Query{GroupBy: "colour"}); err == nil {
		t.Fatal("bad group_by accepted")
	}
}

func TestSpillAndReplay(t *testing.T) { eachBackend(t, testSpillAndReplay) }

func testSpillAndReplay(t *testing.T, b storetest.Backend) {
	dir := t.TempDir()
	spill := filepath.Join(dir, "spill.jsonl")
	broken := openDB(t, b)
	broken.Close() // every insert now fails
	w, err := NewWriter(context.Background(), broken, Options{SpillPath: spill, BatchSize: 2, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		w.Add(rec(fmt.Sprint("s", i), "m", map[string]string{"team": "x"}, f(1), 200))
	}
	w.Close(context.Background())
	if s := w.Stats(); s.Spilled != 3 || s.Written != 0 {
		t.Fatalf("stats %+v", s)
	}
	db2 := openDB(t, b)
	w2, err := NewWriter(context.Background(), db2, Options{SpillPath: spill})
	if err != nil {
		t.Fatal(err)
	}
	w2.Close(context.Background())
	recs, _ := Records(context.Background(), db2, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), 10)
	if len(recs) != 3 || recs[0].Tags["team"] != "x" || *recs[0].CostUSD != 1 {
		t.Fatalf("replayed %+v", recs)
	}
	if _, err := os.Stat(spill); !os.IsNotExist(err) {
		t.Fatal("spill file should be removed after replay")
	}
}

func TestCatalog(t *testing.T) {
	c := Builtin()
	cases := []struct {
		model string
		in    float64
		ok    bool
	}{
		{"gpt-4o-mini", 0.00015, true},
		{"gpt-4o-mini-2024-07-18", 0.00015, true},
		{"gpt-4o-2024-08-06", 0.0025, true},
		{"us.anthropic.claude-3-5-haiku-20241022-v1:0", 0.001, true},
		{"meta.llama3-1-70b-instruct-v1:0", 0.00099, true},
		{"my-local-llama", 0, false},
	}
	for _, tc := range cases {
		p, ok := c.Lookup(tc.model)
		if ok != tc.ok || p.InputPer1K != tc.in {
			t.Errorf("%s: %v %v", tc.model, p, ok)
		}
	}
	p := Price{InputPer1K: 1, OutputPer1K: 2, CachedInputPer1K: f(0.5)}
	if got := p.Cost(1000, 400, 500); math.Abs(got-(0.6+0.2+1.0)) > 1e-12 {
		t.Fatalf("cost %v", got)
	}
	// 1000 input of which 400 cached and 100 written: 500 × $1 + 400 × $0.5
	// + 100 × $1.25 (the default write multiplier), + 500 × $2 out.
	if got := p.CostWithWrites(1000, 400, 100, 500); math.Abs(got-(0.5+0.2+0.125+1.0)) > 1e-12 {
		t.Fatalf("cost with writes %v", got)
	}
	if len(c.Instances) == 0 || c.SavingsPlanDiscount != 0.30 {
		t.Fatal("instance prices missing from the built-in catalog")
	}
}

func TestAddAfterCloseSpills(t *testing.T) { eachBackend(t, testAddAfterCloseSpills) }

func testAddAfterCloseSpills(t *testing.T, b storetest.Backend) {
	dir := t.TempDir()
	spill := filepath.Join(dir, "spill.jsonl")
	db := openDB(t, b)
	w, _ := NewWriter(context.Background(), db, Options{SpillPath: spill})
	w.Close(context.Background())
	if err := w.Add(rec("late", "m", nil, nil, 200)); err != nil {
		t.Fatal(err)
	}
	w2, err := NewWriter(context.Background(), db, Options{SpillPath: spill})
	if err != nil {
		t.Fatal(err)
	}
	w2.Close(context.Background())
	recs, _ := Records(context.Background(), db, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), 10)
	if len(recs) != 1 || recs[0].RequestID != "late" {
		t.Fatalf("a record added after close was lost: %+v", recs)
	}
}
