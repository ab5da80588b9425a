package ratelimit

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Slices admits busy scopes ("global", a big team) from slices of their
// allowance that this replica takes from Redis ahead of need, so that most
// requests do not touch the scope's hash at all.
//
// A slice is a share of a limit's RPM and TPM, charged on Redis as one
// admission would be but stamped in the bucket its life ends in. The
// replica admits requests from it, in memory, until it is used up or its
// life ends, then takes another in the same round trip as the request
// that needed it. Requests admitted from a slice are settled on Redis like
// any other, in the slice's bucket.
//
// Over-admission: none. Every request admitted from a slice is admitted
// before the slice's bucket ends, and the slice counts on Redis until that
// bucket ends plus a window, so it covers each of its requests for a full
// window after it: in every window, what all replicas admit stays within
// the limit, as without slices. The price is capacity: what a slice holds
// and has not admitted yet is unavailable to other replicas, and it counts
// for up to its life longer than its requests would. So, per scope, up to
// one slice per replica (share × the limit each) is held and unused at
// any moment; a slice's unused part is returned when it is closed, with
// the replica's next admission. Near a limit, slices shrink to what is
// left, down to the one request that needs it.
type Slices struct {
	r     *Redis
	share float64
	ahead int64 // buckets ahead a slice is stamped
	clock func() time.Time

	mu   sync.Mutex
	by   map[string]*slice
	back *Batch // unused parts of closed slices, sent with the next admission
	// grabbing holds the scopes a slice is being taken for; meanwhile
	// other requests of the scope are admitted on Redis one by one, so
	// that a burst takes one slice, not one each.
	grabbing map[string]bool

	taken atomic.Uint64
}

// slice is one scope's allowance in hand.
type slice struct {
	limit        Limit
	reqs, tokens int64 // left; not counted where the limit has no RPM or TPM
	bucket       int64 // where it is charged on Redis
	until        time.Time
	closed       bool
}

// NewSlices returns slices of the scopes r keeps: each takes share (0 <
// share ≤ 1) of a limit and is used for life, at most the window.
func (r *Redis) NewSlices(share float64, life time.Duration) *Slices {
	life = min(max(life, r.bucket), r.window)
	return &Slices{r: r, share: share, clock: time.Now,
		ahead: int64((life + r.bucket - 1) / r.bucket), by: make(map[string]*slice), grabbing: make(map[string]bool)}
}

// Taken returns how many slices this replica has taken.
func (s *Slices) Taken() uint64 { return s.taken.Load() }

// fits reports whether the slice has room for one request of tokens.
func (sl *slice) fits(tokens int64) bool {
	return (sl.limit.RPM == 0 || sl.reqs >= 1) && (sl.limit.TPM == 0 || sl.tokens >= tokens)
}

func (sl *slice) take(tokens int64) {
	if sl.limit.RPM > 0 {
		sl.reqs--
	}
	if sl.limit.TPM > 0 {
		sl.tokens -= tokens
	}
}

// closeLocked closes sl and queues what it did not admit to be returned.
func (s *Slices) closeLocked(sl *slice) {
	if sl.closed {
		return
	}
	sl.closed = true
	if sl.reqs > 0 || sl.tokens > 0 {
		if s.back == nil {
			s.back = s.r.NewBatch()
		}
		s.back.add(sl.limit.Scope, sl.bucket, -sl.reqs, -sl.tokens, 0)
	}
}

// Release returns what every slice in hand did not admit, for a replica
// that stops: otherwise it stays charged until it leaves the window, up to
// a window and a slice's life later. Requests admitted from the slices
// stay charged, in the slices' buckets, until they are settled.
func (s *Slices) Release(ctx context.Context) error {
	s.mu.Lock()
	for sc, sl := range s.by {
		s.closeLocked(sl)
		delete(s.by, sc)
	}
	back := s.back
	s.back = nil
	s.mu.Unlock()
	if back == nil {
		return nil
	}
	return back.Send(ctx)
}

