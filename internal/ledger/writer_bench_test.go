package ledger

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/platform/store/storetest"
	"github.com/junctionhq/junction/internal/testkit/cputime"
)

// BenchmarkInsert times the writer's transaction for a batch of 512
// records, roll-ups included, per record: what the ledger's throughput
// rests on. The records are the benchmark traffic of 40 keys (see
// traffic), a batch's worth of one second. cpu-ns/record is this
// process's CPU time (getrusage) per record, which the machine's other
// work does not inflate as it does the wall time.
func BenchmarkInsert(b *testing.B) {
	const batch = 512
	for _, be := range storetest.Backends {
		b.Run(be.Name, func(b *testing.B) {
			db := openDB(b, be)
			tr := newTraffic(1)
			recs := make([]Record, batch)
			start := time.Now().Truncate(time.Hour)
			n := 0
			// The writer's context, which Close can cancel.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cpu0 := cputime.Process()
			for b.Loop() {
				for i := range recs {
					recs[i], _ = tr.record(start.Add(time.Duration(n)*time.Second/batch), fmt.Sprint("bench-", n))
					n++
				}
				if err := insert(ctx, db, recs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(n), "cpu-ns/record")
		})
	}
}

// BenchmarkAdd times what a request pays to hand its record to the
// ledger (Writer.Add), from 8 goroutines at once, with the journal (a
// copy into its mapped segment per record, fsynced once per flush) and
// without (memory only).
// The writer behind the queue commits to SQLite as in production, on the
// same CPUs, so ns/op is not Add's cost alone; cpu-ns/record is the
// process's CPU time per record from the first Add to the end of Close:
// the whole journey, Add, hand-off and insert.
func BenchmarkAdd(b *testing.B) {
	for _, tc := range []struct {
		name      string
		noJournal bool
	}{{"journal", false}, {"memory", true}} {
		b.Run(tc.name, func(b *testing.B) {
			db := openDB(b, storetest.Backends[0])
			w, err := NewWriter(context.Background(), db, Options{JournalDir: b.TempDir(), NoJournal: tc.noJournal,
				QueueSize: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			tr := newTraffic(1)
			base, _ := tr.record(time.Now(), "bench")
			var seq atomic.Int64
			b.SetParallelism(4) // 4 × GOMAXPROCS goroutines
			cpu0 := cputime.Process()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r := base
				for pb.Next() {
					r.RequestID = "bench-" + strconv.FormatInt(seq.Add(1), 36)
					w.Add(r)
				}
			})
			b.StopTimer()
			w.Close(context.Background())
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/record")
		})
	}
}
