package governance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/junctionhq/junction/internal/governance/budget"
	"github.com/junctionhq/junction/internal/governance/ratelimit"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Request is what admission needs to know about a call.
type Request struct {
	Subject
	// KeyRPM and KeyTPM are the key's own limits; when either is set they
	// replace the config's limits of the key alone ("key:*", "key:ID").
	KeyRPM, KeyTPM int64
	// Input is an upper bound of the prompt's tokens (InputBound).
	Input int64
	// MaxOutput is the request's max_tokens; 0 when it names none, and
	// negative for calls that produce no output tokens (embeddings).
	MaxOutput int64
	// Spend returns the most in input and out output tokens may cost on
	// any deployment the call may reach (Price.Cost of the dearest, or a
	// sum when a route bills several answers). It is called only when a
	// budget applies; nil means the call is free.
	Spend func(in, out int64) budget.Nanos
}

// Admission is one admitted (or refused) request's hold on its limits and
// budgets. Record each billed call the request makes, then Done once.
type Admission struct {
	g        *Governor
	ticket   *ratelimit.Ticket
	res      *budget.Reservation
	policy   *policy
	budgets  []budget.Budget // what res holds
	rules    []int           // where each of budgets comes from, in policy.budgets
	decision ratelimit.Decision
	limited  bool

	// MaxTokens, when positive, is the max_tokens the call must send
	// upstream: the request named none and a hard budget reserved this
	// much output for it.
	MaxTokens int

	tokens atomic.Int64
	cost   atomic.Int64
	done   atomic.Bool
}

// SetHeaders writes OpenAI's x-ratelimit-* headers (and, on a refusal
// waiting can cure, Retry-After) for the rate limits the request met.
func (a *Admission) SetHeaders(h http.Header) {
	if a != nil && a.limited {
		a.decision.SetHeaders(h)
	}
}

// Record adds one billed upstream call of the request: its tokens (input
// plus output) and its cost in USD (nil when unpriced).
func (a *Admission) Record(tokens int, costUSD *float64) {
	if a == nil {
		return
	}
	a.tokens.Add(int64(tokens))
	if costUSD != nil && *costUSD > 0 {
		a.cost.Add(int64(budget.USD(*costUSD)))
	}
}

// Done settles the request: its budgets are charged what Record added and
// released from the worst case; its rate limits keep the real token count.
// Calls after the first do nothing.
func (a *Admission) Done() {
	if a == nil || !a.done.CompareAndSwap(false, true) || (a.ticket == nil && a.res == nil) {
		return
	}
	g := a.g
	if g.settles != nil && g.queue(func() bool {
		select {
		case g.settles <- a:
			return true
		default: // the workers are behind: settle here rather than wait
			return false
		}
	}) {
		return
	}
	g.settle(a)
}

// queue runs send unless Close has closed the queues, and reports what
// send did.
func (g *Governor) queue(send func() bool) bool {
	g.queueMu.RLock()
	defer g.queueMu.RUnlock()
	return !g.queuesClosed && send()
}

// settle charges an admission's real cost and tokens and hands budget
// crossings to the webhooks.
func (g *Governor) settle(a *Admission) {
	if g.client != nil {
		g.settleBatch([]*Admission{a})
		return
	}
	ctx := context.Background()
	if a.res != nil {
		crossed, err := g.budgets.Settle(ctx, a.res, budget.Nanos(a.cost.Load()))
		if err != nil {
			g.log.Warn("governance: budget settlement failed; the reservation stands until its lease ends", "err", err)
		}
		for _, st := range crossed {
			g.crossed(a, st)
		}
	}
	if a.ticket != nil {
		if err := g.limiter.Settle(ctx, a.ticket, a.tokens.Load()); err != nil {
			g.log.Warn("governance: rate-limit settlement failed; the estimate stands", "err", err)
		}
	}
}