// want is what a slice of l takes for a request of tokens: a share of
// the limit, down to the request itself.
func (s *Slices) want(l Limit, tokens int64) want {
	w := want{reqs: 1, tokens: tokens, minReqs: 1, minTokens: tokens, ahead: s.ahead}
	if l.RPM > 0 {
		w.reqs = max(1, int64(math.Ceil(s.share*float64(l.RPM))))
	}
	if l.TPM > 0 {
		w.tokens = max(tokens, int64(math.Ceil(s.share*float64(l.TPM))))
	}
	return w
}

// take is a request's hold on a slice.
type take struct {
	sl     *slice
	tokens int64
}

// Queue adds an admission under limits, checked on Redis, and hot,
// admitted from slices, to pipe; hot limits whose slice is used up or
// gone take a new one in the same pipeline. A scope in both lists is
// checked on Redis. After pipe.Exec, Result decodes the outcome, and
// GiveBack returns whatever the admission took if it is not to stand.
func (s *Slices) Queue(ctx context.Context, pipe redis.Pipeliner, limits, hot []Limit, tokens int64) *SlicedPending {
	p := s.Prepare(limits, hot, tokens)
	s.QueueAll(ctx, pipe, []*SlicedPending{p})
	return p
}

// QueueAll adds admissions made by Prepare to pipe, the Redis parts of
// all of them in one script per slot group (see Redis.QueueAll), with
// what closed slices return.
func (s *Slices) QueueAll(ctx context.Context, pipe redis.Pipeliner, ps []*SlicedPending) {
	if rs := s.QueueReturns(ctx, pipe, ps); len(rs) > 0 {
		s.r.QueueAll(ctx, pipe, rs)
	}
}

// QueueReturns adds to pipe what closed slices return, and returns the
// parts of the admissions to check on Redis, for Redis.Groups or
// Redis.QueueAll: QueueAll in two steps.
func (s *Slices) QueueReturns(ctx context.Context, pipe redis.Pipeliner, ps []*SlicedPending) []*Pending {
	var rs []*Pending
	for _, p := range ps {
		if p.backBatch != nil {
			p.back = p.backBatch.Queue(ctx, pipe)
			p.backBatch = nil
		}
		if p.redis != nil {
			rs = append(rs, p.redis)
		}
	}
	return rs
}

// Prepare readies an admission under limits, checked on Redis, and hot,
// admitted from slices, to be queued with others by QueueAll: it takes
// from the slices in hand and decides which need a new one.
func (s *Slices) Prepare(limits, hot []Limit, tokens int64) *SlicedPending {
	p := &SlicedPending{s: s, tokens: tokens}
	if p.err = checkTokens(tokens); p.err != nil {
		return p
	}
	var ord, hm []Limit
	if ord, p.err = merge(nil, limits); p.err != nil {
		return p
	}
	if hm, p.err = merge(nil, hot); p.err != nil {
		return p
	}
	grabs := map[string]bool{}
	all := ord
	now := s.clock()
	s.mu.Lock()
	for _, l := range hm {
		if onRedis(ord, l.Scope) {
			continue
		}
		sl := s.by[l.Scope]
		if sl != nil && (now.After(sl.until) || sl.limit != l) {
			s.closeLocked(sl)
			delete(s.by, l.Scope)
			sl = nil
		}
		if sl != nil && sl.fits(tokens) {
			sl.take(tokens)
			p.local = append(p.local, take{sl, tokens})
			continue
		}
		if !s.grabbing[l.Scope] {
			s.grabbing[l.Scope] = true
			grabs[l.Scope] = true
		}
		all = append(all, l)
	}
	p.backBatch = s.back
	s.back = nil
	s.mu.Unlock()
	if len(all) > 0 {
		p.sent = now
		p.grabs = grabs
		p.redis = s.r.prepare(all, func(l Limit) want {
			if grabs[l.Scope] {
				return s.want(l, tokens)
			}
			return want{1, tokens, 1, tokens, 0}
		})
	}
	return p
}

