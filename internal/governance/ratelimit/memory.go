package ratelimit

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Memory is a Limiter for one process. Its limits are not shared with other
// replicas; use Redis for that.
//
// One mutex guards all scopes, so an admission over several limits is atomic
// without lock ordering; the critical section is a few hundred nanoseconds.
// Scopes whose window has emptied are dropped once per window.
type Memory struct {
	now    func() time.Time
	base   time.Time
	window time.Duration

	mu      sync.Mutex
	logs    map[string]*chargeLog
	seq     uint64
	sweepAt time.Duration
}

// charge is one entry of a scope's log. at is measured from Memory.base so
// that a clock with a monotonic reading (time.Now) is immune to wall-clock
// steps.
type charge struct {
	at     time.Duration
	seq    uint64
	reqs   int64
	tokens int64
}

// chargeLog is a scope's sliding-window log: charges in admission order
// (q[head:] are live) and their running totals.
type chargeLog struct {
	q            []charge
	head         int
	reqs, tokens int64
}

// NewMemory returns an in-process limiter reading time from clock (time.Now
// when nil).
func NewMemory(clock func() time.Time, opts ...Option) *Memory {
	if clock == nil {
		clock = time.Now
	}
	o := buildOptions(opts)
	return &Memory{
		now:    clock,
		base:   clock(),
		window: o.window,
		logs:   make(map[string]*chargeLog),
	}
}

// Admit implements Limiter.
func (m *Memory) Admit(ctx context.Context, limits []Limit, tokens int64) (Decision, *Ticket, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, nil, err
	}
	if err := checkTokens(tokens); err != nil {
		return Decision{}, nil, err
	}
	var lbuf [8]Limit
	ls, err := merge(lbuf[:0], limits)
	if err != nil {
		return Decision{}, nil, err
	}
	var sbuf [8]scopeState
	st := sbuf[:0]
	var d Decision

	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now().Sub(m.base)
	m.sweep(now)
	cutoff := now - m.window
	refused := false
	for _, l := range ls {
		lg := m.logs[l.Scope]
		var s scopeState
		if lg != nil {
			lg.prune(cutoff)
			s = scopeState{reqs: lg.reqs, tokens: lg.tokens, reset: lg.reset(now, m.window)}
		}
		st = append(st, s)
		if d.TooLarge {
			continue
		}
		if l.TPM > 0 && tokens > l.TPM {
			d = Decision{Limit: l, TooLarge: true}
			refused = true
			continue
		}
		var needReqs, needTokens int64
		if l.RPM > 0 && s.reqs+1 > l.RPM {
			needReqs = s.reqs + 1 - l.RPM
		}
		if l.TPM > 0 && s.tokens+tokens > l.TPM {
			needTokens = s.tokens + tokens - l.TPM
		}
		if needReqs > 0 || needTokens > 0 {
			wait := lg.wait(now, m.window, needReqs, needTokens)
			if !refused || wait > d.RetryAfter {
				d.Limit, d.RetryAfter = l, wait
			}
			refused = true
		}
	}
	if refused {
		quotas(&d, ls, st)
		return d, nil, nil
	}

	m.seq++
	t := &Ticket{owner: m, tokens: tokens, seq: m.seq, scopes: make([]string, len(ls))}
	for i, l := range ls {
		lg := m.logs[l.Scope]
		if lg == nil {
			lg = &chargeLog{}
			m.logs[l.Scope] = lg
		}
		lg.add(charge{at: now, seq: m.seq, reqs: 1, tokens: tokens})
		st[i] = scopeState{reqs: lg.reqs, tokens: lg.tokens, reset: lg.reset(now, m.window)}
		t.scopes[i] = l.Scope
	}
	d.Allowed = true
	quotas(&d, ls, st)
	return d, t, nil
}

