// Package ledger records what every request cost: one usage record per
// request, failed ones included, written off the hot path in batches, with
// prices from the catalog and reports grouped by model, provider, key or
// tag. Each batch is also summed into hourly and daily roll-ups, which
// keep reports over long windows fast and outlive the raw records when a
// retention period prunes them.
package ledger

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
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
	// Estimated marks token counts Junction made itself (with its offline
	// tokenizer) because the upstream reported none: a stream cut, or
	// abandoned by its client, before its usage.
	Estimated bool `json:"estimated,omitempty"`
}

// Options tunes a Writer.
type Options struct {
	QueueSize     int
	BatchSize     int
	FlushInterval time.Duration
	// SpillPath is a JSON-lines file that receives records the database
	// would not take; they are written to the database on the next start.
	SpillPath string
	// JournalDir, when set, is where the journal lives (see journal.go):
	// each record is appended there before Add returns, so a crash or a
	// kill -9 loses no record Add accepted. Empty: no journal, and a crash
	// loses the records still queued. What an earlier run left there is
	// replayed at start, even with NoJournal.
	JournalDir string
	// NoJournal keeps records in memory only until they are written
	// (replaying JournalDir still).
	NoJournal bool
	Logger    *slog.Logger
	// RetainRaw, when positive, is how long raw records are kept: older
	// whole hours are pruned in the background (see Prune), every
	// PruneInterval (10 minutes by default). The roll-ups are kept.
	RetainRaw     time.Duration
	PruneInterval time.Duration
}

// entry is a queued record and the journal segment that holds it.
type entry struct {
	r   Record
	seg uint64
}

// Writer queues records and writes them to the database in batches from
// one goroutine. Add never drops a record: when the queue is full it waits
// for room, and a batch the database refuses is spilled to a file.
//
// The writer goroutine never waits on the queue itself: it sleeps until
// its flush timer fires or a batch's worth of records waits (BatchSize,
// or QueueSize if smaller), then takes what is queued without blocking.
// So Add's send finds no receiver to hand its record to and wakes no
// goroutine (nor, with it, an idle P): a request costs no hand-off.
type Writer struct {
	db      *sql.DB
	opt     Options
	q       chan entry
	kick    chan struct{} // capacity 1: wakes the writer before its timer
	wakeAt  int           // queue length at which Add wakes the writer
	done    chan struct{}
	log     *slog.Logger
	journal *journal // nil without Options.JournalDir

	stopPrune context.CancelFunc
	pruneDone chan struct{}

	// dbCtx is the context of database writes; Close cancels it when its
	// deadline passes, and the writer then spills what is left.
	dbCtx   context.Context
	abandon context.CancelFunc

	mu      sync.RWMutex // held for reading by Add, for writing by Close
	spillMu sync.Mutex   // serialises appends to the spill file
	closed  bool

	written, spilled, waits, pruned, journalErrs atomic.Int64
}

// NewWriter starts a Writer on db. Records spilled or journaled by an
// earlier run are written first.
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
	w := &Writer{db: db, opt: opt, q: make(chan entry, opt.QueueSize), done: make(chan struct{}), log: opt.Logger,
		pruneDone: make(chan struct{}), kick: make(chan struct{}, 1), wakeAt: min(opt.BatchSize, opt.QueueSize)}
	w.dbCtx, w.abandon = context.WithCancel(context.Background())
	last, err := w.replay(ctx)
	if err != nil {
		return nil, err
	}
	if opt.JournalDir != "" && !opt.NoJournal {
		if w.journal, err = openJournal(opt.JournalDir, last); err != nil {
			return nil, err
		}
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

// Add queues a record, after appending it to the journal when there is
// one. It waits when the queue is full rather than drop the record; the
// wait is counted in Stats. After Close, the record goes to the spill
// file.
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
	e := entry{r: r}
	if w.journal != nil {
		var err error
		if e.seg, err = w.journal.append(&r); err != nil {
			// The record still reaches the database; only a crash before
			// then would lose it.
			w.journalErrs.Add(1)
			w.log.Error("ledger: could not journal a record", "request_id", r.RequestID, "err", err)
		}
	}
	select {
	case w.q <- e:
	default:
		w.waits.Add(1)
		w.wakeWriter()
		w.q <- e
	}
	if len(w.q) >= w.wakeAt {
		w.wakeWriter()
	}
	return nil
}

