package ledger

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/store/storetest"
)

// BenchmarkInsert times the writer's transaction for a batch of 512
// records, roll-ups included, per record: what the ledger's throughput
// rests on. The records are the benchmark traffic of 40 keys (see
// traffic), a batch's worth of one second.
func BenchmarkInsert(b *testing.B) {
	const batch = 512
	for _, be := range storetest.Backends {
		b.Run(be.Name, func(b *testing.B) {
			db := openDB(b, be)
			tr := newTraffic(1)
			recs := make([]Record, batch)
			start := time.Now().Truncate(time.Hour)
			n := 0
			for b.Loop() {
				for i := range recs {
					recs[i], _ = tr.record(start.Add(time.Duration(n)*time.Second/batch), fmt.Sprint("bench-", n))
					n++
				}
				if err := insert(context.Background(), db, recs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
		})
	}
}
