package autoscale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// recovered holds the activities an earlier lease holder left in
	// progress, by endpoint/variant, until their tracks take them over;
	// nil until read.
	recovered map[string]*Activity

	cancel context.CancelFunc
	done   chan struct{}
}

// track is what the Scaler remembers of one variant.
type track struct {
	samples []sample
	// seen is the desired count last seen; a change made by another
	// writer (the API, a cold start) counts as a scaling activity.
	seen            int
	lastOut, lastIn time.Time
	lastBusy        time.Time
	// open is the variant's activity in progress, if any.
	open *Activity
	// asked is the variant's last ask until the desired count it reads
	// shows its outcome (see step).
	asked                     *ask
	metric, perInst           float64 // the last evaluation, for Prometheus
	target                    float64
	metricName                string
	decisionsOut, decisionsIn int64
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

// Step samples every variant once and acts on what the policies, their
// scheduled actions and the serverless idle rule call for. Only the lease
// holder acts.
func (s *Scaler) Step(ctx context.Context, now time.Time) {
	if !s.eps.Holder() {
		return
	}
	loads := s.eps.Load()
	policies, err := s.store.List(ctx, "")
	if err != nil {
		s.warn("autoscale: policies not read", err)
		return
	}
	s.recover(ctx)
	history := s.history(ctx, loads)
	byKey := map[string]*Policy{}
	for _, p := range policies {
		if s.runScheduled(ctx, p, now) {
			byKey[p.Endpoint+"/"+p.Variant] = p
		}
	}
	s.mu.Lock()
	backlog := s.sources[BacklogPerInstance]
	s.last = loads
	live := map[string]bool{}
	var acts []action
	var ended, seen, failed []*Activity
	var took []*ask
	for _, l := range loads {
		key := l.Endpoint + "/" + l.Variant
		live[key] = true
		t := s.tracks[key]
		if t == nil {
			t = &track{seen: l.Desired, lastBusy: now, open: s.recovered[key]}
			t.lastOut, t.lastIn = history[key].lastOut, history[key].lastIn
			delete(s.recovered, key)
			s.tracks[key] = t
		}
		sm := sample{at: now, concurrent: float64(l.InFlight + l.Held), invocations: l.Invocations, tokens: l.OutputTokens}
		if backlog != nil {
			sm.backlog, sm.hasBacklog = backlog(l.Endpoint, l.Variant)
		}
		t.add(sm, s.opts.Window)
		if p := t.asked; p != nil {
			switch {
			case l.Desired == p.a.to:
				t.asked = nil
				if p.unclear {
					// The call that erred stored the count after all: it
					// is this autoscaler's change, not another writer's.
					t.mark(p.a)
					took = append(took, p)
				}
			case l.Desired == p.a.from && now.Sub(p.a.now) < askLag:
				// The count asked for is stored but not yet applied
				// where Load reads it (or, after a timeout, perhaps
				// never stored): no outcome yet, and no new decision.
				continue
			default:
				t.asked = nil
				if p.unclear {
					failed = append(failed, p.act)
				}
			}
		}
		if e := t.settle(l, now); e != nil {
			ended = append(ended, e)
		}
		if l.Desired != t.seen {
			// Another writer scaled it: that is an activity too.
			if l.Desired > t.seen {
				t.lastOut = now
			} else {
				t.lastIn = now
			}
			t.open = newActivity(l.Endpoint, l.Variant, t.seen, l.Desired,
				"the desired instance count was changed outside the autoscaler (the REST API, the CLI or a cold start)", now)
			seen = append(seen, t.open)
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
	for _, p := range took {
		s.took(ctx, p.a, p.act)
	}
	for _, a := range failed {
		if err := s.store.AddActivity(ctx, a); err != nil {
			s.warn("autoscale: activity not recorded", err)
		}
	}
	for _, a := range ended {
		if err := s.store.EndActivity(ctx, a.ID, a.StatusCode, a.StatusMessage, *a.EndTime); err != nil {
			s.warn("autoscale: activity not ended", err)
		}
	}
	for _, a := range seen {
		if err := s.store.AddActivity(ctx, a); err != nil {
			s.warn("autoscale: activity not recorded", err)
		}
	}
	for _, a := range acts {
		s.act(ctx, a)
	}
}

// recover reads, once, the activities an earlier lease holder left in
// progress.
func (s *Scaler) recover(ctx context.Context) {
	s.mu.Lock()
	done := s.recovered != nil
	s.mu.Unlock()
	if done {
		return
	}
	open, err := s.store.open(ctx)
	if err != nil {
		s.warn("autoscale: activities in progress not read", err)
		return
	}
	m := map[string]*Activity{}
	for i := range open {
		a := &open[i]
		key := a.Endpoint + "/" + a.Variant
		if prev := m[key]; prev != nil {
			// Only the latest can still complete.
			if err := s.store.EndActivity(ctx, prev.ID, Overridden, fmt.Sprintf("a later activity set the count to %d", a.To), a.StartTime); err != nil {
				s.warn("autoscale: activity not ended", err)
			}
		}
		m[key] = a
	}
	s.mu.Lock()
	s.recovered = m
	s.mu.Unlock()
}

// settle ends the variant's open activity once it has its outcome: the
// variant runs that many ready instances (Successful), or its count was
// changed again first (Overridden). It returns the ended activity.
func (t *track) settle(l hosting.VariantLoad, now time.Time) *Activity {
	a := t.open
	if a == nil {
		return nil
	}
	end := now.UTC().Truncate(time.Millisecond)
	switch {
	case l.Desired != a.To:
		a.StatusCode, a.StatusMessage = Overridden, fmt.Sprintf("the desired count became %d before %d instances were ready", l.Desired, a.To)
	case l.Settled && l.Ready == a.To && l.Instances == a.To:
		a.StatusCode, a.StatusMessage = Successful, fmt.Sprintf("%d instance(s) ready", a.To)
	default:
		return nil
	}
	a.EndTime, t.open = &end, nil
	return a
}

// runScheduled runs p's scheduled actions that are due, storing the new
// bounds and telling the endpoint's history. It reports whether p (as
// changed) is the stored policy: false when another writer stored one
// meanwhile, which the next step reads.
func (s *Scaler) runScheduled(ctx context.Context, p *Policy, now time.Time) bool {
	prev := p.UpdatedAt
	fired := p.runScheduled(now)
	if len(fired) == 0 {
		return true
	}
	ok, err := s.store.replace(ctx, p, prev, now)
	if err != nil || !ok {
		if err != nil {
			s.warn("autoscale: scheduled action not stored", err)
		}
		return false
	}
	for _, f := range fired {
		s.eps.Event(p.Endpoint, "autoscale: variant "+p.Variant+": "+f)
	}
	return true
}

func (s *Scaler) warn(msg string, err error) {
	if s.opts.Log != nil {
		s.opts.Log.Warn(msg, "err", err)
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

// act asks for a decision's count, records it as a scaling activity and
// an endpoint event.
func (s *Scaler) act(ctx context.Context, a action) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	act := newActivity(a.endpoint, a.variant, a.from, a.to, a.message, a.now)
	if err := s.eps.SetInstanceCount(cctx, a.endpoint, a.variant, a.to); err != nil {
		if s.opts.Log != nil {
			s.opts.Log.Info("autoscale: count not asked; will try again", "endpoint", a.endpoint, "variant", a.variant, "err", err)
		}
		end := time.Now().UTC().Truncate(time.Millisecond)
		act.StatusCode, act.StatusMessage, act.EndTime = Failed, err.Error(), &end
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			// It may have been stored all the same: the count says.
			s.mu.Lock()
			a.t.asked = &ask{a: a, act: act, unclear: true}
			s.mu.Unlock()
			return
		}
		if err := s.store.AddActivity(ctx, act); err != nil {
			s.warn("autoscale: activity not recorded", err)
		}
		return
	}
	s.mu.Lock()
	a.t.mark(a)
	a.t.asked = &ask{a: a}
	s.mu.Unlock()
	s.took(ctx, a, act)
}

// askLag bounds how long an ask's count may take to show in what Load
// reads: until then the variant's old count is taken for lag, not for
// another writer's change.
const askLag = 30 * time.Second

// ask is a count asked for, until Load shows it. unclear marks one whose
// call reported a timeout, with the activity that records it as failed
// unless the count shows it was stored.
type ask struct {
	a       action
	act     *Activity
	unclear bool
}

// mark starts the cooldown of a decision whose count was stored; s.mu is
// held.
func (t *track) mark(a action) {
	t.seen = a.to
	if a.to > a.from {
		t.lastOut = a.now
		t.decisionsOut++
	} else {
		t.lastIn = a.now
		t.decisionsIn++
	}
}

// took records a decision whose count was stored (its track marked):
// its activity, which overrides the variant's open one, and its event.
func (s *Scaler) took(ctx context.Context, a action, act *Activity) {
	act.StatusCode, act.StatusMessage, act.EndTime = InProgress, "", nil
	s.mu.Lock()
	prev := a.t.open
	a.t.open = act
	s.mu.Unlock()
	if prev != nil {
		if err := s.store.EndActivity(ctx, prev.ID, Overridden, fmt.Sprintf("a later activity set the count to %d", a.to), a.now); err != nil {
			s.warn("autoscale: activity not ended", err)
		}
	}
	if err := s.store.AddActivity(ctx, act); err != nil {
		s.warn("autoscale: activity not recorded", err)
	}
	s.eps.Event(a.endpoint, fmt.Sprintf("autoscale: variant %s: %s: instances %d -> %d", a.variant, a.message, a.from, a.to))
}

// cooldownHistory is when a variant last scaled out and in, as its stored
// activities say.
type cooldownHistory struct{ lastOut, lastIn time.Time }

// historyDepth is how many of a variant's latest activities are read to
// find its last scale-out and scale-in.
const historyDepth = 20

// history reads, for each variant the Scaler has no track of yet (after a
// restart, or one new to it), when it last scaled out and in, so that a
// cooldown begun before a restart is waited out after it. It runs outside
// the Scaler's lock; a variant whose activities cannot be read starts with
// no cooldown, as before.
func (s *Scaler) history(ctx context.Context, loads []hosting.VariantLoad) map[string]cooldownHistory {
	s.mu.Lock()
	var missing []hosting.VariantLoad
	for _, l := range loads {
		if s.tracks[l.Endpoint+"/"+l.Variant] == nil {
			missing = append(missing, l)
		}
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	out := make(map[string]cooldownHistory, len(missing))
	for _, l := range missing {
		acts, err := s.store.Activities(ctx, l.Endpoint, l.Variant, historyDepth)
		if err != nil {
			s.warn("autoscale: activities not read; cooldowns start afresh", err)
			continue
		}
		var h cooldownHistory
		for _, a := range acts {
			switch {
			case a.To > a.From && a.StartTime.After(h.lastOut):
				h.lastOut = a.StartTime
			case a.To < a.From && a.StartTime.After(h.lastIn):
				h.lastIn = a.StartTime
			}
		}
		out[l.Endpoint+"/"+l.Variant] = h
	}
	return out
}
