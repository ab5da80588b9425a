// Package ledger records what every request cost: one usage record per
// request, failed ones included, written off the hot path in batches, with
// prices from the catalog and reports grouped by model, provider, key or
// tag. Each batch is also summed into hourly and daily roll-ups, which
// keep reports over long windows fast and outlive the raw records when a
// retention period prunes them.
package ledger

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/junctionhq/junction/internal/store"
)

// Record is one request's usage.
type Record struct {
	Time          time.Time         `json:"time"`
	RequestID     string            `json:"request_id"`
	KeyID         string            `json:"key_id"`
	KeyName       string            `json:"key_name"`
	Tags          map[string]string `json:"tags,omitempty"`
	Surface       string            `json:"surface"`
	Model         string            `json:"model"`
	Provider      string            `json:"provider"`
	UpstreamModel string            `json:"upstream_model"`
	// Route is the route (or model) name the request was routed by, and
	// Deployment the model that served it; Attempts counts upstream calls.
	Route      string `json:"route,omitempty"`
	Deployment string `json:"deployment,omitempty"`
	Attempts   int    `json:"attempts,omitempty"`
	// RouteReason says why that deployment was chosen.
	RouteReason string `json:"route_reason,omitempty"`
	// CounterfactualUSD, for routed requests, is what the route's
	// strongest candidate would have cost for the same tokens.
	CounterfactualUSD *float64 `json:"counterfactual_cost_usd,omitempty"`
	// Guardrail says what the request's guardrail did ("ID:VERSION NONE",
	// or "ID:VERSION INTERVENED input blocked"); empty when none applied.
	Guardrail    string  `json:"guardrail,omitempty"`
	Stream       bool    `json:"stream"`
	InputTokens  int     `json:"input_tokens"`
	OutputTokens int     `json:"output_tokens"`
	CachedTokens int     `json:"cached_tokens"`
	Status       int     `json:"status"`
	ErrorType    string  `json:"error_type,omitempty"`
	LatencyMS    float64 `json:"latency_ms"`
	// TTFTMS is the time to first token of a stream; nil otherwise.
	TTFTMS *float64 `json:"ttft_ms,omitempty"`
	// CostUSD is nil when the model has no known price: unknown, not $0.
	CostUSD *float64 `json:"cost_usd,omitempty"`
}

// Options tunes a Writer.
type Options struct {
	QueueSize     int
	BatchSize     int
	FlushInterval time.Duration
	// SpillPath is a JSON-lines file that receives records the database
	// would not take; they are written to the database on the next start.
	SpillPath string
	Logger    *slog.Logger
	// RetainRaw, when positive, is how long raw records are kept: older
	// whole hours are pruned in the background (see Prune), every
	// PruneInterval (10 minutes by default). The roll-ups are kept.
	RetainRaw     time.Duration
	PruneInterval time.Duration
}

// Writer queues records and writes them to the database in batches from
// one goroutine. Add never drops a record: when the queue is full it waits
// for room, and a batch the database refuses is spilled to a file.
type Writer struct {
	db   *sql.DB
	opt  Options
	q    chan Record
	done chan struct{}
	log  *slog.Logger

	stopPrune context.CancelFunc
	pruneDone chan struct{}

	mu      sync.RWMutex // held for reading by Add, for writing by Close
	spillMu sync.Mutex   // serialises appends to the spill file
	closed  bool

	written, spilled, waits, pruned atomic.Int64
}

// NewWriter starts a Writer on db. Records spilled by an earlier run are
// loaded first.
func NewWriter(ctx context.Context, db *sql.DB, opt Options) (*Writer, error) {
	if opt.QueueSize <= 0 {
		opt.QueueSize = 65536
	}
	if opt.BatchSize <= 0 {
		opt.BatchSize = 512
	}
	if opt.FlushInterval <= 0 {
		opt.FlushInterval = 200 * time.Millisecond
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.PruneInterval <= 0 {
		opt.PruneInterval = 10 * time.Minute
	}
	w := &Writer{db: db, opt: opt, q: make(chan Record, opt.QueueSize), done: make(chan struct{}), log: opt.Logger,
		pruneDone: make(chan struct{})}
	if err := w.replaySpill(ctx); err != nil {
		return nil, err
	}
	go w.run()
	pctx, stop := context.WithCancel(context.Background())
	w.stopPrune = stop
	go w.pruneLoop(pctx)
	return w, nil
}

// ErrClosed is returned by Add after Close when the record could not be
// spilled to disk either.
var ErrClosed = errors.New("ledger is closed")

// Add queues a record. It waits when the queue is full rather than drop
// the record; the wait is counted in Stats. After Close, the record goes
// to the spill file.
func (w *Writer) Add(r Record) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		// A request that outlived the shutdown's grace period: keep its
		// record in the spill file, to be written on the next start.
		if err := w.spill([]Record{r}); err != nil {
			w.log.Error("ledger: closed and could not spill a record; it is lost", "request_id", r.RequestID, "err", err)
			return ErrClosed
		}
		w.spilled.Add(1)
		return nil
	}
	select {
	case w.q <- r:
	default:
		w.waits.Add(1)
		w.q <- r
	}
	return nil
}

