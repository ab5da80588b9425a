package ledger

import (
	"context"
	"database/sql"
	"time"

	"github.com/junctionhq/junction/internal/platform/store"
)

// PruneBatch is how many raw records Prune deletes per transaction: few
// enough that on SQLite, which has one writer, the ledger writer never
// waits long for its turn.
const PruneBatch = 2000

// Prune deletes the raw usage records older than before, PruneBatch per
// transaction, resting between batches as long as a batch took, so that
// it never holds the database for long. It stops when none are left or
// ctx ends, and returns how many it deleted. The roll-ups are not
// touched: reports over pruned time still answer, by whole hours, though
// Records and TrafficProfile, which read raw records, no longer see it.
//
// Several replicas may prune at once: on PostgreSQL each skips the rows
// another has locked.
func Prune(ctx context.Context, db *sql.DB, before time.Time) (int64, error) {
	query := `DELETE FROM usage WHERE id IN (SELECT id FROM usage WHERE ts < ? LIMIT ?)`
	if store.DialectOf(db) == store.Postgres {
		query = `DELETE FROM usage WHERE id IN (SELECT id FROM usage WHERE ts < ? LIMIT ? FOR UPDATE SKIP LOCKED)`
	}
	cutoff := before.UnixMilli()
	var total int64
	for {
		start := time.Now()
		res, err := db.ExecContext(ctx, query, cutoff, PruneBatch)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		total += n
		if err != nil || n < PruneBatch {
			return total, err
		}
		rest := time.NewTimer(max(time.Since(start), time.Millisecond))
		select {
		case <-ctx.Done():
			rest.Stop()
			return total, ctx.Err()
		case <-rest.C:
		}
	}
}

// pruneCutoff is where a retention period of keep ends at now: the start
// of an hour, so that an hour's raw records are all kept or all pruned
// and a report's ragged edges are never half there.
func pruneCutoff(now time.Time, keep time.Duration) time.Time {
	return time.UnixMilli(floorTo(now.Add(-keep).UnixMilli(), hourMS))
}

// pruneLoop prunes at start and then every PruneInterval until ctx ends;
// with no retention period it only waits for the end.
func (w *Writer) pruneLoop(ctx context.Context) {
	defer close(w.pruneDone)
	if w.opt.RetainRaw <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(w.opt.PruneInterval)
	defer t.Stop()
	for {
		n, err := Prune(ctx, w.db, pruneCutoff(time.Now(), w.opt.RetainRaw))
		w.pruned.Add(n)
		if n > 0 {
			w.log.Info("ledger: pruned raw records past the retention period", "records", n, "retain", w.opt.RetainRaw)
		}
		if err != nil && ctx.Err() == nil {
			w.log.Warn("ledger: pruning raw records failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