// wakeWriter wakes the writer goroutine unless a wake is pending already.
func (w *Writer) wakeWriter() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Stats are the writer's counters. Pruned counts raw records this writer
// deleted for being past the retention period; JournalErrors counts
// records the journal could not take (they were still queued).
type Stats struct {
	Written, Spilled, QueueFullWaits, Pruned, JournalErrors int64
	Queued                                                  int
}

// Stats returns the writer's counters.
func (w *Writer) Stats() Stats {
	return Stats{Written: w.written.Load(), Spilled: w.spilled.Load(), QueueFullWaits: w.waits.Load(), Pruned: w.pruned.Load(),
		JournalErrors: w.journalErrs.Load(), Queued: len(w.q)}
}

// Close stops accepting records and pruning, and writes everything
// queued. If ctx ends first (the database is locked or down), the writer
// stops waiting for the database and spills every record not yet
// written, and Close returns ctx's error once they are on disk: no
// queued record is ever dropped.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.q)
		w.wakeWriter()
	}
	w.mu.Unlock()
	w.stopPrune()
	select {
	case <-w.done:
		<-w.pruneDone
		w.abandon()
		return nil
	case <-ctx.Done():
	}
	w.abandon()
	<-w.done
	<-w.pruneDone
	return ctx.Err()
}

func (w *Writer) run() {
	defer close(w.done)
	batch := make([]Record, 0, w.opt.BatchSize)
	segs := make([]uint64, 0, w.opt.BatchSize)
	t := time.NewTimer(w.opt.FlushInterval)
	defer t.Stop()
	tick := func() {
		if w.journal != nil {
			// The group commit: one fsync for every record appended
			// since the last.
			if err := w.journal.sync(); err != nil {
				w.log.Warn("ledger: journal fsync failed", "err", err)
			}
		}
		t.Reset(w.opt.FlushInterval)
	}
	for {
		select {
		case <-w.kick:
		case <-t.C:
			tick()
		}
		// Write what is queued, a batch at a time, until a batch comes
		// out short (the queue is empty).
		for {
			select {
			case <-t.C: // the fsync keeps its schedule however long this lasts
				tick()
			default:
			}
			batch, segs = batch[:0], segs[:0]
			closed := false
		take:
			for len(batch) < w.opt.BatchSize {
				select {
				case e, ok := <-w.q:
					if !ok {
						closed = true
						break take
					}
					batch, segs = append(batch, e.r), append(segs, e.seg)
				default:
					break take
				}
			}
			n := len(batch)
			if n > 0 {
				if w.write(batch) && w.journal != nil {
					if err := w.journal.release(segs); err != nil {
						w.log.Warn("ledger: journal upkeep failed", "err", err)
					}
				}
				clear(batch) // drop the records' references until the next batch
			}
			if closed {
				if w.journal != nil {
					if err := w.journal.close(); err != nil {
						w.log.Warn("ledger: closing the journal failed", "err", err)
					}
				}
				return
			}
			if n < w.opt.BatchSize {
				break
			}
		}
	}
}

// write commits a batch, retrying briefly, and spills it if the database
// still refuses or Close has given up on the database. It reports whether
// the batch is safe: written, or spilled.
func (w *Writer) write(batch []Record) bool {
	ctx := w.dbCtx
	var err error
	for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
		if err = insert(ctx, w.db, batch); err == nil {
			w.written.Add(int64(len(batch)))
			return true
		}
		select {
		case <-time.After(time.Duration(50<<attempt) * time.Millisecond):
		case <-ctx.Done():
		}
	}
	if ctx.Err() != nil {
		err = errors.New("shutdown deadline passed before the database took the batch")
	}
	w.log.Error("ledger: database did not take a batch; spilling it to disk", "records", len(batch), "err", err, "spill", w.opt.SpillPath)
	if serr := w.spill(batch); serr != nil {
		w.log.Error("ledger: spill failed; the records stay in the journal (if any) for the next start", "records", len(batch), "err", serr)
		return false
	}
	w.spilled.Add(int64(len(batch)))
	return true
}
