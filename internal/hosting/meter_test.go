package hosting

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hostrt"
	"github.com/junctionhq/junction/internal/platform/store"
)

// fakeInstance is an hostrt.Instance that only has an id, for tests of
// bookkeeping that never talks to a server.
type fakeInstance struct{ id string }

func (f fakeInstance) ID() string        { return f.id }
func (f fakeInstance) Spec() hostrt.Spec { return hostrt.Spec{ID: f.id} }
func (f fakeInstance) Status() hostrt.Status {
	return hostrt.Status{ID: f.id, State: hostrt.StateReady}
}
func (f fakeInstance) Ready(ctx context.Context) error { return nil }
func (f fakeInstance) LogPath() string                 { return "" }
func (f fakeInstance) Logs(int64) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("")), nil
}
func (f fakeInstance) Stop(ctx context.Context) error  { return nil }
func (f fakeInstance) SetOnChange(func(hostrt.Status)) {}

// TestMeterKeepsRefusedSegmentsAndWritesThemLater: while the database
// refuses writes, neither a running instance's time nor a stopped one's
// last stretch is lost; once it accepts them, each stretch is written
// exactly once, without a gap.
func TestMeterKeepsRefusedSegmentsAndWritesThemLater(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := newMeter(&Store{DB: db}, InstanceTypes{"ml.g6.xlarge": {Type: "ml.g6.xlarge", USDPerHour: 0.8}}, time.Hour, nil)
	v := &variant{spec: Variant{Name: "primary", InstanceType: "ml.g6.xlarge"}}
	running := &instance{Instance: fakeInstance{"run"}, v: v, endpoint: "ep"}
	stopped := &instance{Instance: fakeInstance{"stop"}, v: v, endpoint: "ep"}
	t0 := time.Now().Add(-time.Hour)
	for _, in := range []*instance{running, stopped} {
		in.clock.from = t0
		m.track(in)
	}

	refuse := func(on bool) {
		t.Helper()
		q := `DROP TRIGGER refuse_usage`
		if on {
			q = `CREATE TRIGGER refuse_usage BEFORE INSERT ON hosting_usage BEGIN SELECT RAISE(ABORT, 'disk full'); END`
		}
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	refuse(true)
	m.tick()           // refused: both stretches stay unmetered
	m.stopped(stopped) // refused: the last stretch waits in the backlog
	stopEnd := time.Now()
	m.tick() // refused again
	if rows := usage(t, m.store); len(rows) != 0 {
		t.Fatalf("rows written while the database refused them: %+v", rows)
	}
	refuse(false)
	m.tick()
	m.tick() // nothing new to write twice

	// Per instance, the segments cover [t0, end] once: contiguous, no
	// overlap, no gap.
	span := map[string][2]time.Time{}
	for _, r := range usage(t, m.store) {
		sp, seen := span[r.InstanceID]
		switch {
		case !seen && !r.Start.Equal(t0.Truncate(time.Millisecond)):
			t.Fatalf("%s starts at %v, want %v (time lost while writes were refused)", r.InstanceID, r.Start, t0)
		case seen && !r.Start.Equal(sp[1]):
			t.Fatalf("%s: a segment starts at %v, after the previous one ended at %v (gap or overlap)", r.InstanceID, r.Start, sp[1])
		case !seen:
			sp[0] = r.Start
		}
		sp[1] = r.End
		span[r.InstanceID] = sp
	}
	if len(span) != 2 {
		t.Fatalf("metered instances: %v", span)
	}
	if end := span["stop"][1]; end.After(stopEnd) {
		t.Fatalf("the stopped instance was metered past its stop: %v > %v", end, stopEnd)
	}
	if span["run"][1].Before(stopEnd.Truncate(time.Millisecond)) {
		t.Fatalf("the running instance's time was not metered up to the last tick: %v", span["run"])
	}
}

func usage(t *testing.T, s *Store) []Segment {
	t.Helper()
	rows, err := s.DB.Query(`SELECT instance_id, start_ts, end_ts FROM hosting_usage ORDER BY instance_id, start_ts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []Segment
	for rows.Next() {
		var g Segment
		var from, to int64
		if err := rows.Scan(&g.InstanceID, &from, &to); err != nil {
			t.Fatal(err)
		}
		g.Start, g.End = time.UnixMilli(from), time.UnixMilli(to)
		out = append(out, g)
	}
	return out
}

// An instance stopped while a tick's write is held up by the database
// meters only what follows the tick's stretch: no instant twice.
func TestMeterStopDuringATickMetersNothingTwice(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := newMeter(&Store{DB: db}, InstanceTypes{"ml.g6.xlarge": {Type: "ml.g6.xlarge", USDPerHour: 0.8}}, time.Hour, nil)
	v := &variant{spec: Variant{Name: "primary", InstanceType: "ml.g6.xlarge"}}
	in := &instance{Instance: fakeInstance{"i"}, v: v, endpoint: "ep"}
	in.clock.from = time.Now().Add(-time.Minute)
	m.track(in)

	// Another connection holds the write lock, so the tick's write waits.
	other, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	ticked := make(chan struct{})
	go func() { m.tick(); close(ticked) }()
	// The tick takes its stretch at once and then waits on the lock.
	time.Sleep(100 * time.Millisecond)
	stopped := make(chan struct{})
	go func() { m.stopped(in); close(stopped) }()
	time.Sleep(100 * time.Millisecond)
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	<-ticked
	<-stopped
	m.flush()

	rows := usage(t, m.store)
	if len(rows) != 2 {
		t.Fatalf("segments %+v, want the tick's and the stop's", rows)
	}
	if rows[1].Start.Before(rows[0].End) {
		t.Fatalf("segments overlap: %v-%v and %v-%v", rows[0].Start, rows[0].End, rows[1].Start, rows[1].End)
	}
}
