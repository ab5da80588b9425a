package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"

	"github.com/junctionhq/junction/internal/platform/store"
)

// insertColumns are the usage columns insert writes, in order.
const insertColumns = `ts, request_id, key_id, key_name, tags, surface, model, provider, upstream_model,
	stream, input_tokens, output_tokens, cached_tokens, status, error_type, latency_ms, ttft_ms, cost_usd,
	route, deployment, attempts, route_reason, counterfactual_cost_usd, guardrail, estimated`

// insertRows is the most records one statement inserts on PostgreSQL
// (25 arguments each): a round trip per insertRows records rather than
// per record. SQLite, in-process, has no round trips to save: a
// one-record statement prepared once per batch costs it less than
// parsing a long one per chunk.
const insertRows = 64

// insertOneSQL inserts one record; a request id already recorded (a
// spill replayed twice) is skipped, and then no row is changed.
const insertOneSQL = `INSERT INTO usage(` + insertColumns + `)
	VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING`

// insertSQLs[n] inserts n records as insertOneSQL does and returns the
// request ids of those it inserted.
var insertSQLs = func() (q [insertRows + 1]string) {
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", 25), ",") + ")"
	for n := 1; n <= insertRows; n++ {
		q[n] = "INSERT INTO usage(" + insertColumns + ") VALUES " + strings.TrimSuffix(strings.Repeat(tuple+",", n), ",") +
			" ON CONFLICT DO NOTHING RETURNING request_id"
	}
	return q
}()

// insert writes a batch and adds the records it wrote, and only those, to
// the roll-ups, all in one transaction.
func insert(ctx context.Context, db *sql.DB, batch []Record) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	d := store.DialectOf(db)
	ru := newRollup()
	if d == store.Postgres {
		err = insertMany(ctx, tx, batch, ru)
	} else {
		err = insertEach(ctx, tx, batch, ru)
		// The transaction holds SQLite's write lock now: what follows
		// waits on no other connection (see insertEach).
		ctx = context.WithoutCancel(ctx)
	}
	if err != nil {
		return err
	}
	if err := ru.addTo(ctx, tx, d); err != nil {
		return err
	}
	return tx.Commit()
}

// insertArgs appends r's values, in insertColumns' order, to args.
func insertArgs(args []any, r *Record, tags string) []any {
	stream, estimated := 0, 0
	if r.Stream {
		stream = 1
	}
	if r.Estimated {
		estimated = 1
	}
	return append(args, r.Time.UnixMilli(), r.RequestID, r.KeyID, r.KeyName, tags, r.Surface, r.Model,
		r.Provider, r.UpstreamModel, stream, r.InputTokens, r.OutputTokens, r.CachedTokens, r.Status, r.ErrorType,
		r.LatencyMS, r.TTFTMS, r.CostUSD, r.Route, r.Deployment, r.Attempts, r.RouteReason, r.CounterfactualUSD, r.Guardrail, estimated)
}

// insertEach inserts the records one statement each (SQLite), adding
// those inserted to ru.
//
// Only the first insert can wait for the database (on another
// connection's write lock), so only it runs under ctx, which Close
// cancels to stop that wait. The transaction holds the write lock after
// it, and the rest run under a context that is never done: for one that
// can be, modernc's driver starts a goroutine per statement to watch it.
// A cancel mid-batch still ends the transaction (database/sql rolls it
// back), and the next insert fails.
func insertEach(ctx context.Context, tx *sql.Tx, batch []Record, ru *rollup) error {
	st, err := tx.PrepareContext(ctx, insertOneSQL)
	if err != nil {
		return err
	}
	defer st.Close()
	args := make([]any, 0, 24)
	for i := range batch {
		r := &batch[i]
		tags := encodeTags(r.Tags)
		res, err := st.ExecContext(ctx, insertArgs(args[:0], r, tags)...)
		if err != nil {
			return err
		}
		if i == 0 {
			ctx = context.WithoutCancel(ctx)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			ru.add(r, tags)
		}
	}
	return nil
}

// insertMany inserts the records insertRows a statement (PostgreSQL),
// adding those inserted to ru.
func insertMany(ctx context.Context, tx *sql.Tx, batch []Record, ru *rollup) error {
	args := make([]any, 0, 24*insertRows)
	tags := make([]string, insertRows)
	first := make(map[string]int, insertRows) // request id → its first record in the chunk
	for len(batch) > 0 {
		chunk := batch[:min(len(batch), insertRows)]
		batch = batch[len(chunk):]
		args = args[:0]
		clear(first)
		for i := range chunk {
			tags[i] = encodeTags(chunk[i].Tags)
			if _, dup := first[chunk[i].RequestID]; !dup {
				first[chunk[i].RequestID] = i
			}
			args = insertArgs(args, &chunk[i], tags[i])
		}
		if err := eachInserted(ctx, tx, insertSQLs[len(chunk)], args, func(id string) {
			i := first[id]
			ru.add(&chunk[i], tags[i])
		}); err != nil {
			return err
		}
	}
	return nil
}

// eachInserted runs an insert that returns request ids and calls
// inserted with each.
func eachInserted(ctx context.Context, tx *sql.Tx, query string, args []any, inserted func(requestID string)) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		inserted(id)
	}
	return rows.Err()
}

// encodeTags is the stored form of a record's tags: a JSON object with
// its keys sorted, so equal tags are equal text (the roll-up groups by
// it).
func encodeTags(tags map[string]string) string {
	if len(tags) == 0 {
		return "{}"
	}
	var buf [256]byte
	return string(appendTags(buf[:0], tags))
}

func jsonUnmarshalString(s string, v any) error { return json.Unmarshal([]byte(s), v) }
