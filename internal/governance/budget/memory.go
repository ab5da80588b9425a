package budget

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// Memory is an Enforcer for one process. Its budgets are not shared with
// other replicas; use Redis for that.
//
// One mutex guards all counters, so an admission over several budgets is
// atomic. Counters are dropped once their period has ended and its last
// lease could have expired.
type Memory struct {
	now   func() time.Time
	base  time.Time
	lease time.Duration

	mu       sync.Mutex
	counters map[counterKey]*counter
	seq      uint64
	sweepAt  time.Time
}

type counterKey struct {
	scope string
	kind  Period
	start int64 // Unix seconds
}

// counter is one scope's spend in one period.
type counter struct {
	spent, reserved Nanos
	end             time.Time
	// leases[head:] are the reservations not yet released, in the order
	// they were taken, which is both sequence and expiry order (every lease
	// lasts as long): expiry pops the front, settle finds its own by binary
	// search, and settled ones are dropped once they reach the front.
	leases  []lease
	head    int
	crossed []Budget // budgets already reported as reaching their limit
	seeded  bool
}

type lease struct {
	seq      uint64
	amount   Nanos
	expires  time.Duration // since Memory.base, so that time.Now's monotonic reading counts
	released bool
}

// NewMemory returns an in-process enforcer reading time from clock
// (time.Now when nil).
func NewMemory(clock func() time.Time, opts ...Option) *Memory {
	if clock == nil {
		clock = time.Now
	}
	o := buildOptions(opts)
	return &Memory{now: clock, base: clock(), lease: o.lease, counters: make(map[counterKey]*counter)}
}

func keyOf(p period) counterKey {
	return counterKey{scope: p.scope, kind: p.kind, start: p.start.Unix()}
}

// Admit implements Enforcer.
func (m *Memory) Admit(ctx context.Context, budgets []Budget, worstCase Nanos) (Decision, *Reservation, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, nil, err
	}
	now := m.now()
	ps, index, err := plan(budgets, worstCase, now)
	if err != nil {
		return Decision{}, nil, err
	}
	var cbuf [8]*counter
	cs := cbuf[:0]

	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	mono := now.Sub(m.base)
	for _, p := range ps {
		c := m.counters[keyOf(p)]
		if c != nil {
			c.expire(mono)
		}
		cs = append(cs, c)
	}
	for i, b := range budgets {
		if b.Soft {
			continue
		}
		var spent, reserved Nanos
		if c := cs[index[i]]; c != nil {
			spent, reserved = c.spent, c.reserved
		}
		// Compared as limit minus use, not use plus worst case: a worst
		// case near MaxNanos must not wrap the sum and pass.
		if worstCase > b.Limit-spent-reserved {
			p := ps[index[i]]
			return Decision{Refused: Status{Budget: b, Spent: spent, Reserved: reserved, PeriodStart: p.start, ResetsAt: p.end}}, nil, nil
		}
	}
	m.seq++
	l := lease{seq: m.seq, amount: worstCase, expires: mono + m.lease}
	for i, p := range ps {
		c := cs[i]
		if c == nil {
			c = m.add(p)
		}
		c.reserved += worstCase
		c.leases = append(c.leases, l)
	}
	r := &Reservation{owner: m, worst: worstCase, budgets: slices.Clone(budgets), periods: ps, index: index, seq: m.seq}
	return Decision{Allowed: true}, r, nil
}

// Settle implements Enforcer.
func (m *Memory) Settle(ctx context.Context, r *Reservation, actual Nanos) ([]Status, error) {
	if r == nil || r.owner != m {
		return nil, ErrForeignReservation
	}
	if err := checkCost(actual); err != nil {
		return nil, err
	}
	if !r.done.CompareAndSwap(false, true) {
		return nil, ErrSettled
	}
	if len(r.periods) == 0 {
		return nil, nil
	}
	mono := m.now().Sub(m.base)
	var cbuf [8]*counter
	cs := cbuf[:0]

	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range r.periods {
		c := m.counters[keyOf(p)]
		if c == nil { // swept long after its period: count it anyway
			c = m.add(p)
		}
		c.release(r.seq)
		c.expire(mono)
		c.spent += actual
		cs = append(cs, c)
	}
	var crossed []Status
	for i, b := range r.budgets {
		c := cs[r.index[i]]
		if c.spent >= b.Limit && !slices.Contains(c.crossed, b) {
			c.crossed = append(c.crossed, b)
			p := r.periods[r.index[i]]
			crossed = append(crossed, Status{Budget: b, Spent: c.spent, Reserved: c.reserved, PeriodStart: p.start, ResetsAt: p.end})
		}
	}
	return crossed, nil
}

// Seed implements Enforcer.
func (m *Memory) Seed(ctx context.Context, scope string, p Period, start time.Time, spent Nanos) (bool, error) {
	ps, _, err := plan([]Budget{{Scope: scope, Period: p}}, 0, start)
	if err != nil {
		return false, err
	}
	if err := checkCost(spent); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.counters[keyOf(ps[0])]
	if c == nil {
		c = m.add(ps[0])
	}
	if c.seeded {
		return false, nil
	}
	c.seeded = true
	c.spent += spent
	return true, nil
}

// Status implements Enforcer.
func (m *Memory) Status(ctx context.Context, b Budget) (Status, error) {
	if _, _, err := plan([]Budget{b}, 0, time.Time{}); err != nil {
		return Status{}, err
	}
	now := m.now()
	p := period{scope: b.Scope, kind: b.Period, start: b.Period.Start(now), end: b.Period.End(now)}
	s := Status{Budget: b, PeriodStart: p.start, ResetsAt: p.end}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.counters[keyOf(p)]; c != nil {
		c.expire(now.Sub(m.base))
		s.Spent, s.Reserved = c.spent, c.reserved
	}
	return s, nil
}

func (m *Memory) add(p period) *counter {
	c := &counter{end: p.end}
	m.counters[keyOf(p)] = c
	return c
}

// sweep drops, at most once a minute, the counters of periods that ended
// more than a lease ago: nothing can still settle into them on time.
func (m *Memory) sweep(now time.Time) {
	if now.Before(m.sweepAt) {
		return
	}
	m.sweepAt = now.Add(time.Minute)
	for k, c := range m.counters {
		if !now.Before(c.end.Add(m.lease)) {
			delete(m.counters, k)
		}
	}
}

// expire releases the reservations whose lease ran out by now, and drops
// released ones from the front.
func (c *counter) expire(now time.Duration) {
	for c.head < len(c.leases) {
		l := &c.leases[c.head]
		if !l.released {
			if now < l.expires {
				break
			}
			c.reserved -= l.amount
		}
		c.head++
	}
	switch {
	case c.head == len(c.leases):
		c.leases, c.head = c.leases[:0], 0
	case c.head >= 64 && 2*c.head >= len(c.leases):
		n := copy(c.leases, c.leases[c.head:])
		c.leases, c.head = c.leases[:n], 0
	}
}

// release gives back reservation seq's amount if it still holds it.
func (c *counter) release(seq uint64) {
	live := c.leases[c.head:]
	i, found := slices.BinarySearchFunc(live, seq, func(l lease, seq uint64) int { return cmp.Compare(l.seq, seq) })
	if found && !live[i].released {
		live[i].released = true
		c.reserved -= live[i].amount
	}
}
