// Package ratelimit enforces requests-per-minute and tokens-per-minute limits
// exactly, on one node (Memory) or across replicas that share Redis (Redis).
//
// A limit belongs to a scope, a string the caller builds ("key:abc", "team:ml",
// "model:gpt-4o", "team:ml|model:gpt-4o"). One admission checks every limit that
// applies to a request at once and is all-or-nothing: when any of them would be
// exceeded, nothing is charged anywhere.
//
// # What "N per minute" means here
//
// Each scope keeps a sliding-window log: every admitted request is one charge
// (one request plus its tokens) stamped with the time it was admitted, and a
// charge counts against the scope for exactly one window (a minute unless
// WithWindow says otherwise) after that. A request is admitted only if, with
// its own charge added, the charges younger than one window stay within RPM and
// TPM. So in every interval of one window's length, wherever it starts, at most
// RPM requests are admitted and at most TPM estimated tokens are charged: a
// client may burst up to the limit at once and then gets capacity back charge
// by charge as each one ages out. Nothing is approximated, and there is no
// window edge where twice the limit gets through, as a fixed per-minute counter
// allows; a token bucket refilled at N per minute would also let up to 2N
// through in some minute. The price is memory: a scope holds one entry per
// request it admitted in the last window.
//
// # Tokens: reserve, then settle
//
// Admit charges an estimate (input tokens plus the maximum output) so that
// concurrent requests cannot overshoot TPM; Settle replaces the estimate by
// the real count when the response is done. A refund frees capacity at once;
// an extra charge (the input estimate was low) is taken even though it may push
// the window past TPM, since the tokens were used, and later requests wait
// until the window has room again. Tokens are charged at the time the request
// was admitted; if the charge has already left the window when Settle runs, a
// refund is moot and an extra charge is stamped with the settle time.
//
// This package does not decide which limits apply to a request, nor write the
// 429 body; the gateway does. SetHeaders writes the x-ratelimit-* headers.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// DefaultWindow is the window RPM and TPM are counted over.
const DefaultWindow = time.Minute

// Limit is one scope's allowance per window. A zero RPM or TPM leaves that
// dimension unlimited; a Limit with both zero is ignored.
type Limit struct {
	// Scope names what the limit applies to; the caller builds it.
	Scope string
	// RPM is the most requests admitted in any one window.
	RPM int64
	// TPM is the most tokens charged in any one window.
	TPM int64
}

// Quota describes one dimension (requests or tokens) of the tightest limit
// that applied to an admission, in the shape of OpenAI's x-ratelimit-*
// headers.
type Quota struct {
	// Limit is the allowance per window; 0 when no limit of this dimension
	// applied.
	Limit int64
	// Remaining is what is left of Limit in the current window after this
	// admission (before it, when the request was refused), never below 0.
	Remaining int64
	// Reset is how long until the oldest charge in that scope's window ages
	// out, that is the earliest moment Remaining grows.
	Reset time.Duration
}

// Decision is the outcome of an admission.
type Decision struct {
	// Allowed reports whether the request was admitted and charged.
	Allowed bool
	// Limit is the limit that refused the request; when several did, the one
	// that frees up last. Zero when Allowed.
	Limit Limit
	// TooLarge reports that the request's tokens alone exceed Limit.TPM, so
	// no amount of waiting admits it.
	TooLarge bool
	// RetryAfter is how long until the request would fit under every limit if
	// nothing else were admitted meanwhile. Zero when Allowed or TooLarge.
	RetryAfter time.Duration
	// Requests is the request quota of the limit with the fewest requests
	// remaining.
	Requests Quota
	// Tokens is the token quota of the limit with the fewest tokens remaining.
	Tokens Quota
}

// Ticket records one admitted request so that Settle or Cancel can adjust its
// charge later. It belongs to the limiter that issued it.
type Ticket struct {
	owner   any
	scopes  []string
	tokens  int64
	seq     uint64  // Memory: the charge's sequence number
	buckets []int64 // Redis: per scope, the bucket charged
	// untracked marks the scopes admitted from a slice of a limit without
	// TPM, whose tokens are not counted.
	untracked []bool
	done      atomic.Bool
}

