// Package budget enforces spending budgets per scope (a key, a team, a tag
// value: strings the caller builds) for daily or monthly periods, on one node
// (Memory) or across replicas that share Redis (Redis).
//
// # Reservation
//
// A request's real cost is known only when it ends, so checking "spent <
// limit" at admission lets any number of concurrent requests through a
// nearly spent budget. Here admission reserves the request's worst case
// (estimated input tokens at the input price plus max_tokens at the output
// price) and admits only if, for every hard budget that applies,
//
//	spent + reserved + worstCase <= limit
//
// checking and reserving atomically across all of them. Settle then moves the
// reservation to spent at the real cost, releasing the rest. As long as real
// costs stay within their worst cases, spent never passes a hard limit, however
// many requests run at once and on however many replicas.
//
// A reservation is a lease: if its request never settles (the process
// crashed), it expires after the lease (WithLease) and stops holding the
// budget. A request that settles after its lease expired is still charged in
// full, but for a while it was not reserved, so leases must outlast the
// longest request.
//
// Money is integer nano-dollars (Nanos). A request is charged to the periods
// that contained its admission, even if it settles after they ended.
//
// Soft budgets never refuse; they are tracked like hard ones, and Settle
// reports the first time in a period that spent reaches a budget's limit, so
// the caller can alert (Notifier posts it to a webhook). Hard budgets report
// reaching their limit the same way.
//
// This package does not price requests nor decide which budgets apply; the
// gateway does, and writes the 429 body from Decision.Refused.
package budget

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// DefaultLease is how long a reservation holds a budget if its request never
// settles. It must outlast the longest request Junction serves.
const DefaultLease = 15 * time.Minute

// Budget limits what a scope may spend in each period.
type Budget struct {
	// Scope names what the budget applies to; the caller builds it ("key:abc",
	// "team:ml", "tag:env=prod").
	Scope string
	// Period is how often the budget starts over.
	Period Period
	// Limit is the most the scope may spend in one period.
	Limit Nanos
	// Soft budgets never refuse a request; reaching the limit is reported by
	// Settle instead.
	Soft bool
}

// Kind returns "soft" or "hard".
func (b Budget) Kind() string {
	if b.Soft {
		return "soft"
	}
	return "hard"
}

// Status is a budget's state in one period.
type Status struct {
	// Budget is the budget described.
	Budget Budget
	// Spent is the real cost settled in the period.
	Spent Nanos
	// Reserved is the worst-case cost held by requests still in flight.
	Reserved Nanos
	// PeriodStart is when the period began.
	PeriodStart time.Time
	// ResetsAt is when the period ends and the budget starts over.
	ResetsAt time.Time
}

// Message describes a refusal for the client's error body, naming the
// budget, its limit, what is spent and held, and when it resets.
func (s Status) Message() string {
	b := s.Budget
	return fmt.Sprintf("%s %s budget for %s cannot cover this request: limit %s, spent %s, %s reserved by requests in flight; resets at %s",
		b.Kind(), b.Period, b.Scope, b.Limit, s.Spent, s.Reserved, s.ResetsAt.Format(time.RFC3339))
}

// Decision is the outcome of an admission.
type Decision struct {
	// Allowed reports whether the request was admitted and its worst case
	// reserved.
	Allowed bool
	// Refused is the hard budget that could not cover the request, as it
	// stood (the first such budget in the order given). Zero when Allowed.
	Refused Status
}

// Reservation is the hold one admitted request has on its budgets. It
// belongs to the enforcer that issued it and is settled once.
type Reservation struct {
	owner   any
	worst   Nanos
	budgets []Budget
	periods []period
	index   []int  // budgets[i] counts in periods[index[i]]
	seq     uint64 // Memory: the lease's sequence number
	// Redis: per period, the amount reserved and the lease bucket it is
	// held in.
	amounts []Nanos
	buckets []int64
	done    atomic.Bool
}

// Amount returns the worst-case cost the reservation holds.
func (r *Reservation) Amount() Nanos { return r.worst }

// Enforcer admits requests under budgets. Memory and Redis implement it.
type Enforcer interface {
	// Admit reserves worstCase on every budget's current period if every
	// hard budget can cover it; otherwise it reserves nothing and says which
	// budget refused. The reservation is nil when the request is refused.
	Admit(ctx context.Context, budgets []Budget, worstCase Nanos) (Decision, *Reservation, error)
	// Settle charges the real cost to the periods the reservation holds and
	// releases the reservation. It returns the budgets whose spend reached
	// their limit for the first time in the period (once per budget and
	// period, across replicas). A reservation is settled once, even when
	// Settle fails (Redis unreachable): a retry could charge twice, so the
	// reservation is left to its lease and the ledger keeps the cost.
	Settle(ctx context.Context, r *Reservation, actual Nanos) (crossed []Status, err error)
	// Seed sets what scope already spent in the period of the given kind that
	// starts at start (any time inside the period will do), typically from
	// the ledger at startup. Only the first Seed of a period counts; later
	// ones (another replica starting) report false and change nothing.
	// Spend from admissions is added to the seed, not replaced by it, so
	// seed before admitting.
	Seed(ctx context.Context, scope string, p Period, start time.Time, spent Nanos) (bool, error)
	// Status returns budget b's state in its current period, for reports
	// and admin views.
	Status(ctx context.Context, b Budget) (Status, error)
}

var (
	_ Enforcer = (*Memory)(nil)
	_ Enforcer = (*Redis)(nil)
)

var (
	// ErrSettled is returned when a reservation is settled twice.
	ErrSettled = errors.New("budget: reservation already settled")
	// ErrForeignReservation is returned when a reservation is given to an
	// enforcer other than the one that issued it.
	ErrForeignReservation = errors.New("budget: reservation issued by another enforcer")
)

// Option configures an enforcer.
type Option func(*options)

type options struct {
	lease time.Duration
}

// WithLease sets how long a reservation lasts without a settle
// (DefaultLease unless set).
func WithLease(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.lease = d
		}
	}
}

func buildOptions(opts []Option) options {
	o := options{lease: DefaultLease}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// period identifies one counter: a scope's spend in one period. Budgets of
// the same scope and period (a soft alert at $50 and a hard stop at $100)
// share it.
type period struct {
	scope      string
	kind       Period
	start, end time.Time
}

// plan resolves budgets to the periods that contain now, one per distinct
// counter, and validates them.
func plan(budgets []Budget, worst Nanos, now time.Time) (ps []period, index []int, err error) {
	if worst < 0 {
		return nil, nil, fmt.Errorf("budget: negative worst case %d", worst)
	}
	index = make([]int, len(budgets))
outer:
	for i, b := range budgets {
		switch {
		case b.Scope == "":
			return nil, nil, fmt.Errorf("budget: budgets[%d]: empty scope", i)
		case !b.Period.valid():
			return nil, nil, fmt.Errorf("budget: budgets[%d] (%s): invalid period", i, b.Scope)
		case b.Limit < 0:
			return nil, nil, fmt.Errorf("budget: budgets[%d] (%s): negative limit", i, b.Scope)
		}
		for j, p := range ps {
			if p.scope == b.Scope && p.kind == b.Period {
				index[i] = j
				continue outer
			}
		}
		if ps == nil {
			ps = make([]period, 0, len(budgets))
		}
		index[i] = len(ps)
		start, end := b.Period.bounds(now)
		ps = append(ps, period{scope: b.Scope, kind: b.Period, start: start, end: end})
	}
	return ps, index, nil
}

func checkCost(c Nanos) error {
	if c < 0 {
		return fmt.Errorf("budget: negative cost %d", c)
	}
	return nil
}
