package budget

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Slices admits busy budgets ("global", a big team's) from slices that
// this replica reserves on Redis ahead of need, so that most requests do
// not touch the budget's hash at all.
//
// A slice is a reservation of a share of the budget's limit, taken as one
// admission would take its worst case, held on Redis under the lease like
// any reservation. The replica admits requests from it, in memory, taking
// each one's worst case from what is left, until it is used up or its
// life ends; then it takes another in the same round trip as the request
// that needed it, and releases what the old one did not hand out.
// Requests admitted from a slice are settled on Redis like any other: the
// real cost is charged and their part of the slice released.
//
// Over-spending: none. A slice is reserved on Redis before it hands out
// anything, and hands out at most what it holds, so spent plus reserved
// on Redis always covers every request in flight, on every replica, as
// without slices. The price is budget held: per budget, up to one slice
// per replica (share × the limit each) is reserved and not yet handed
// out at any moment, and other replicas cannot use it until it is
// released. Near a limit, slices shrink to what is left, down to the one
// request that needs it. A request admitted from a slice holds its
// reservation for the lease counted from when the slice was taken.
type Slices struct {
	r     *Redis
	share float64
	life  time.Duration
	clock func() time.Time

	mu   sync.Mutex
	by   map[counterID]*bslice
	back *Batch // what closed slices did not hand out, released with the next admission
	// grabbing holds the counters a slice is being taken for; meanwhile
	// other requests reserve on Redis one by one, so that a burst takes
	// one slice, not one each.
	grabbing map[counterID]bool

	taken atomic.Uint64
}

// bslice is one counter's slice in hand.
type bslice struct {
	p      period
	limits []limitKey // the budgets it was cut for
	left   Nanos
	bucket int64 // the lease bucket it is reserved in
	until  time.Time
	closed bool
}

// NewSlices returns slices of the budgets r keeps: each reserves share
// (0 < share ≤ 1) of a budget's limit and is used for life.
func (r *Redis) NewSlices(share float64, life time.Duration) *Slices {
	return &Slices{r: r, share: share, life: life, clock: time.Now, by: make(map[counterID]*bslice), grabbing: make(map[counterID]bool)}
}

// Taken returns how many slices this replica has taken.
func (s *Slices) Taken() uint64 { return s.taken.Load() }

func idOf(p period) counterID { return counterID{p.scope, p.kind, p.start.Unix()} }

func (s *Slices) closeLocked(sl *bslice) {
	if sl.closed {
		return
	}
	sl.closed = true
	if sl.left > 0 {
		if s.back == nil {
			s.back = s.r.NewBatch()
		}
		s.back.release(sl.p, sl.bucket, sl.left)
	}
}

// Release releases every slice in hand (what they did not hand out), for
// a replica that stops: otherwise it stays reserved until its lease ends.
func (s *Slices) Release(ctx context.Context) error {
	s.mu.Lock()
	for id, sl := range s.by {
		s.closeLocked(sl)
		delete(s.by, id)
	}
	back := s.back
	s.back = nil
	s.mu.Unlock()
	if back == nil {
		return nil
	}
	_, err := back.Send(ctx)
	return err
}

// localTake is a request's hold on a slice.
type localTake struct {
	sl    *bslice
	worst Nanos
}

// Queue adds an admission under budgets, checked on Redis, and hot,
// admitted from slices, to pipe; a counter is admitted from a slice when
// every budget on it is hot. Hot counters whose slice is used up or gone
// take a new one in the same pipeline. After pipe.Exec, Result decodes
// the outcome; on a refusal, GiveBack returns what the Redis part took.
func (s *Slices) Queue(ctx context.Context, pipe redis.Pipeliner, budgets, hot []Budget, worst Nanos) *SlicedPending {
	p := s.Prepare(budgets, hot, worst)
	s.QueueAll(ctx, pipe, []*SlicedPending{p})
	return p
}

// QueueAll adds admissions made by Prepare to pipe, the Redis parts of
// all of them in one script per slot group (see Redis.QueueAll), with
// what closed slices release.
func (s *Slices) QueueAll(ctx context.Context, pipe redis.Pipeliner, ps []*SlicedPending) {
	if rs := s.QueueReturns(ctx, pipe, ps); len(rs) > 0 {
		s.r.QueueAll(ctx, pipe, rs)
	}
}

// QueueReturns adds to pipe what closed slices release, and returns the
// parts of the admissions to check on Redis, for Redis.Groups or
// Redis.QueueAll: QueueAll in two steps.
func (s *Slices) QueueReturns(ctx context.Context, pipe redis.Pipeliner, ps []*SlicedPending) []*Pending {
	var rs []*Pending
	for _, p := range ps {
		p.ctx = ctx
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

// Prepare readies an admission under budgets, checked on Redis, and hot,
// admitted from slices, to be queued with others by QueueAll: it takes
// from the slices in hand and decides which need a new one.
func (s *Slices) Prepare(budgets, hot []Budget, worst Nanos) *SlicedPending {
	all := append(slices.Clone(budgets), hot...)
	p := &SlicedPending{s: s, budgets: all, worst: worst}
	now := s.clock()
	ps, index, err := plan(all, worst, now.Add(time.Duration(s.r.skew.Load())))
	if err != nil {
		p.err = err
		return p
	}
	p.periods, p.index = ps, index
	// The limits on each counter, and whether every budget on it is hot.
	limits := make([][]limitKey, len(ps))
	sliced := make([]bool, len(ps))
	for i := range sliced {
		sliced[i] = true
	}
	for j, b := range all {
		i := index[j]
		limits[i] = append(limits[i], limitKey{b.Limit, b.Soft})
		if j < len(budgets) {
			sliced[i] = false
		}
	}
	p.local = make([]*localTake, len(ps))
	grab := map[counterID]Nanos{}
	s.mu.Lock()
	for i, c := range ps {
		if !sliced[i] {
			continue
		}
		id := idOf(c)
		sl := s.by[id]
		if sl != nil && (now.After(sl.until) || !slices.Equal(sl.limits, limits[i])) {
			s.closeLocked(sl)
			delete(s.by, id)
			sl = nil
		}
		if sl != nil && sl.left >= worst {
			sl.left -= worst
			p.local[i] = &localTake{sl, worst}
			continue
		}
		if !s.grabbing[id] {
			s.grabbing[id] = true
			grab[id] = s.sliceOf(limits[i], worst)
		}
	}
	p.backBatch = s.back
	s.back = nil
	s.mu.Unlock()
	var rest []Budget
	for j, b := range all {
		if p.local[index[j]] == nil {
			rest = append(rest, b)
		}
	}
	if len(rest) > 0 {
		p.grab = grab
		p.redis = s.r.prepare(rest, func(c period) (Nanos, Nanos) {
			if w, ok := grab[idOf(c)]; ok {
				return w, worst
			}
			return worst, worst
		}, worst)
	}
	return p
}

// sliceOf is what a slice of a counter with these budgets reserves for a
// request of worst: a share of its tightest hard limit (of its softest,
// when none is hard), down to the request itself.
func (s *Slices) sliceOf(limits []limitKey, worst Nanos) Nanos {
	var limit Nanos = -1
	for _, hard := range []bool{true, false} {
		for _, l := range limits {
			if l.soft != hard && (limit < 0 || l.limit < limit) {
				limit = l.limit
			}
		}
		if limit >= 0 {
			break
		}
	}
	share := Nanos(math.Ceil(s.share * float64(limit)))
	return max(worst, share)
}

// SlicedPending is an admission of Slices queued on a pipeline.
type SlicedPending struct {
	s       *Slices
	ctx     context.Context
	budgets []Budget
	worst   Nanos
	err     error
	periods []period
	index   []int
	local   []*localTake // per counter; nil where it went to Redis
	grab    map[counterID]Nanos
	redis   *Pending
	back    func() ([][]Status, error)
	// backBatch is what closed slices release, until QueueAll queues it.
	backBatch *Batch
	res       *Reservation // once admitted
}

// Result returns the admission's outcome; call it after the pipeline ran.
// A refused admission has given back what it took from slices; what it
// took on Redis, GiveBack returns.
func (p *SlicedPending) Result() (Decision, *Reservation, error) {
	if p.back != nil {
		_, _ = p.back() // on failure, what the slices did not hand out waits for its lease
	}
	if p.err != nil {
		return Decision{}, nil, p.err
	}
	res := &Reservation{owner: p.s.r, worst: p.worst, budgets: p.budgets, periods: p.periods, index: p.index,
		amounts: make([]Nanos, len(p.periods)), buckets: make([]int64, len(p.periods))}
	if p.redis != nil {
		d, rres, err := p.redis.Result()
		if err != nil || !d.Allowed {
			p.returnLocal()
			p.doneGrabbing()
			return d, nil, err
		}
		p.install(rres)
		for i, c := range rres.periods {
			at := slices.IndexFunc(p.periods, func(q period) bool { return idOf(q) == idOf(c) })
			if at < 0 || p.local[at] != nil {
				continue
			}
			res.amounts[at], res.buckets[at] = rres.amounts[i], rres.buckets[i]
			if rres.periods[i].start != p.periods[at].start {
				// The server named another period (a skewed clock):
				// keep the one reserved in.
				res.periods[at] = rres.periods[i]
			}
		}
	}
	for i, tk := range p.local {
		if tk != nil {
			res.amounts[i], res.buckets[i] = tk.worst, tk.sl.bucket
		}
	}
	p.res = res
	return Decision{Allowed: true}, res, nil
}

// doneGrabbing lets other requests take slices of the counters this one
// tried to.
func (p *SlicedPending) doneGrabbing() {
	if len(p.grab) == 0 {
		return
	}
	p.s.mu.Lock()
	for id := range p.grab {
		delete(p.s.grabbing, id)
	}
	p.s.mu.Unlock()
}

// install turns the slices reserved on Redis into slices in hand, the
// request's own worst case taken from each.
func (p *SlicedPending) install(rres *Reservation) {
	if len(p.grab) == 0 {
		return
	}
	s := p.s
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range p.grab {
		delete(s.grabbing, id)
	}
	for i, c := range rres.periods {
		id := idOf(c)
		if _, ok := p.grab[id]; !ok {
			continue
		}
		at := slices.IndexFunc(p.periods, func(q period) bool { return idOf(q) == id })
		if at < 0 || rres.amounts[i] == 0 {
			continue // not there, or nothing reserved: the admission's other part refused it
		}
		var limits []limitKey
		for j, b := range p.budgets {
			if p.index[j] == at {
				limits = append(limits, limitKey{b.Limit, b.Soft})
			}
		}
		sl := &bslice{p: c, limits: limits, left: rres.amounts[i] - p.worst, bucket: rres.buckets[i], until: now.Add(s.life)}
		rres.amounts[i] = p.worst
		if old := s.by[id]; old != nil {
			s.closeLocked(old)
		}
		s.by[id] = sl
		p.local[at] = &localTake{sl, p.worst}
		s.taken.Add(1)
	}
}

// returnLocal gives the local takes back to their slices, or releases
// them on Redis when their slice was closed meanwhile.
func (p *SlicedPending) returnLocal() {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, tk := range p.local {
		if tk == nil {
			continue
		}
		if !tk.sl.closed {
			tk.sl.left += tk.worst
		} else {
			if s.back == nil {
				s.back = s.r.NewBatch()
			}
			s.back.release(tk.sl.p, tk.sl.bucket, tk.worst)
		}
		p.local[i] = nil
	}
}

// GiveBack returns, as a batch to send, what the admission reserved on
// Redis when it is not to stand: on the slots that admitted it when
// another refused it (slices taken included), or, when it was admitted
// and a rate limit refused it, its own part, in which case its
// reservation counts as settled and what it took from slices goes back
// to them. Nil when there is nothing to send.
func (p *SlicedPending) GiveBack() *Batch {
	if p.res == nil {
		if p.redis == nil {
			return nil
		}
		return p.redis.GiveBack()
	}
	if !p.res.done.CompareAndSwap(false, true) {
		return nil
	}
	var b *Batch
	for i, c := range p.res.periods {
		if p.local[i] != nil {
			continue // given back to its slice below
		}
		if b == nil {
			b = p.s.r.NewBatch()
		}
		b.release(c, p.res.buckets[i], p.res.amounts[i])
	}
	p.returnLocal()
	return b
}

// Abandon undoes Prepare for an admission that was never sent: what it
// took from slices goes back to them, and what closed slices were to
// release goes with the next admission.
func (p *SlicedPending) Abandon() {
	p.returnLocal()
	p.doneGrabbing()
	if p.backBatch == nil {
		return
	}
	s := p.s
	s.mu.Lock()
	if s.back == nil {
		s.back = s.r.NewBatch()
	}
	for _, id := range p.backBatch.order {
		c := p.backBatch.counters[id]
		for _, e := range c.buckets {
			s.back.release(c.p, e, c.releases[e])
		}
	}
	s.mu.Unlock()
	p.backBatch = nil
}

// Remote returns the part of the admission checked on Redis, nil when it
// is all admitted from slices (or invalid).
func (p *SlicedPending) Remote() *Pending { return p.redis }
