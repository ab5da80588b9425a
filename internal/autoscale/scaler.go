package autoscale

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
)

// Endpoints is what a Scaler needs of hosting (a *hosting.Controller).
type Endpoints interface {
	// Holder reports whether this replica holds the hosting lease.
	Holder() bool
	// Load samples every live production variant.
	Load() []hosting.VariantLoad
	// SetInstanceCount asks for a variant's instance count in its spec.
	SetInstanceCount(ctx context.Context, endpoint, variant string, n int) error
	// Event appends a line to an endpoint's history.
	Event(endpoint, msg string)
}

// Source reports a metric's total for a variant now — for
// BacklogPerInstance, the requests queued for it — and false when it
// knows nothing of the variant. The asynchronous-endpoint queue registers
// one with Register(BacklogPerInstance, src).
type Source func(endpoint, variant string) (total float64, ok bool)

// Options tunes a Scaler.
type Options struct {
	// Interval is how often variants are sampled and policies evaluated
	// (default 1 s).
	Interval time.Duration
	// Window is the stretch of samples a metric is averaged over
	// (default 60 s, SageMaker's one-minute metrics).
	Window time.Duration
	// ServerlessIdle is how long a serverless variant stays warm with no
	// call before it scales to zero, or to its provisioned concurrency
	// (default 5 minutes).
	ServerlessIdle time.Duration
	Log            *slog.Logger
}

// Scaler evaluates scaling policies on the lease holder and asks for the
// instance counts they call for.
type Scaler struct {
	eps   Endpoints
	store *Store
	opts  Options

	mu      sync.Mutex
	sources map[string]Source
	tracks  map[string]*track // by endpoint/variant
	last    []hosting.VariantLoad

	cancel context.CancelFunc
	done   chan struct{}
}

// track is what the Scaler remembers of one variant.
type track struct {
	samples []sample
	// seen is the desired count last seen; a change made by another
	// writer (the API, a cold start) counts as a scaling activity.
	seen                      int
	lastOut, lastIn           time.Time
	lastBusy                  time.Time
	metric, perInst           float64 // the last evaluation, for Prometheus
	target                    float64
	metricName                string
	decisionsOut, decisionsIn int64
}

// sample is one look at a variant.
type sample struct {
	at                  time.Time
	concurrent          float64
	invocations, tokens int64
	backlog             float64
	hasBacklog          bool
}

// New returns a Scaler over eps with policies from store.
func New(eps Endpoints, store *Store, opts Options) *Scaler {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Window <= 0 {
		opts.Window = time.Minute
	}
	if opts.ServerlessIdle <= 0 {
		opts.ServerlessIdle = 5 * time.Minute
	}
	return &Scaler{eps: eps, store: store, opts: opts, sources: map[string]Source{}, tracks: map[string]*track{}}
}

// Register makes src the source of metric (BacklogPerInstance) for every
// variant; a later Register replaces it.
func (s *Scaler) Register(metric string, src Source) {
	s.mu.Lock()
	s.sources[metric] = src
	s.mu.Unlock()
}

// Start runs the Scaler in the background until Close.
func (s *Scaler) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.opts.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				s.Step(ctx, now)
			}
		}
	}()
}

// Close stops the Scaler and waits for a step in progress.
func (s *Scaler) Close() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
}

// Step samples every variant once and acts on what the policies and the
// serverless idle rule call for. Only the lease holder acts.
func (s *Scaler) Step(ctx context.Context, now time.Time) {
	if !s.eps.Holder() {
		return
	}
	loads := s.eps.Load()
	policies, err := s.store.List(ctx, "")
	if err != nil {
		if s.opts.Log != nil {
			s.opts.Log.Warn("autoscale: policies not read", "err", err)
		}
		return
	}
	byKey := map[string]*Policy{}
	for _, p := range policies {
		byKey[p.Endpoint+"/"+p.Variant] = p
	}
	s.mu.Lock()
	backlog := s.sources[BacklogPerInstance]
	s.last = loads
	live := map[string]bool{}
	var acts []action
	for _, l := range loads {
		key := l.Endpoint + "/" + l.Variant
		live[key] = true
		t := s.tracks[key]
		if t == nil {
			t = &track{seen: l.Desired, lastBusy: now}
			s.tracks[key] = t
		}
		sm := sample{at: now, concurrent: float64(l.InFlight + l.Held), invocations: l.Invocations, tokens: l.OutputTokens}
		if backlog != nil {
			sm.backlog, sm.hasBacklog = backlog(l.Endpoint, l.Variant)
		}
		t.add(sm, s.opts.Window)
		if l.Desired != t.seen {
			// Another writer scaled it: that is an activity too.
			if l.Desired > t.seen {
				t.lastOut = now
			} else {
				t.lastIn = now
			}
			t.seen = l.Desired
		}
		if a, ok := s.decide(t, l, byKey[key], now); ok {
			acts = append(acts, a)
		}
	}
	for k := range s.tracks {
		if !live[k] {
			delete(s.tracks, k)
		}
	}
	s.mu.Unlock()
	for _, a := range acts {
		s.act(ctx, a)
	}
}

// action is one decision to carry out.
type action struct {
	endpoint, variant string
	from, to          int
	message           string
	t                 *track
	now               time.Time
}

