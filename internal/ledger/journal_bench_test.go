package ledger

import (
	"strconv"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/testkit/cputime"
)

// BenchmarkJournalAppend times what the journal puts on a request's path
// (append: encode the record, store it in the segment) with the writer's
// upkeep between batches: every 512 records are released, as if
// written, and the segment starts over. (The writer's fsync, once per
// flush interval rather than per batch, is left out.) cpu-ns/record is
// the process's CPU time per record, the system calls and page faults
// included.
func BenchmarkJournalAppend(b *testing.B) {
	j, err := openJournal(b.TempDir(), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer j.close()
	r, _ := newTraffic(1).record(time.Now(), "bench")
	segs := make([]uint64, 0, 512)
	n := 0
	cpu0 := cputime.Process()
	for b.Loop() {
		r.RequestID = "bench-" + strconv.Itoa(n)
		n++
		seg, err := j.append(&r)
		if err != nil {
			b.Fatal(err)
		}
		if segs = append(segs, seg); len(segs) == cap(segs) {
			if err := j.release(segs); err != nil {
				b.Fatal(err)
			}
			segs = segs[:0]
		}
	}
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(n), "cpu-ns/record")
}
