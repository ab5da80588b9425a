// Package capture records the traffic of endpoints whose config has
// data_capture, in SageMaker's data-capture format, so that tools written
// for SageMaker Model Monitor's captured data read Junction's unchanged:
// one JSON Lines object per endpoint variant and time window, under
// DESTINATION/ENDPOINT/VARIANT/yyyy/mm/dd/hh/, each line one invocation's
// captureData (endpointInput, endpointOutput) and eventMetadata.
//
// Capture is off the invocation's path: hosting hands over each answered
// invocation (Writer.Capture), which samples it and, when taken, passes
// references to its bodies to a worker without copying or blocking. The
// worker encodes the lines and an uploader writes each window's objects.
// Memory is bounded: a record that would take the bytes held past
// Options.BufferBytes, or find the hand-over queue full, is dropped and
// counted, never waited for. Records still in memory when Junction dies
// are lost (at most one window's); Close writes them.
//
// It is not the invocation path (hosting), nor object storage (blob).
package capture

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/junctionhq/junction/internal/blob"
	"github.com/junctionhq/junction/internal/hosting"
)

// Options tune a Writer. Zero values take the defaults given.
type Options struct {
	// Window is how long records gather before each endpoint variant's
	// are written as one object (default 1 minute).
	Window time.Duration
	// BufferBytes bounds the captured bytes held in memory, gathering or
	// being written (default 64 MiB).
	BufferBytes int64
	// MaxObjectBytes writes an object before its window ends once it
	// holds this much (default 16 MiB).
	MaxObjectBytes int64
	// Queue bounds the records handed over and not yet encoded (default
	// 4096).
	Queue int
	// Attempts bounds the writes of one object (default 3).
	Attempts int
	Log      *slog.Logger
}