// Settle implements Limiter.
func (m *Memory) Settle(ctx context.Context, t *Ticket, actualTokens int64) error {
	if err := checkTokens(actualTokens); err != nil {
		return err
	}
	if err := m.claim(t); err != nil {
		return err
	}
	delta := actualTokens - t.tokens
	if delta == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now().Sub(m.base)
	cutoff := now - m.window
	var extra uint64
	for _, scope := range t.scopes {
		lg := m.logs[scope]
		if lg != nil {
			lg.prune(cutoff)
			if c := lg.find(t.seq); c != nil {
				c.tokens += delta
				lg.tokens += delta
				continue
			}
		}
		if delta < 0 {
			continue // the charge already left the window: nothing to refund
		}
		if lg == nil {
			lg = &chargeLog{}
			m.logs[scope] = lg
		}
		if extra == 0 {
			m.seq++
			extra = m.seq
		}
		lg.add(charge{at: now, seq: extra, tokens: delta})
	}
	return nil
}

// Cancel implements Limiter.
func (m *Memory) Cancel(ctx context.Context, t *Ticket) error {
	if err := m.claim(t); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, scope := range t.scopes {
		if lg := m.logs[scope]; lg != nil {
			if c := lg.find(t.seq); c != nil {
				lg.reqs -= c.reqs
				lg.tokens -= c.tokens
				c.reqs, c.tokens = 0, 0 // left in place; it ages out like any other
			}
		}
	}
	return nil
}

func (m *Memory) claim(t *Ticket) error {
	if t == nil || t.owner != m {
		return ErrForeignTicket
	}
	if !t.done.CompareAndSwap(false, true) {
		return ErrSettled
	}
	return nil
}

// sweep drops the logs of scopes with nothing left in the window, at most
// once per window, so idle scopes do not accumulate.
func (m *Memory) sweep(now time.Duration) {
	if now < m.sweepAt {
		return
	}
	m.sweepAt = now + m.window
	cutoff := now - m.window
	for scope, lg := range m.logs {
		lg.prune(cutoff)
		if lg.head == len(lg.q) {
			delete(m.logs, scope)
		}
	}
}

// add appends c, keeping the log in time order even if the clock steps back.
func (l *chargeLog) add(c charge) {
	if n := len(l.q); n > l.head && l.q[n-1].at > c.at {
		c.at = l.q[n-1].at
	}
	l.q = append(l.q, c)
	l.reqs += c.reqs
	l.tokens += c.tokens
}

// prune drops the charges stamped at or before cutoff.
func (l *chargeLog) prune(cutoff time.Duration) {
	for l.head < len(l.q) && l.q[l.head].at <= cutoff {
		c := l.q[l.head]
		l.reqs -= c.reqs
		l.tokens -= c.tokens
		l.head++
	}
	switch {
	case l.head == len(l.q):
		l.q, l.head = l.q[:0], 0
	case l.head >= 64 && 2*l.head >= len(l.q):
		n := copy(l.q, l.q[l.head:])
		l.q, l.head = l.q[:n], 0
	}
}

// reset is how long until the oldest live charge ages out.
func (l *chargeLog) reset(now, window time.Duration) time.Duration {
	if l.head == len(l.q) {
		return 0
	}
	return l.q[l.head].at + window - now
}

// wait is how long until enough of the oldest charges age out to free
// needReqs requests and needTokens tokens together. The caller guarantees
// that the log holds at least that much.
func (l *chargeLog) wait(now, window time.Duration, needReqs, needTokens int64) time.Duration {
	var reqs, tokens int64
	for i := l.head; i < len(l.q); i++ {
		reqs += l.q[i].reqs
		tokens += l.q[i].tokens
		if reqs >= needReqs && tokens >= needTokens {
			return l.q[i].at + window - now
		}
	}
	return window
}

// find returns the live charge with sequence number seq, or nil.
func (l *chargeLog) find(seq uint64) *charge {
	live := l.q[l.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].seq >= seq })
	if i < len(live) && live[i].seq == seq {
		return &live[i]
	}
	return nil
}