// Admit checks every budget and rate limit that applies to r and, if all
// of them have room, reserves the worst case on each. A refusal is an
// *llm.Error (429) that names the budget or limit; the Admission is
// returned with it for the rate-limit headers. An Admission is nil when
// nothing applies.
func (g *Governor) Admit(ctx context.Context, r *Request) (*Admission, error) {
	p := g.policy.Load()
	subj := &r.Subject

	// bs are the budgets that apply, the leased ones (admitted from
	// slices) last, from nb on; rules says where each comes from.
	var bbuf [8]budget.Budget
	var ibuf [8]int
	bs, rules := bbuf[:0], ibuf[:0]
	hard, nb := false, 0
	for _, leased := range []bool{false, true} {
		for i := range p.budgets {
			rule := &p.budgets[i]
			if rule.leased != leased {
				continue
			}
			if scope, ok := rule.scope.Match(subj); ok {
				bs = append(bs, budget.Budget{Scope: scope, Period: rule.period, Limit: rule.limit, Soft: rule.soft})
				rules = append(rules, i)
				hard = hard || !rule.soft
			}
		}
		if !leased {
			nb = len(bs)
		}
	}
	var lbuf, hbuf [8]ratelimit.Limit
	ls, hot := p.limitsFor(r, lbuf[:0], hbuf[:0])
	capa := p.capacity[subj.Model]
	if len(bs) == 0 && len(ls) == 0 && len(hot) == 0 && capa == nil {
		return nil, nil
	}

	a := &Admission{g: g, policy: p}
	out := r.MaxOutput
	switch {
	case out < 0:
		out = 0
	case out == 0:
		out = p.maxTokens
		if hard {
			a.MaxTokens = int(out)
		}
	}
	tokens := budget.SumTokens(r.Input, out)
	var worst budget.Nanos
	if len(bs) > 0 {
		if r.Spend != nil {
			worst = r.Spend(r.Input, out)
		}
		if err := g.ensureSeeded(ctx, p, bs, rules, time.Now()); err != nil {
			return nil, g.unavailable(err)
		}
	}

	n := len(ls)
	var pool, reserved ratelimit.Limit
	if capa != nil {
		pool = capa.pool
		var ok bool
		if reserved, ok = capa.reserved[subj.Team]; ok {
			ls = append(ls, reserved) // the team's share first
		} else {
			ls = append(ls, pool)
		}
	}
	o, err := g.admitOnce(ctx, ls, hot, tokens, bs[:nb], bs[nb:], worst)
	if err == nil && !o.admitted && o.bd.Allowed && reserved.Scope != "" && o.d.Limit.Scope == reserved.Scope {
		// The team's share is used up (or too small for this request):
		// the shared pool may still have room.
		ls = append(ls[:n], pool)
		o, err = g.admitOnce(ctx, ls, hot, tokens, bs[:nb], bs[nb:], worst)
	}
	if err != nil {
		return nil, g.unavailable(err)
	}
	a.decision, a.limited = o.d, len(ls)+len(hot) > 0
	if !o.admitted {
		if !o.bd.Allowed {
			return a, budgetError(o.bd.Refused, worst)
		}
		return a, rateError(o.d, tokens)
	}
	a.ticket, a.res = o.t, o.res
	if o.res != nil {
		a.budgets, a.rules = append([]budget.Budget(nil), bs...), append([]int(nil), rules...)
	}
	return a, nil
}

// limitsFor appends the rate limits that apply to r: to hot those
// admitted from slices (leases), to ls the others.
func (p *policy) limitsFor(r *Request, ls, hot []ratelimit.Limit) ([]ratelimit.Limit, []ratelimit.Limit) {
	own := r.KeyRPM > 0 || r.KeyTPM > 0
	for i := range p.limits {
		l := &p.limits[i]
		if own && l.scope.keyOnly() {
			continue
		}
		if scope, ok := l.scope.Match(&r.Subject); ok {
			if l.leased {
				hot = append(hot, ratelimit.Limit{Scope: scope, RPM: l.rpm, TPM: l.tpm})
			} else {
				ls = append(ls, ratelimit.Limit{Scope: scope, RPM: l.rpm, TPM: l.tpm})
			}
		}
	}
	if own {
		l := ratelimit.Limit{Scope: "key:" + r.Key, RPM: r.KeyRPM, TPM: r.KeyTPM}
		if p.ownLeased {
			hot = append(hot, l)
		} else {
			ls = append(ls, l)
		}
	}
	return ls, hot
}

// outcome is one attempt at admission under limits and budgets together.
type outcome struct {
	admitted bool
	d        ratelimit.Decision
	t        *ratelimit.Ticket
	bd       budget.Decision
	res      *budget.Reservation
}