func (o *Options) defaults() {
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.BufferBytes <= 0 {
		o.BufferBytes = 64 << 20
	}
	if o.MaxObjectBytes <= 0 {
		o.MaxObjectBytes = 16 << 20
	}
	if o.Queue <= 0 {
		o.Queue = 4096
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

// Writer samples invocations and writes the captured ones. It is a
// hosting.Capturer. Start runs it; Close writes what it holds and stops.
type Writer struct {
	objects *blob.Objects
	opts    Options

	in      chan *event  // records handed over, not yet encoded
	uploads chan *object // objects complete, not yet written
	held    atomic.Int64 // bytes reserved by records in memory

	ctx     context.Context // uploads; cancelled when Close gives up
	cancel  context.CancelFunc
	stop    chan struct{}
	done    chan struct{}
	started atomic.Bool

	byEndpoint sync.Map // endpoint -> *counts
	objectsOK  atomic.Int64
	objectsBad atomic.Int64
}

// counts are one endpoint's records by outcome.
type counts struct {
	written, dropped, failed atomic.Int64
}

// event is one sampled invocation on its way to an object.
type event struct {
	d                 *hosting.DataCapture
	endpoint, variant string
	at                time.Time
	inferenceID       string
	inType, outType   string
	in, out           []byte // nil when that side is not captured
	input, output     bool
	cost              int64 // bytes reserved in held
}

// New returns a Writer over objects.
func New(objects *blob.Objects, opts Options) *Writer {
	opts.defaults()
	w := &Writer{objects: objects, opts: opts, in: make(chan *event, opts.Queue), uploads: make(chan *object, 64),
		stop: make(chan struct{}), done: make(chan struct{})}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

// Capture samples an answered invocation and, when it is taken, hands it
// to the worker. It never blocks and never copies a body: with the
// buffer full it drops the record and counts it.
func (w *Writer) Capture(d *hosting.DataCapture, inv *hosting.Invocation, res *hosting.Result, at time.Time) {
	if p := d.Percent(); p < 100 && rand.IntN(100) >= p {
		return
	}
	ev := &event{d: d, endpoint: inv.Endpoint, at: at, inferenceID: inv.InferenceID}
	ev.input, ev.output = d.Modes()
	if res != nil {
		ev.variant = res.Variant
	}
	if ev.input {
		ev.in, ev.inType = inv.Body, inv.ContentType
	}
	if ev.output {
		if res == nil {
			return
		}
		ev.out, ev.outType = res.Body, res.ContentType
	}
	ev.cost = encodedSize(len(ev.in)) + encodedSize(len(ev.out)) + int64(len(ev.inType)+len(ev.outType)+len(ev.inferenceID)) + lineOverhead
	if w.held.Add(ev.cost) > w.opts.BufferBytes {
		w.held.Add(-ev.cost)
		w.counts(ev.endpoint).dropped.Add(1)
		return
	}
	select {
	case w.in <- ev:
	default:
		w.held.Add(-ev.cost)
		w.counts(ev.endpoint).dropped.Add(1)
	}
}

// lineOverhead bounds a line's bytes besides its payloads and content
// types: field names, ids, the time.
const lineOverhead = 320

// encodedSize bounds a payload's size once encoded: base64's four bytes
// for three. Text payloads are kept as they are, JSON escapes aside.
func encodedSize(n int) int64 { return int64((n+2)/3*4) + 2 }

func (w *Writer) counts(endpoint string) *counts {
	if c, ok := w.byEndpoint.Load(endpoint); ok {
		return c.(*counts)
	}
	c, _ := w.byEndpoint.LoadOrStore(endpoint, &counts{})
	return c.(*counts)
}

// Start runs the worker and the uploader until Close.
func (w *Writer) Start() {
	if w.started.Swap(true) {
		return
	}
	uploaded := make(chan struct{})
	go func() {
		defer close(uploaded)
		for o := range w.uploads {
			w.upload(o)
		}
	}()
	go func() {
		w.work()
		close(w.uploads)
		<-uploaded
		close(w.done)
	}()
}

// Close writes the records in memory and stops, waiting up to ctx for
// the writes; past it, what is left is dropped and counted as failed.
func (w *Writer) Close(ctx context.Context) {
	if !w.started.Load() {
		return
	}
	select {
	case <-w.stop:
		return
	default:
		close(w.stop)
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		w.cancel()
		<-w.done
	}
	w.cancel()
}

// work encodes records into their window's objects and hands each
// object to the uploader when its window ends, when it is full, and at
// Close.
func (w *Writer) work() {
	open := map[objectKey]*object{}
	t := time.NewTicker(w.opts.Window)
	defer t.Stop()
	for {
		select {
		case ev := <-w.in:
			w.add(open, ev)
		case <-t.C:
			w.flush(open)
		case <-w.stop:
			for drained := false; !drained; {
				select {
				case ev := <-w.in:
					w.add(open, ev)
				default:
					drained = true
				}
			}
			w.flush(open)
			return
		}
	}
}

// objectKey names the object a record goes to: its destination, endpoint
// and variant, and the hour its name is filed under.
type objectKey struct {
	dest, endpoint, variant string
	hour                    int64
}

// object is one JSON Lines object gathering records.
type object struct {
	loc      blob.Location
	endpoint string
	buf      bytes.Buffer
	records  int64
	cost     int64
}

func (w *Writer) add(open map[objectKey]*object, ev *event) {
	k := objectKey{dest: ev.d.DestinationS3URI, endpoint: ev.endpoint, variant: ev.variant, hour: ev.at.Unix() / 3600}
	o := open[k]
	if o == nil {
		dest, err := blob.ParseLocation(k.dest)
		if err != nil { // validated with the config; kept for safety
			w.held.Add(-ev.cost)
			w.counts(ev.endpoint).failed.Add(1)
			return
		}
		o = &object{loc: dest.Join(objectName(ev.endpoint, ev.variant, ev.at)), endpoint: ev.endpoint}
		open[k] = o
	}
	appendLine(&o.buf, ev, newEventID())
	o.records++
	o.cost += ev.cost
	if int64(o.buf.Len()) >= w.opts.MaxObjectBytes {
		delete(open, k)
		w.uploads <- o
	}
}

func (w *Writer) flush(open map[objectKey]*object) {
	for k, o := range open {
		delete(open, k)
		w.uploads <- o
	}
}

// upload writes an object, retrying a failed write with a doubling
// backoff, and releases its bytes.
func (w *Writer) upload(o *object) {
	defer w.held.Add(-o.cost)
	c := w.counts(o.endpoint)
	wait := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := w.objects.Put(w.ctx, o.loc, bytes.NewReader(o.buf.Bytes()), "application/jsonl")
		if err == nil {
			c.written.Add(o.records)
			w.objectsOK.Add(1)
			return
		}
		if attempt >= w.opts.Attempts || w.ctx.Err() != nil {
			w.opts.Log.Warn("capture: an object of captured records was not written; its records are lost",
				"object", o.loc.String(), "records", o.records, "err", err)
			c.failed.Add(o.records)
			w.objectsBad.Add(1)
			return
		}
		select {
		case <-time.After(wait):
		case <-w.ctx.Done():
		}
		wait *= 2
	}
}

// Stats are a Writer's totals since it started.
type Stats struct {
	// Written, Dropped and Failed count records: written in an object,
	// dropped because the buffer was full, lost because their object
	// could not be written.
	Written, Dropped, Failed int64
	// Objects counts the objects written.
	Objects int64
	// HeldBytes is what the records in memory reserve now.
	HeldBytes int64
}

// Stats returns the totals over every endpoint.
func (w *Writer) Stats() Stats {
	s := Stats{Objects: w.objectsOK.Load(), HeldBytes: w.held.Load()}
	w.byEndpoint.Range(func(_, v any) bool {
		c := v.(*counts)
		s.Written += c.written.Load()
		s.Dropped += c.dropped.Load()
		s.Failed += c.failed.Load()
		return true
	})
	return s
}