// Tokens returns the estimate the ticket charged at admission.
func (t *Ticket) Tokens() int64 { return t.tokens }

// Limiter admits requests under rate limits. Memory and Redis implement it.
type Limiter interface {
	// Admit checks all limits for one request of the given estimated tokens
	// and, if every limit has room, charges them all. The ticket is nil
	// when the request is refused.
	Admit(ctx context.Context, limits []Limit, tokens int64) (Decision, *Ticket, error)
	// Settle replaces the ticket's estimate by the actual token count. A
	// ticket is settled once, even when Settle fails (Redis unreachable): a
	// retry could apply the difference twice, and the estimate stands.
	Settle(ctx context.Context, t *Ticket, actualTokens int64) error
	// Cancel removes the ticket's charge entirely, request included, for a
	// request that never reached the upstream.
	Cancel(ctx context.Context, t *Ticket) error
}

var (
	_ Limiter = (*Memory)(nil)
	_ Limiter = (*Redis)(nil)
)

var (
	// ErrSettled is returned when a ticket is settled or cancelled twice.
	ErrSettled = errors.New("ratelimit: ticket already settled")
	// ErrForeignTicket is returned when a ticket is given to a limiter other
	// than the one that issued it.
	ErrForeignTicket = errors.New("ratelimit: ticket issued by another limiter")
)

// Option configures a limiter.
type Option func(*options)

type options struct {
	window time.Duration
}

// WithWindow sets the window RPM and TPM are counted over (DefaultWindow
// unless set). Tests use short windows; a gateway keeps the minute its limits
// are named after.
func WithWindow(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.window = d
		}
	}
}

func buildOptions(opts []Option) options {
	o := options{window: DefaultWindow}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// merge validates limits and appends them to dst with one entry per scope:
// when a scope appears more than once, the tighter value of each dimension
// wins. Limits with nothing to limit are dropped.
func merge(dst, limits []Limit) ([]Limit, error) {
outer:
	for i, l := range limits {
		switch {
		case l.Scope == "":
			return nil, fmt.Errorf("ratelimit: limits[%d]: empty scope", i)
		case l.RPM < 0 || l.TPM < 0:
			return nil, fmt.Errorf("ratelimit: limits[%d] (%s): negative limit", i, l.Scope)
		case l.RPM == 0 && l.TPM == 0:
			continue
		}
		for j := range dst {
			if dst[j].Scope == l.Scope {
				dst[j].RPM = tighter(dst[j].RPM, l.RPM)
				dst[j].TPM = tighter(dst[j].TPM, l.TPM)
				continue outer
			}
		}
		dst = append(dst, l)
	}
	return dst, nil
}

// tighter returns the smaller of two limits where 0 means unlimited.
func tighter(a, b int64) int64 {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

// scopeState is what a backend reports about one scope for building a
// Decision: its usage in the window and when its oldest charge ages out.
type scopeState struct {
	reqs, tokens int64
	reset        time.Duration
}

// quotas fills d.Requests and d.Tokens from the tightest of the limits.
func quotas(d *Decision, ls []Limit, st []scopeState) {
	for i, l := range ls {
		if l.RPM > 0 {
			rem := max(l.RPM-st[i].reqs, 0)
			if d.Requests.Limit == 0 || rem < d.Requests.Remaining {
				d.Requests = Quota{Limit: l.RPM, Remaining: rem, Reset: st[i].reset}
			}
		}
		if l.TPM > 0 {
			rem := max(l.TPM-st[i].tokens, 0)
			if d.Tokens.Limit == 0 || rem < d.Tokens.Remaining {
				d.Tokens = Quota{Limit: l.TPM, Remaining: rem, Reset: st[i].reset}
			}
		}
	}
}

func checkTokens(tokens int64) error {
	if tokens < 0 {
		return fmt.Errorf("ratelimit: negative token count %d", tokens)
	}
	return nil
}
