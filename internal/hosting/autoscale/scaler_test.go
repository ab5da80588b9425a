package autoscale

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/platform/store/storetest"
)

// fakeEndpoints is hosting as the Scaler sees it: one variant whose load
// the test sets, and the counts and events the Scaler asks for.
type fakeEndpoints struct {
	load   hosting.VariantLoad
	asked  []int
	events []string
	// fail, when set, is the error every ask reports; stored says
	// whether the count is stored all the same (a timeout after the
	// write).
	fail   error
	stored bool
	// lag keeps an asked count out of load until apply, as the
	// reconciler applies a stored spec after the ask returns.
	lag     bool
	pending int
}

// apply shows the last count asked for in load.
func (f *fakeEndpoints) apply() { f.load.Desired = f.pending }

func (f *fakeEndpoints) Holder() bool                { return true }
func (f *fakeEndpoints) Load() []hosting.VariantLoad { return []hosting.VariantLoad{f.load} }
func (f *fakeEndpoints) Event(_, msg string)         { f.events = append(f.events, msg) }
func (f *fakeEndpoints) SetInstanceCount(_ context.Context, _, _ string, n int) error {
	f.asked = append(f.asked, n)
	switch {
	case f.fail != nil && !f.stored:
	case f.lag:
		f.pending = n
	default:
		f.load.Desired = n
	}
	return f.fail
}

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.Stop() // the PostgreSQL server, if a test started one
	os.Exit(code)
}

func newScaler(t *testing.T, p *Policy) (*Scaler, *fakeEndpoints) {
	t.Helper()
	return newScalerOn(t, storetest.SQLite(t), p)
}

