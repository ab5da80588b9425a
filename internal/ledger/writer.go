// Package ledger records what every request cost: one usage record per
// request, failed ones included, written off the hot path in batches, with
// prices from the catalog and reports grouped by model, provider, key or
// tag.
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

	mu      sync.RWMutex // held for reading by Add, for writing by Close
	spillMu sync.Mutex   // serialises appends to the spill file
	closed  bool

	written, spilled, waits atomic.Int64
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
	w := &Writer{db: db, opt: opt, q: make(chan Record, opt.QueueSize), done: make(chan struct{}), log: opt.Logger}
	if err := w.replaySpill(ctx); err != nil {
		return nil, err
	}
	go w.run()
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

// Stats are the writer's counters.
type Stats struct {
	Written, Spilled, QueueFullWaits int64
	Queued                           int
}

// Stats returns the writer's counters.
func (w *Writer) Stats() Stats {
	return Stats{Written: w.written.Load(), Spilled: w.spilled.Load(), QueueFullWaits: w.waits.Load(), Queued: len(w.q)}
}

// Close stops accepting records, writes everything queued and returns
// when done or when ctx ends (queued records are then spilled).
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.q)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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

const insertSQL = `INSERT OR IGNORE INTO usage(ts, request_id, key_id, key_name, tags, surface, model, provider, upstream_model,
	stream, input_tokens, output_tokens, cached_tokens, status, error_type, latency_ms, ttft_ms, cost_usd,
	route, deployment, attempts, route_reason, counterfactual_cost_usd, guardrail)
	VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`

func insert(ctx context.Context, db *sql.DB, batch []Record) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, insertSQL)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, r := range batch {
		tags := "{}"
		if len(r.Tags) > 0 {
			b, _ := json.Marshal(r.Tags)
			tags = string(b)
		}
		stream := 0
		if r.Stream {
			stream = 1
		}
		if _, err := st.ExecContext(ctx, r.Time.UnixMilli(), r.RequestID, r.KeyID, r.KeyName, tags, r.Surface, r.Model,
			r.Provider, r.UpstreamModel, stream, r.InputTokens, r.OutputTokens, r.CachedTokens, r.Status, r.ErrorType,
			r.LatencyMS, r.TTFTMS, r.CostUSD, r.Route, r.Deployment, r.Attempts, r.RouteReason, r.CounterfactualUSD, r.Guardrail); err != nil {
			return err
		}
	}
	return tx.Commit()
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