// Stats are the writer's counters. Pruned counts raw records this writer
// deleted for being past the retention period.
type Stats struct {
	Written, Spilled, QueueFullWaits, Pruned int64
	Queued                                   int
}

// Stats returns the writer's counters.
func (w *Writer) Stats() Stats {
	return Stats{Written: w.written.Load(), Spilled: w.spilled.Load(), QueueFullWaits: w.waits.Load(), Pruned: w.pruned.Load(),
		Queued: len(w.q)}
}

// Close stops accepting records and pruning, writes everything queued
// and returns when done or when ctx ends (queued records are then
// spilled).
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.q)
	}
	w.mu.Unlock()
	w.stopPrune()
	for _, done := range []chan struct{}{w.pruneDone, w.done} {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (w *Writer) run() {
	defer close(w.done)
	batch := make([]Record, 0, w.opt.BatchSize)
	t := time.NewTimer(w.opt.FlushInterval)
	defer t.Stop()
	flush := func() {
		if len(batch) > 0 {
			w.write(batch)
			batch = batch[:0]
		}
	}
	for {
		select {
		case r, ok := <-w.q:
			if !ok {
				flush()
				return
			}
			batch = append(batch, r)
			if len(batch) >= w.opt.BatchSize {
				flush()
			}
		case <-t.C:
			flush()
			t.Reset(w.opt.FlushInterval)
		}
	}
}

// write commits a batch, retrying briefly, and spills it if the database
// still refuses.
func (w *Writer) write(batch []Record) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = insert(context.Background(), w.db, batch); err == nil {
			w.written.Add(int64(len(batch)))
			return
		}
		time.Sleep(time.Duration(50<<attempt) * time.Millisecond)
	}
	w.log.Error("ledger: database refused a batch; spilling it to disk", "records", len(batch), "err", err, "spill", w.opt.SpillPath)
	if serr := w.spill(batch); serr != nil {
		w.log.Error("ledger: spill failed; records are lost", "records", len(batch), "err", serr)
		return
	}
	w.spilled.Add(int64(len(batch)))
}

// insertColumns are the usage columns insert writes, in order.
const insertColumns = `ts, request_id, key_id, key_name, tags, surface, model, provider, upstream_model,
	stream, input_tokens, output_tokens, cached_tokens, status, error_type, latency_ms, ttft_ms, cost_usd,
	route, deployment, attempts, route_reason, counterfactual_cost_usd, guardrail`

// insertRows is the most records one statement inserts on PostgreSQL
// (24 arguments each): a round trip per insertRows records rather than
// per record. SQLite, in-process, has no round trips to save: a
// one-record statement prepared once per batch costs it less than
// parsing a long one per chunk.
const insertRows = 64

// insertOneSQL inserts one record; a request id already recorded (a
// spill replayed twice) is skipped, and then no row is changed.
const insertOneSQL = `INSERT INTO usage(` + insertColumns + `)
	VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING`

// insertSQLs[n] inserts n records as insertOneSQL does and returns the
// request ids of those it inserted.
var insertSQLs = func() (q [insertRows + 1]string) {
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", 24), ",") + ")"
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
	stream := 0
	if r.Stream {
		stream = 1
	}
	return append(args, r.Time.UnixMilli(), r.RequestID, r.KeyID, r.KeyName, tags, r.Surface, r.Model,
		r.Provider, r.UpstreamModel, stream, r.InputTokens, r.OutputTokens, r.CachedTokens, r.Status, r.ErrorType,
		r.LatencyMS, r.TTFTMS, r.CostUSD, r.Route, r.Deployment, r.Attempts, r.RouteReason, r.CounterfactualUSD, r.Guardrail)
}

// insertEach inserts the records one statement each (SQLite), adding
// those inserted to ru.
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
	b, _ := json.Marshal(tags)
	return string(b)
}

func (w *Writer) spill(batch []Record) error {
	w.spillMu.Lock()
	defer w.spillMu.Unlock()
	if w.opt.SpillPath == "" {
		return errors.New("no spill path configured")
	}
	f, err := os.OpenFile(w.opt.SpillPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	for _, r := range batch {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// replaySpill writes records spilled by an earlier run, then removes the
// file. Request ids are unique, so a replay cut short is safe to repeat.
func (w *Writer) replaySpill(ctx context.Context) error {
	if w.opt.SpillPath == "" {
		return nil
	}
	f, err := os.Open(w.opt.SpillPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var batch []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			continue // a line torn by a crash mid-write
		}
		batch = append(batch, r)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read ledger spill %s: %w", w.opt.SpillPath, err)
	}
	if len(batch) > 0 {
		if err := insert(ctx, w.db, batch); err != nil {
			return fmt.Errorf("replay ledger spill %s: %w", w.opt.SpillPath, err)
		}
		w.log.Info("ledger: replayed spilled records", "records", len(batch))
	}
	f.Close()
	return os.Remove(w.opt.SpillPath)
}

func jsonUnmarshalString(s string, v any) error { return json.Unmarshal([]byte(s), v) }
