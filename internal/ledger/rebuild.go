package ledger

import (
	"context"
	"database/sql"
	"math"
	"time"

	"github.com/junctionhq/junction/internal/platform/store"
)

// rebuildChunk is how many raw records Rebuild reads at a time: the
// roll-ups are summed in memory a chunk at a time and added to the
// tables, so memory stays bounded by the distinct roll-up rows of one
// chunk, not by the ledger's size.
var rebuildChunk = 100_000

// Rebuild recomputes the roll-ups (hourly, daily and latency hourly and
// daily) from the
// raw usage records, in one transaction, and reports how many records
// it read. Afterwards a report reads from the roll-ups what it would by
// summing the raw records. It is for records that did not come through
// a Writer — a bulk import, the generated ledger of a benchmark — and
// for repairing roll-ups; no Writer may write to db while it runs.
func Rebuild(ctx context.Context, db *sql.DB) (int64, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	for _, table := range []string{"usage_hourly", "usage_daily", "usage_latency_hourly", "usage_latency_daily"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table); err != nil {
			return 0, err
		}
	}
	d := store.DialectOf(db)
	var read int64
	for after := (position{ts: math.MinInt64}); ; {
		ru := newRollup()
		n, last, err := rebuildChunkAfter(ctx, tx, after, ru)
		if err != nil {
			return read, err
		}
		if n == 0 {
			break
		}
		if err := ru.addTo(ctx, tx, d); err != nil {
			return read, err
		}
		read += int64(n)
		after = last
	}
	return read, tx.Commit()
}

// position is a raw record's place in time order: its time, then its id.
type position struct{ ts, id int64 }

// rebuildChunkAfter adds up to rebuildChunk raw records that come after
// after in time order to ru, and returns how many it read and the last
// one's position. Reading in time order keeps a chunk within a few
// hours, so its roll-up rows are few (read in id order, every chunk
// would touch every hour's rows). The rows are read to the end before
// anything is written (a PostgreSQL connection takes no statement while
// a result is open).
func rebuildChunkAfter(ctx context.Context, tx *sql.Tx, after position, ru *rollup) (int, position, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, ts, key_id, key_name, tags, surface, model, provider, route, deployment, status,
		input_tokens, output_tokens, cached_tokens, cost_usd, latency_ms, counterfactual_cost_usd
		FROM usage WHERE ts > ? OR (ts = ? AND id > ?) ORDER BY ts, id LIMIT ?`, after.ts, after.ts, after.id, rebuildChunk)
	if err != nil {
		return 0, after, err
	}
	defer rows.Close()
	type raw struct {
		r    Record
		tags string
	}
	var got []raw
	last := after
	for rows.Next() {
		var x raw
		if err := rows.Scan(&last.id, &last.ts, &x.r.KeyID, &x.r.KeyName, &x.tags, &x.r.Surface, &x.r.Model, &x.r.Provider, &x.r.Route,
			&x.r.Deployment, &x.r.Status, &x.r.InputTokens, &x.r.OutputTokens, &x.r.CachedTokens, &x.r.CostUSD, &x.r.LatencyMS,
			&x.r.CounterfactualUSD); err != nil {
			return 0, after, err
		}
		x.r.Time = time.UnixMilli(last.ts)
		got = append(got, x)
	}
	if err := rows.Err(); err != nil {
		return 0, after, err
	}
	for i := range got {
		ru.add(&got[i].r, got[i].tags)
	}
	return len(got), last, nil
}
