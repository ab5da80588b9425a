package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/platform/store/storetest"
)

// Pruning deletes the raw records before the cutoff, in batches, and
// leaves the roll-up: a report over whole hours answers as before.
func TestPrune(t *testing.T) { eachBackend(t, testPrune) }

func testPrune(t *testing.T, b storetest.Backend) {
	ctx := context.Background()
	db := openDB(t, b)
	rng := rand.New(rand.NewPCG(5, 6))
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	recs := randomRecords(rng, start, 2, 2*PruneBatch+500) // three batches' worth on the first day, about
	write(t, db, recs)
	cutoff := start.Add(24 * time.Hour)
	var old int64
	for _, r := range recs {
		if r.Time.Before(cutoff) {
			old++
		}
	}
	q := Query{From: start, To: start.Add(48 * time.Hour), GroupBy: "tag:team"}
	before, err := Report(ctx, db, q)
	if err != nil {
		t.Fatal(err)
	}

	n, err := Prune(ctx, db, cutoff)
	if err != nil || n != old {
		t.Fatalf("pruned %d, want %d: %v", n, old, err)
	}
	var left, early int64
	db.QueryRow(`SELECT COUNT(*) FROM usage`).Scan(&left)
	db.QueryRow(`SELECT COUNT(*) FROM usage WHERE ts < ?`, cutoff.UnixMilli()).Scan(&early)
	if left != int64(len(recs))-old || early != 0 {
		t.Fatalf("%d records left (%d before the cutoff), want %d (0)", left, early, int64(len(recs))-old)
	}
	after, err := Report(ctx, db, q)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameRows(after, before); err != nil {
		t.Fatalf("a report over whole hours changed with pruning: %v", err)
	}
	if n, err := Prune(ctx, db, cutoff); n != 0 || err != nil {
		t.Fatalf("pruning again: %d, %v", n, err)
	}
}

// A writer with a retention period prunes in the background, whole hours
// at a time, and keeps what is newer.
func TestWriterPrunesPastRetention(t *testing.T) { eachBackend(t, testWriterPrunesPastRetention) }

func testWriterPrunesPastRetention(t *testing.T, b storetest.Backend) {
	db := openDB(t, b)
	now := time.Now()
	var recs []Record
	for i := range 30 {
		r := rec(fmt.Sprint("old", i), "m", nil, f(1), 200)
		r.Time = now.Add(-72*time.Hour - time.Duration(i)*time.Hour)
		recs = append(recs, r)
	}
	for i := range 5 {
		r := rec(fmt.Sprint("new", i), "m", nil, f(1), 200)
		r.Time = now.Add(-time.Duration(i) * time.Minute)
		recs = append(recs, r)
	}
	write(t, db, recs)
	w, err := NewWriter(context.Background(), db, Options{RetainRaw: 48 * time.Hour, PruneInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); w.Stats().Pruned < 30; {
		if time.Now().After(deadline) {
			t.Fatalf("pruned %d of 30 old records", w.Stats().Pruned)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := Records(context.Background(), db, time.Unix(0, 0), now.Add(time.Hour), 100)
	if len(got) != 5 {
		t.Fatalf("%d records left, want the 5 new ones", len(got))
	}
	rows, err := Report(context.Background(), db, Query{From: now.Add(-200 * time.Hour).Truncate(time.Hour), To: now.Add(time.Hour)})
	if err != nil || len(rows) != 1 || rows[0].Requests != 35 {
		t.Fatalf("the roll-up forgot pruned hours: %+v, %v", rows, err)
	}
}

func TestPruneCutoffIsAnHour(t *testing.T) {
	now := time.Date(2026, 3, 10, 14, 35, 12, 0, time.UTC)
	if got, want := pruneCutoff(now, 48*time.Hour), time.Date(2026, 3, 8, 14, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("cutoff %s, want %s", got, want)
	}
}
