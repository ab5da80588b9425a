package hosting

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// meter is hosting's metering, a part of its own beside the reconciler
// and the invocation path: the controller tells it when an instance
// starts, is adopted, becomes ready and stops, and hands it serverless
// calls to bill; it turns them into segments of instance time in the
// store.
//
// Instance time is metered in segments: every interval each running
// instance's time since its last segment is written, and a stopped
// instance's last stretch when it stops. A segment the database refuses
// is kept and written with the next one, so no instance time is lost; an
// adopted instance resumes from the end of its last stored segment, so
// none is metered twice.
type meter struct {
	store    *Store
	types    InstanceTypes
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	live    map[*instance]struct{} // every metered instance running
	backlog []Segment              // segments not yet written: stopped instances', serverless calls'
}

// clock is an instance's metering state, guarded by its own lock (the
// runtime's callbacks and the meter's tick both reach it).
type clock struct {
	mu sync.Mutex
	// from starts the stretch not yet metered; zero while the instance
	// is not metered (not yet ready, serverless, or stopped).
	from time.Time
	// onReady: metering starts when the instance is first ready
	// (hostrt.ReadyMetering), not when it is started.
	onReady bool
}

func newMeter(store *Store, types InstanceTypes, interval time.Duration, log *slog.Logger) *meter {
	return &meter{store: store, types: types, interval: interval, log: log, live: map[*instance]struct{}{}}
}

// starting prepares the clock of an instance about to be started; it is
// called before the runtime's Start, whose callbacks may report the
// instance ready before Start returns.
func (m *meter) starting(in *instance, fromReady bool) {
	in.clock.mu.Lock()
	in.clock.onReady = fromReady
	in.clock.mu.Unlock()
}

// started meters an instance the runtime has started: from now, unless
// it is metered from its first readiness.
func (m *meter) started(in *instance, fromReady bool) {
	if !fromReady {
		in.clock.mu.Lock()
		in.clock.from = time.Now()
		in.clock.mu.Unlock()
	}
	m.track(in)
}

// ready starts the clock of an instance metered from its first readiness,
// at the time it became ready.
func (m *meter) ready(in *instance, since time.Time) {
	in.clock.mu.Lock()
	if in.clock.onReady {
		in.clock.onReady, in.clock.from = false, since
	}
	in.clock.mu.Unlock()
}

// adopted meters an instance an earlier run left running from where its
// metering stopped (or from when it started, if it never was).
func (m *meter) adopted(in *instance) {
	ctx, cancel := storeContext()
	from, err := m.store.meteredUntil(ctx, in.ID())
	cancel()
	if err != nil || from.IsZero() {
		from = in.Status().Since
	}
	if from.IsZero() {
		from = time.Now()
	}
	in.clock.mu.Lock()
	in.clock.from = from
	in.clock.mu.Unlock()
	m.track(in)
}

// stopped writes a stopped instance's last stretch; if the database
// refuses it, it waits in the backlog for the next tick.
func (m *meter) stopped(in *instance) {
	m.mu.Lock()
	delete(m.live, in)
	m.mu.Unlock()
	in.clock.mu.Lock()
	if in.clock.from.IsZero() {
		in.clock.mu.Unlock()
		return
	}
	seg := m.segment(in, in.clock.from, time.Now())
	in.clock.from = time.Time{}
	in.clock.mu.Unlock()
	m.bill(seg)
	m.flush()
}

// bill queues a segment priced by its caller (a serverless call), to be
// written with the next tick.
func (m *meter) bill(seg Segment) {
	m.mu.Lock()
	m.backlog = append(m.backlog, seg)
	m.mu.Unlock()
}

// track adds a started instance to those the tick meters; a serverless
// one is billed per call instead (serverless.go).
func (m *meter) track(in *instance) {
	if in.unmetered() {
		return
	}
	m.mu.Lock()
	m.live[in] = struct{}{}
	m.mu.Unlock()
}

// run ticks every interval until ctx ends.
func (m *meter) run(ctx context.Context) {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.tick()
		}
	}
}

// tick writes the backlog and every running instance's time up to now.
func (m *meter) tick() {
	m.flush()
	m.mu.Lock()
	list := make([]*instance, 0, len(m.live))
	for in := range m.live {
		list = append(list, in)
	}
	m.mu.Unlock()
	now := time.Now()
	segs := make([]Segment, 0, len(list))
	for _, in := range list {
		// The stretch is cut off under the instance's lock, before it is
		// written: an instance stopped while the write is in flight then
		// meters only what follows (stopped reads the moved clock), never
		// the same stretch again.
		in.clock.mu.Lock()
		if !in.clock.from.IsZero() && now.Sub(in.clock.from) > 0 {
			segs = append(segs, m.segment(in, in.clock.from, now))
			in.clock.from = now
		}
		in.clock.mu.Unlock()
	}
	if len(segs) == 0 {
		return
	}
	ctx, cancel := storeContext()
	defer cancel()
	if err := m.store.addSegments(ctx, segs); err != nil {
		if m.log != nil {
			m.log.Warn("hosting: instance time not metered; will retry", "err", err)
		}
		m.mu.Lock()
		m.backlog = append(m.backlog, segs...)
		m.mu.Unlock()
	}
}

// flush writes the backlog; what the database refuses stays in it.
func (m *meter) flush() {
	m.mu.Lock()
	segs := m.backlog
	m.backlog = nil
	m.mu.Unlock()
	if len(segs) == 0 {
		return
	}
	ctx, cancel := storeContext()
	defer cancel()
	if err := m.store.addSegments(ctx, segs); err != nil {
		if m.log != nil {
			m.log.Warn("hosting: instance time not metered; will retry", "segments", len(segs), "err", err)
		}
		m.mu.Lock()
		m.backlog = append(segs, m.backlog...)
		m.mu.Unlock()
	}
}

func (m *meter) segment(in *instance, from, to time.Time) Segment {
	g := Segment{Endpoint: in.endpoint, Variant: in.v.spec.Name, InstanceID: in.ID(), InstanceType: in.v.spec.InstanceType, Start: from, End: to}
	if it, ok := m.types[in.v.spec.InstanceType]; ok {
		p := it.USDPerHour
		g.USDPerHour = &p
	}
	return g
}