func onRedis(ls []Limit, scope string) bool {
	for _, l := range ls {
		if l.Scope == scope {
			return true
		}
	}
	return false
}

// SlicedPending is an admission of Slices queued on a pipeline.
type SlicedPending struct {
	s      *Slices
	tokens int64
	err    error
	local  []take
	redis  *Pending
	grabs  map[string]bool
	sent   time.Time
	back   func() error
	// backBatch is what closed slices return, until QueueAll queues it.
	backBatch *Batch
	ticket    *Ticket
}

// Result returns the admission's outcome; call it after the pipeline
// ran. A refused admission has given back what it took from slices; what
// it took on Redis, GiveBack returns.
//
// The decision's quotas are the tightest of the scopes checked on Redis,
// as Redis counted them, and of the leased scopes, as this replica's slice
// of each stands after the request: Remaining is what the slice has not
// admitted yet, a floor (this replica admits at least that many more under
// the limit, other limits permitting), and Reset is when the slice ends,
// after which the replica takes another. A refusal reports the scopes
// checked on Redis alone.
func (p *SlicedPending) Result() (Decision, *Ticket, error) {
	if p.back != nil {
		if err := p.back(); err != nil {
			// The unused parts stay charged until they age out.
			p.back = nil
		}
	}
	if p.err != nil {
		return Decision{}, nil, p.err
	}
	d := Decision{Allowed: true}
	t := &Ticket{owner: p.s.r, tokens: p.tokens}
	if p.redis != nil {
		var err error
		var rt *Ticket
		d, rt, err = p.redis.Result()
		if err != nil || !d.Allowed {
			p.returnLocal()
			p.doneGrabbing()
			return d, nil, err
		}
		p.install()
		if len(p.grabs) > 0 {
			// A grabbed scope's quota is its slice's, below, not what
			// Redis counts with the whole slice charged.
			d.Requests, d.Tokens = Quota{}, Quota{}
			var ls []Limit
			var st []scopeState
			for i, l := range p.redis.limits {
				if !p.grabs[l.Scope] {
					ls, st = append(ls, l), append(st, p.redis.states[i])
				}
			}
			quotas(&d, ls, st)
		}
		// Keep only the scopes that were not grabs, in order.
		t.scopes, t.buckets, t.untracked = nil, nil, nil
		for i, s := range rt.scopes {
			if !p.grabs[s] {
				t.scopes = append(t.scopes, s)
				t.buckets = append(t.buckets, rt.buckets[i])
				t.untracked = append(t.untracked, false)
			}
		}
	}
	if len(p.local) > 0 {
		now := p.s.clock()
		ls := make([]Limit, len(p.local))
		st := make([]scopeState, len(p.local))
		p.s.mu.Lock()
		for i, tk := range p.local {
			sl := tk.sl
			t.scopes = append(t.scopes, sl.limit.Scope)
			t.buckets = append(t.buckets, sl.bucket)
			t.untracked = append(t.untracked, sl.limit.TPM == 0)
			// As quotas reads it: used is the limit less what the slice
			// has left.
			ls[i] = sl.limit
			st[i] = scopeState{reqs: sl.limit.RPM - max(sl.reqs, 0), tokens: sl.limit.TPM - max(sl.tokens, 0), reset: max(sl.until.Sub(now), 0)}
		}
		p.s.mu.Unlock()
		quotas(&d, ls, st)
	}
	p.ticket = t
	return d, t, nil
}

// doneGrabbing lets other requests take slices of the scopes this one
// tried to.
func (p *SlicedPending) doneGrabbing() {
	if len(p.grabs) == 0 {
		return
	}
	p.s.mu.Lock()
	for sc := range p.grabs {
		delete(p.s.grabbing, sc)
	}
	p.s.mu.Unlock()
}

