package autoscale

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/store"
)

// fakeEndpoints is hosting as the Scaler sees it: one variant whose load
// the test sets, and the counts and events the Scaler asks for.
type fakeEndpoints struct {
	load   hosting.VariantLoad
	asked  []int
	events []string
}

func (f *fakeEndpoints) Holder() bool                { return true }
func (f *fakeEndpoints) Load() []hosting.VariantLoad { return []hosting.VariantLoad{f.load} }
func (f *fakeEndpoints) Event(_, msg string)         { f.events = append(f.events, msg) }
func (f *fakeEndpoints) SetInstanceCount(_ context.Context, _, _ string, n int) error {
	f.asked = append(f.asked, n)
	f.load.Desired = n
	return nil
}

func newScaler(t *testing.T, p *Policy) (*Scaler, *fakeEndpoints) {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "j.db"))
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