// newScalerOn is newScaler over the database named by dsn.
func newScalerOn(t *testing.T, dsn string, p *Policy) (*Scaler, *fakeEndpoints) {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := &Store{DB: db}
	if p != nil {
		if err := st.Put(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	f := &fakeEndpoints{load: hosting.VariantLoad{Endpoint: "ep", Variant: "v", Desired: 1, Ready: 1, Instances: 1, Settled: true}}
	return New(f, st, Options{Window: 10 * time.Second, ServerlessIdle: time.Minute}), f
}

func secs(s float64) *float64 { return &s }

// Target tracking scales out to ceil(total/target) within max, waits out
// its cooldowns, and does not scale in when told not to.
func TestTargetTrackingDecisions(t *testing.T) {
	s, f := newScaler(t, &Policy{Endpoint: "ep", Variant: "v", MinCapacity: 1, MaxCapacity: 4,
		TargetTracking: &TargetTracking{Metric: ConcurrentRequestsPerInstance, TargetValue: 2, ScaleOutCooldown: secs(30), ScaleInCooldown: secs(60)}})
	ctx, now := context.Background(), time.Unix(1000, 0)
	step := func(d time.Duration) { now = now.Add(d); s.Step(ctx, now) }

	f.load.InFlight = 5
	step(time.Second)
	if len(f.asked) != 1 || f.asked[0] != 3 {
		t.Fatalf("5 in flight at target 2: asked %v, want [3]", f.asked)
	}
	if !strings.Contains(f.events[0], "ConcurrentRequestsPerInstance") || !strings.Contains(f.events[0], "instances 1 -> 3") {
		t.Fatalf("event: %q", f.events[0])
	}
	// More load, inside the scale-out cooldown: nothing; after it: max.
	f.load.InFlight, f.load.Ready = 20, 3
	step(10 * time.Second)
	if len(f.asked) != 1 {
		t.Fatalf("scaled out inside the cooldown: %v", f.asked)
	}
	step(25 * time.Second)
	if len(f.asked) != 2 || f.asked[1] != 4 {
		t.Fatalf("after the cooldown: asked %v, want 4 (max_capacity)", f.asked)
	}
	// Idle: scale-in waits 60 s after the last activity, then goes to min.
	f.load.InFlight, f.load.Ready = 0, 4
	step(30 * time.Second)
	if len(f.asked) != 2 {
		t.Fatalf("scaled in inside the cooldown: %v", f.asked)
	}
	step(31 * time.Second)
	if len(f.asked) != 3 || f.asked[2] != 1 {
		t.Fatalf("idle after the cooldown: asked %v, want 1 (min_capacity)", f.asked)
	}
}

func TestDisableScaleInAndBacklogSource(t *testing.T) {
	s, f := newScaler(t, &Policy{Endpoint: "ep", Variant: "v", MinCapacity: 0, MaxCapacity: 8,
		TargetTracking: &TargetTracking{Metric: BacklogPerInstance, TargetValue: 10, ScaleOutCooldown: secs(0), ScaleInCooldown: secs(0), DisableScaleIn: true}})
	backlog := 35.0
	s.Register(BacklogPerInstance, func(ep, v string) (float64, bool) { return backlog, ep == "ep" && v == "v" })
	ctx, now := context.Background(), time.Unix(1000, 0)
	f.load.Desired, f.load.Ready = 0, 0
	s.Step(ctx, now)
	if len(f.asked) != 1 || f.asked[0] != 4 {
		t.Fatalf("backlog 35 at target 10 from zero: asked %v, want [4]", f.asked)
	}
	backlog = 0
	for i := range 30 {
		s.Step(ctx, now.Add(time.Duration(i+1)*time.Second))
	}
	if len(f.asked) != 1 {
		t.Fatalf("disable_scale_in, yet asked %v", f.asked)
	}
}

func TestIdleServerlessScalesToZero(t *testing.T) {
	s, f := newScaler(t, nil)
	f.load.Serverless = &hosting.ServerlessConfig{MemorySizeMB: 1024, MaxConcurrency: 5}
	ctx, now := context.Background(), time.Unix(1000, 0)
	f.load.InFlight = 1
	s.Step(ctx, now)
	f.load.InFlight = 0
	s.Step(ctx, now.Add(59*time.Second))
	if len(f.asked) != 0 {
		t.Fatalf("scaled in before the idle period: %v", f.asked)
	}
	s.Step(ctx, now.Add(61*time.Second))
	if len(f.asked) != 1 || f.asked[0] != 0 {
		t.Fatalf("idle serverless: asked %v, want [0]", f.asked)
	}
}

func TestPolicyValidation(t *testing.T) {
	p := Policy{MinCapacity: 3, MaxCapacity: 2, TargetTracking: &TargetTracking{Metric: "CPU", TargetValue: -1, ScaleInCooldown: secs(-5)}}
	err := p.Validate()
	for _, want := range []string{"max_capacity: 2 must not be below min_capacity (3)", `metric: "CPU"`, "target_value: -1", "scale_in_cooldown: -5"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%v: want %q", err, want)
		}
	}
}

// A scheduled action runs once when due: it stores the new bounds, the
// count follows them at once, and the history says why.
func TestScheduledActionRuns(t *testing.T) {
	for _, be := range storetest.Backends {
		t.Run(be.Name, func(t *testing.T) { testScheduledActionRuns(t, be.DSN(t)) })
	}
}

func testScheduledActionRuns(t *testing.T, dsn string) {
	s, f := newScalerOn(t, dsn, nil)
	ctx := context.Background()
	// The action falls due two or three seconds after the policy is
	// stored (at() counts whole seconds).
	start := time.Now()
	at := start.Add(3 * time.Second).UTC().Format("2006-01-02T15:04:05")
	if err := s.store.Put(ctx, &Policy{Endpoint: "ep", Variant: "v", MinCapacity: 1, MaxCapacity: 1,
		ScheduledActions: []ScheduledAction{{Name: "peak", Schedule: "at(" + at + ")", MinCapacity: new(3), MaxCapacity: new(5)}}}); err != nil {
		t.Fatal(err)
	}
	s.Step(ctx, start)
	if len(f.asked) != 0 {
		t.Fatalf("acted before the action was due: %v", f.asked)
	}
	s.Step(ctx, start.Add(4*time.Second))
	if len(f.asked) != 1 || f.asked[0] != 3 {
		t.Fatalf("after the action: asked %v, want [3] (the new min_capacity)", f.asked)
	}
	if !strings.Contains(f.events[0], "scheduled action peak (at(") || !strings.Contains(f.events[0], "min_capacity 1 -> 3, max_capacity 1 -> 5") ||
		!strings.Contains(f.events[1], "below min_capacity 3: instances 1 -> 3") {
		t.Fatalf("events: %q", f.events)
	}
	p, err := s.store.Get(ctx, "ep", "v")
	if err != nil || p.MinCapacity != 3 || p.MaxCapacity != 5 {
		t.Fatalf("stored policy %+v %v", p, err)
	}
	f.load.Ready, f.load.Instances = 3, 3
	s.Step(ctx, start.Add(5*time.Second))
	if len(f.events) != 2 {
		t.Fatalf("the action ran twice: %q", f.events)
	}
}

// Scaling activities: what the autoscaler asked for, and what other
// writers did, each InProgress until the variant runs that many ready
// instances, or Overridden by a later change; a new Scaler (a restart, or
// another replica taking the lease) follows those left in progress.
// A cooldown begun before a restart is waited out after it: a new Scaler
// over the same store (the restarted process, or the replica that took
// the lease) reads when the variant last scaled.
func TestCooldownSurvivesARestart(t *testing.T) {
	s, f := newScaler(t, &Policy{Endpoint: "ep", Variant: "v", MinCapacity: 1, MaxCapacity: 4,
		TargetTracking: &TargetTracking{Metric: ConcurrentRequestsPerInstance, TargetValue: 2, ScaleOutCooldown: secs(30), ScaleInCooldown: secs(60)}})
	ctx, now := context.Background(), time.Unix(1000, 0)
	f.load.InFlight = 6
	s.Step(ctx, now)
	if len(f.asked) != 1 || f.asked[0] != 3 {
		t.Fatalf("asked %v, want [3]", f.asked)
	}
	f.load.Ready, f.load.Instances, f.load.InFlight = 3, 3, 0

	s2 := New(f, s.store, s.opts)
	for _, d := range []time.Duration{5 * time.Second, 30 * time.Second, 59 * time.Second} {
		if s2.Step(ctx, now.Add(d)); len(f.asked) != 1 {
			t.Fatalf("%v after a scale-out with a 60 s scale-in cooldown, the restarted scaler asked %v", d, f.asked)
		}
	}
	s2.Step(ctx, now.Add(61*time.Second))
	if len(f.asked) != 2 || f.asked[1] != 1 {
		t.Fatalf("after the cooldown: asked %v, want [3 1]", f.asked)
	}
}

// An ask that timed out but was stored is the autoscaler's own change:
// its cooldown holds and it is not recorded as another writer's. One that
// was not stored is recorded as failed once askLag has passed, and asked
// again.
func TestAnAskThatErredIsJudgedByTheCountItLeft(t *testing.T) {
	for _, stored := range []bool{true, false} {
		t.Run(fmt.Sprintf("stored=%v", stored), func(t *testing.T) {
			s, f := newScaler(t, &Policy{Endpoint: "ep", Variant: "v", MinCapacity: 1, MaxCapacity: 4,
				TargetTracking: &TargetTracking{Metric: ConcurrentRequestsPerInstance, TargetValue: 2, ScaleOutCooldown: secs(30), ScaleInCooldown: secs(60)}})
			ctx, now := context.Background(), time.Unix(1000, 0)
			f.load.InFlight = 6
			f.fail, f.stored = fmt.Errorf("store the count: %w", context.DeadlineExceeded), stored
			s.Step(ctx, now)
			f.fail = nil
			s.Step(ctx, now.Add(time.Second))
			if !stored {
				// A timed-out ask may yet show: it is judged failed
				// only once askLag has passed with the old count.
				if len(f.asked) != 1 {
					t.Fatalf("asked %v within askLag of a timed-out ask", f.asked)
				}
				s.Step(ctx, now.Add(askLag+time.Second))
			}
			as, err := s.store.Activities(ctx, "ep", "", 10)
			if err != nil {
				t.Fatal(err)
			}
			var codes, causes []string
			for _, a := range as {
				codes, causes = append(codes, a.StatusCode), append(causes, a.Cause)
			}
			if stored {
				// One ask; the next step saw its count and stayed in the
				// scale-out cooldown.
				if len(f.asked) != 1 || len(as) != 1 || as[0].StatusCode != InProgress || strings.Contains(as[0].Cause, "outside") {
					t.Fatalf("asked %v; activities %v %q, want one ask recorded as the autoscaler's, in progress", f.asked, codes, causes)
				}
				if !slices.ContainsFunc(f.events, func(e string) bool { return strings.Contains(e, "instances 1 -> 3") }) {
					t.Fatalf("events %q, want the scale-out's", f.events)
				}
				return
			}
			if len(f.asked) != 2 || f.load.Desired != 3 || len(as) != 2 || !slices.Contains(codes, Failed) || !slices.Contains(codes, InProgress) {
				t.Fatalf("asked %v, desired %d; activities %v %q, want a failed ask and a second that took", f.asked, f.load.Desired, codes, causes)
			}
		})
	}
}

// The count an ask stored shows in Load only once the reconciler applies
// it: until then the old count is lag, neither another writer's change
// nor an override of the autoscaler's own activity.
func TestAnAskNotYetAppliedIsNotAnOutsideChange(t *testing.T) {
	s, f := newScaler(t, &Policy{Endpoint: "ep", Variant: "v", MinCapacity: 1, MaxCapacity: 4,
		TargetTracking: &TargetTracking{Metric: ConcurrentRequestsPerInstance, TargetValue: 2, ScaleOutCooldown: secs(0), DisableScaleIn: true}})
	ctx, now := context.Background(), time.Unix(1000, 0)
	f.lag = true
	f.load.InFlight = 6
	s.Step(ctx, now)
	for i := 1; i <= 3; i++ {
		s.Step(ctx, now.Add(time.Duration(i)*time.Second))
	}
	if len(f.asked) != 1 {
		t.Fatalf("asked %v while its first ask was not yet applied, want one ask", f.asked)
	}
	f.apply()
	f.load.Ready, f.load.Instances, f.load.InFlight = 3, 3, 0
	s.Step(ctx, now.Add(5*time.Second))
	as, err := s.store.Activities(ctx, "ep", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].StatusCode != Successful || strings.Contains(as[0].Cause, "outside") {
		t.Fatalf("activities %+v, want the one scale-out, Successful", as)
	}
}

func TestScalingActivities(t *testing.T) {
	for _, be := range storetest.Backends {
		t.Run(be.Name, func(t *testing.T) { testScalingActivities(t, be.DSN(t)) })
	}
}

func testScalingActivities(t *testing.T, dsn string) {
	s, f := newScalerOn(t, dsn, &Policy{Endpoint: "ep", Variant: "v", MinCapacity: 1, MaxCapacity: 4,
		TargetTracking: &TargetTracking{Metric: ConcurrentRequestsPerInstance, TargetValue: 2, ScaleOutCooldown: secs(0), DisableScaleIn: true}})
	ctx, now := context.Background(), time.Unix(1000, 0)
	step := func() { now = now.Add(time.Second); s.Step(ctx, now) }
	list := func() []Activity {
		t.Helper()
		as, err := s.store.Activities(ctx, "ep", "", 10)
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	f.load.InFlight = 6
	step()
	as := list()
	if len(as) != 1 || as[0].StatusCode != InProgress || as[0].From != 1 || as[0].To != 3 || as[0].Description != "Setting desired instance count to 3." ||
		!strings.Contains(as[0].Cause, "ConcurrentRequestsPerInstance 6.00 per instance") || as[0].ResourceID != "endpoint/ep/variant/v" || as[0].EndTime != nil {
		t.Fatalf("scale-out activity: %+v", as)
	}
	f.load.Ready, f.load.Instances = 2, 3
	step()
	if as := list(); as[0].StatusCode != InProgress {
		t.Fatalf("ended before every instance was ready: %+v", as[0])
	}
	f.load.Ready = 3
	step()
	if as := list(); as[0].StatusCode != Successful || as[0].EndTime == nil {
		t.Fatalf("not successful once ready: %+v", as[0])
	}

	// Idle for a window; then another writer asks for 4, and (before they
	// are ready) for 1.
	f.load.InFlight = 0
	now = now.Add(10 * time.Second)
	step()
	step()
	f.load.Desired = 4
	step()
	f.load.Desired = 1
	step()
	as = list()
	if len(as) != 3 || as[1].To != 4 || as[1].StatusCode != Overridden || !strings.Contains(as[1].Cause, "outside the autoscaler") ||
		as[0].To != 1 || as[0].StatusCode != InProgress {
		t.Fatalf("outside writers: %+v", as)
	}
	// A new Scaler over the same store sees it through.
	s2 := New(f, s.store, s.opts)
	f.load.Ready, f.load.Instances = 1, 1
	s2.Step(ctx, now.Add(time.Second))
	if as := list(); as[0].StatusCode != Successful {
		t.Fatalf("left in progress across a restart: %+v", as[0])
	}
	// A change seen and the scale-out that answers it in one evaluation
	// list in that order, the answer first.
	f.load.Desired, f.load.InFlight = 2, 20
	s2.Step(ctx, now.Add(20*time.Second))
	as = list()
	if as[0].From != 2 || as[0].To != 4 || as[0].StatusCode != InProgress || as[1].From != 1 || as[1].To != 2 || as[1].StatusCode != Overridden {
		t.Fatalf("same evaluation: %+v", as[:2])
	}
}