// admitOnce admits under the limits ls and hotL and the budgets bs and
// hotB all-or-nothing: when one side refuses, what the other reserved is
// given back. The hot ones are admitted from slices where leases are on.
// On Redis both checks travel in one pipeline, one round trip per node;
// the give-back, on refusals only, is one more.
func (g *Governor) admitOnce(ctx context.Context, ls, hotL []ratelimit.Limit, tokens int64, bs, hotB []budget.Budget, worst budget.Nanos) (outcome, error) {
	o := outcome{d: ratelimit.Decision{Allowed: true}, bd: budget.Decision{Allowed: true}}
	for _, l := range ls {
		if l.RPM == 0 && l.TPM == 0 {
			// A pool with nothing left once reservations are taken out.
			o.d = ratelimit.Decision{Limit: l, TooLarge: true}
			return o, nil
		}
	}
	if g.client != nil {
		return g.admitRedis(ctx, o, ls, hotL, tokens, bs, hotB, worst)
	}
	// In memory there are no slices (leases need Redis).
	ls = append(ls, hotL...)
	bs = append(bs, hotB...)
	var errL, errB error
	if len(ls) > 0 {
		o.d, o.t, errL = g.limiter.Admit(ctx, ls, tokens)
	}
	if errL == nil && o.d.Allowed && len(bs) > 0 {
		o.bd, o.res, errB = g.budgets.Admit(ctx, bs, worst)
	}
	if errL == nil && errB == nil && o.d.Allowed && o.bd.Allowed {
		o.admitted = true
		return o, nil
	}
	if o.t != nil {
		if err := g.limiter.Cancel(ctx, o.t); err != nil {
			g.log.Warn("governance: could not give back a refused admission's rate limits", "err", err)
		}
		o.t = nil
	}
	return o, errors.Join(errL, errB)
}

func (g *Governor) unavailable(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	g.stats.unavailable.Add(1)
	g.log.Error("governance: admission failed", "err", err)
	return &llm.Error{Status: http.StatusServiceUnavailable, Type: llm.ErrOverloaded, Code: "governance_unavailable",
		Message: "budgets and rate limits cannot be checked right now (their store is unreachable or did not answer in time); nothing is admitted until they can",
		Err:     fmt.Errorf("%w: %w", errUnavailable, err)}
}

// budgetError is the refusal of a hard budget: 429 with the budget, its
// limit, what is spent and held, and when it resets; Retry-After is that
// reset.
func budgetError(st budget.Status, worst budget.Nanos) *llm.Error {
	may := "may cost up to " + worst.String()
	if worst == budget.MaxNanos {
		may = "may cost more than any budget holds (lower max_tokens)"
	}
	e := &llm.Error{Status: http.StatusTooManyRequests, Type: llm.ErrBudgetExceeded, Code: "budget_exceeded",
		Message: st.Message() + "; this request " + may}
	if wait := time.Until(st.ResetsAt); wait > 0 {
		e.RetryAfter = strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10)
	}
	return e
}

// rateError is the refusal of a rate limit: 429 naming the limit, with
// Retry-After when waiting can help.
func rateError(d ratelimit.Decision, tokens int64) *llm.Error {
	l := d.Limit
	e := &llm.Error{Status: http.StatusTooManyRequests, Type: llm.ErrRateLimit, Code: "rate_limit_exceeded"}
	if d.TooLarge {
		if l.TPM == 0 {
			e.Message = fmt.Sprintf("rate limit %s: no capacity is left for this request (all of it is reserved for teams)", l.Scope)
			return e
		}
		e.Message = fmt.Sprintf("request too large for rate limit %s: it may use %d tokens (the prompt's upper bound plus max_tokens), "+
			"more than the %d tokens per minute allowed; lower max_tokens or shorten the prompt", l.Scope, tokens, l.TPM)
		return e
	}
	e.Message = fmt.Sprintf("rate limit %s reached (%s per minute); try again in %s", l.Scope, describeLimit(l), roundUp(d.RetryAfter))
	e.RetryAfter = strconv.FormatInt(max(int64((d.RetryAfter+time.Second-1)/time.Second), 1), 10)
	return e
}

func describeLimit(l ratelimit.Limit) string {
	switch {
	case l.RPM > 0 && l.TPM > 0:
		return fmt.Sprintf("%d requests and %d tokens", l.RPM, l.TPM)
	case l.RPM > 0:
		return fmt.Sprintf("%d requests", l.RPM)
	}
	return fmt.Sprintf("%d tokens", l.TPM)
}

func roundUp(d time.Duration) time.Duration {
	return (d + time.Millisecond - 1) / time.Millisecond * time.Millisecond
}