// add appends a sample and drops those older than the window (keeping
// at least two, for rates).
func (t *track) add(sm sample, window time.Duration) {
	t.samples = append(t.samples, sm)
	cut := 0
	for cut < len(t.samples)-2 && sm.at.Sub(t.samples[cut].at) > window {
		cut++
	}
	t.samples = t.samples[cut:]
}

// total is a metric's value for the whole variant over the window, and
// whether there is enough to say.
func (t *track) total(metric string) (float64, bool) {
	n := len(t.samples)
	first, last := t.samples[0], t.samples[n-1]
	secs := last.at.Sub(first.at).Seconds()
	switch metric {
	case ConcurrentRequestsPerInstance:
		var sum float64
		for _, sm := range t.samples {
			sum += sm.concurrent
		}
		return sum / float64(n), true
	case InvocationsPerInstance:
		if secs <= 0 {
			return 0, false
		}
		return float64(last.invocations-first.invocations) / secs * 60, true
	case TokensPerSecondPerInstance:
		if secs <= 0 {
			return 0, false
		}
		return float64(last.tokens-first.tokens) / secs, true
	case BacklogPerInstance:
		var sum float64
		k := 0
		for _, sm := range t.samples {
			if sm.hasBacklog {
				sum += sm.backlog
				k++
			}
		}
		if k == 0 {
			return 0, false
		}
		return sum / float64(k), true
	}
	return 0, false
}

// decide says what a variant's count should become, if anything.
func (s *Scaler) decide(t *track, l hosting.VariantLoad, p *Policy, now time.Time) (action, bool) {
	a := action{endpoint: l.Endpoint, variant: l.Variant, from: l.Desired, t: t, now: now}
	if l.Serverless != nil {
		return s.decideServerless(t, l, a, now)
	}
	if p == nil || !l.Settled {
		return a, false
	}
	switch {
	case l.Desired < p.MinCapacity:
		a.to, a.message = p.MinCapacity, fmt.Sprintf("below min_capacity %d", p.MinCapacity)
		return a, true
	case l.Desired > p.MaxCapacity:
		a.to, a.message = p.MaxCapacity, fmt.Sprintf("above max_capacity %d", p.MaxCapacity)
		return a, true
	}
	tt := p.TargetTracking
	if tt == nil {
		return a, false
	}
	total, ok := t.total(tt.Metric)
	if !ok {
		return a, false
	}
	instances := l.Ready
	if instances == 0 {
		instances = l.Desired
	}
	per := total
	if instances > 0 {
		per = total / float64(instances)
	}
	t.metricName, t.metric, t.perInst, t.target = tt.Metric, total, per, tt.TargetValue
	want := int(math.Ceil(total/tt.TargetValue - 1e-9))
	want = max(p.MinCapacity, min(p.MaxCapacity, want))
	why := fmt.Sprintf("%s %.2f per instance (%.2f over %d instance(s), %s window), target %g",
		tt.Metric, per, total, instances, s.opts.Window, tt.TargetValue)
	switch {
	case want > l.Desired:
		if !t.lastOut.IsZero() && now.Sub(t.lastOut) < cooldown(tt.ScaleOutCooldown) {
			return a, false
		}
		a.to, a.message = want, why+": scale-out"
		return a, true
	case want < l.Desired:
		if tt.DisableScaleIn {
			return a, false
		}
		last := t.lastIn
		if t.lastOut.After(last) {
			last = t.lastOut
		}
		if !last.IsZero() && now.Sub(last) < cooldown(tt.ScaleInCooldown) {
			return a, false
		}
		a.to, a.message = want, why+": scale-in"
		return a, true
	}
	return a, false
}

// decideServerless takes a serverless variant idle for ServerlessIdle to
// zero instances, or one with provisioned concurrency. Calls that find it
// at zero are held while hosting starts one.
func (s *Scaler) decideServerless(t *track, l hosting.VariantLoad, a action, now time.Time) (action, bool) {
	n := len(t.samples)
	if l.InFlight+l.Held > 0 || (n >= 2 && t.samples[n-1].invocations != t.samples[n-2].invocations) {
		t.lastBusy = now
	}
	floor := 0
	if l.Serverless.ProvisionedConcurrency > 0 {
		floor = 1
	}
	if !l.Settled || l.Desired <= floor || now.Sub(t.lastBusy) < s.opts.ServerlessIdle {
		return a, false
	}
	a.to, a.message = floor, fmt.Sprintf("serverless: no call for %s (idle period %s): scale-in", now.Sub(t.lastBusy).Round(time.Second), s.opts.ServerlessIdle)
	return a, true
}

// act asks for a decision's count and records it as an endpoint event.
func (s *Scaler) act(ctx context.Context, a action) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.eps.SetInstanceCount(cctx, a.endpoint, a.variant, a.to); err != nil {
		if s.opts.Log != nil {
			s.opts.Log.Info("autoscale: count not asked; will try again", "endpoint", a.endpoint, "variant", a.variant, "err", err)
		}
		return
	}
	s.mu.Lock()
	a.t.seen = a.to
	if a.to > a.from {
		a.t.lastOut = a.now
		a.t.decisionsOut++
	} else {
		a.t.lastIn = a.now
		a.t.decisionsIn++
	}
	s.mu.Unlock()
	s.eps.Event(a.endpoint, fmt.Sprintf("autoscale: variant %s: %s: instances %d -> %d", a.variant, a.message, a.from, a.to))
}