// install turns the slices granted on Redis into slices in hand, the
// request's own part taken from each.
func (p *SlicedPending) install() {
	if len(p.grabs) == 0 {
		return
	}
	rp := p.redis
	bw := rp.r.bucket
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for sc := range p.grabs {
		delete(s.grabbing, sc)
	}
	for i, l := range rp.limits {
		if !p.grabs[l.Scope] {
			continue
		}
		g := rp.granted[i]
		if g[0] == 0 && g[1] == 0 {
			// Nothing charged: the admission's other part refused it.
			continue
		}
		// The slice may admit until its bucket ends, by the server's
		// clock; counted from when the request was sent, which was
		// before the server read its clock, so the local deadline is
		// never later than the server's.
		until := p.sent.Add(time.Duration(rp.buckets[i]+1)*bw - time.Duration(rp.nowUS[i])*time.Microsecond)
		sl := &slice{limit: l, reqs: g[0], tokens: g[1], bucket: rp.buckets[i], until: until}
		if l.RPM == 0 {
			sl.reqs = 0
		}
		if l.TPM == 0 {
			sl.tokens = 0
		}
		sl.take(p.tokens)
		if old := s.by[l.Scope]; old != nil {
			s.closeLocked(old)
		}
		s.by[l.Scope] = sl
		p.local = append(p.local, take{sl, p.tokens})
		s.taken.Add(1)
	}
}

// backAdd returns s.back, made if need be, with an adjustment added.
func (s *Slices) backAdd(scope string, bucket, reqs, tokens int64) *Batch {
	if s.back == nil {
		s.back = s.r.NewBatch()
	}
	if reqs != 0 || tokens != 0 {
		s.back.add(scope, bucket, reqs, tokens, 0)
	}
	return s.back
}

// returnLocal gives the local takes back to their slices, or to Redis
// when their slice was closed meanwhile.
func (p *SlicedPending) returnLocal() {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tk := range p.local {
		sl := tk.sl
		reqs, tokens := int64(0), int64(0)
		if sl.limit.RPM > 0 {
			reqs = 1
		}
		if sl.limit.TPM > 0 {
			tokens = tk.tokens
		}
		if !sl.closed {
			sl.reqs += reqs
			sl.tokens += tokens
			continue
		}
		s.backAdd(sl.limit.Scope, sl.bucket, -reqs, -tokens)
	}
	p.local = nil
}

// GiveBack returns, as a batch to send, what the admission charged on
// Redis when it is not to stand: on the slots that admitted it when
// another refused it (slices taken included), or, when it was admitted
// and a budget refused it, its own part, in which case its ticket counts
// as cancelled and what it took from slices goes back to them. Nil when
// there is nothing to send.
func (p *SlicedPending) GiveBack() *Batch {
	if p.ticket == nil {
		if p.redis == nil {
			return nil
		}
		return p.redis.GiveBack()
	}
	if !p.ticket.done.CompareAndSwap(false, true) {
		return nil
	}
	var b *Batch
	if rp := p.redis; rp != nil {
		for i, l := range rp.limits {
			if p.grabs[l.Scope] {
				continue // the slice stays; the request's part is a local take
			}
			if b == nil {
				b = p.s.r.NewBatch()
			}
			b.add(l.Scope, rp.buckets[i], -rp.granted[i][0], -rp.granted[i][1], 0)
		}
	}
	p.returnLocal()
	return b
}

// Abandon undoes Prepare for an admission that was never sent: what it
// took from slices goes back to them, and what closed slices were to
// return goes with the next admission.
func (p *SlicedPending) Abandon() {
	p.returnLocal()
	p.doneGrabbing()
	if p.backBatch == nil {
		return
	}
	s := p.s
	s.mu.Lock()
	for _, k := range p.backBatch.order {
		a := p.backBatch.adj[k]
		s.backAdd(k.scope, k.bucket, a.reqs, a.back)
	}
	s.mu.Unlock()
	p.backBatch = nil
}

// Remote returns the part of the admission checked on Redis, nil when it
// is all admitted from slices (or invalid).
func (p *SlicedPending) Remote() *Pending { return p.redis }
