package budget

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is an Enforcer whose counters live in Redis, so that every replica
// sharing the server enforces the same budgets. Each call is one Lua script
// (EVALSHA), so one round trip, atomic across all the budgets it touches.
//
// Per scope and period there are two keys: a hash (spent, reserved, the seed
// marker and the once-per-period crossing marks) and a sorted set of leases
// (member "<amount>:<id>", score the expiry in microseconds of server time).
// Both expire a day after the period's last lease could. Every key starts
// with the hash tag "{prefix}", so on Redis Cluster all of them live in one
// slot and a script may touch any of them.
//
// Leases run on the server's clock (TIME inside the scripts; Redis 5 or
// later). Periods are
// named by the replica from its clock corrected by the last offset it saw;
// the admission script checks the name against server time and, when a skewed
// replica is on the wrong side of a boundary, says so and the replica
// retries with the server's time, so all replicas agree on every period.
//
// Amounts are exact integers in Redis; the admission check adds and compares
// them in Lua, whose numbers are doubles: exact up to 2^53 Nanos (about
// 9 million dollars) per period, a few Nanos of rounding beyond.
type Redis struct {
	client redis.UniversalClient
	keys   string // "{prefix}:bg:"
	lease  time.Duration
	clock  func() time.Time
	skew   atomic.Int64 // server time minus local time, in nanoseconds
}

// NewRedis returns an enforcer that keeps its counters in client under keys
// starting with "{prefix}:bg:". prefix must not contain braces.
func NewRedis(client redis.UniversalClient, prefix string, opts ...Option) *Redis {
	o := buildOptions(opts)
	return &Redis{client: client, keys: "{" + prefix + "}:bg:", lease: o.lease, clock: time.Now}
}

// luaLoad is shared by the scripts. load drops the expired leases of one
// counter and returns its spent amount, its reserved amount net of them,
// whether the hash existed, and how much the expired leases held; the caller
// folds that into its one HINCRBY of "reserved". Amounts change only by
// HINCRBY, so Redis keeps them as exact integers.
const luaLoad = `
local function load(h, z, now)
  local v = redis.call('HMGET', h, 'spent', 'reserved')
  local spent, reserved = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  local freed = 0
  if #gone > 0 then
    for _, m in ipairs(gone) do freed = freed + tonumber(string.match(m, '^(%d+):')) end
    redis.call('ZREMRANGEBYRANK', z, 0, #gone - 1)
  end
  return spent, reserved - freed, v[1] ~= false or v[2] ~= false, freed
end
local function int(x) return string.format('%d', x) end
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000000 + tonumber(tm[2])
`

// admitScript: KEYS are (hash, leases) per counter. ARGV are the worst case,
// the reservation id, the lease (µs) and the number of counters n; then per
// counter its period's start and end (µs) and its keys' expiry (Unix ms);
// then per budget its counter (1-based), limit and softness (0 or 1). It
// returns {-1, now} when a period does not contain the server's time,
// {0, now, refusing budget (1-based), spent, reserved} on refusal, {1, now}
// when it reserved.
var admitScript = redis.NewScript(luaLoad + `
local n = tonumber(ARGV[4])
for i = 1, n do
  if now < tonumber(ARGV[2+3*i]) or now >= tonumber(ARGV[3+3*i]) then return {-1, now} end
end
local worst = tonumber(ARGV[1])
local spent, reserved, existed, freed = {}, {}, {}, {}
for i = 1, n do spent[i], reserved[i], existed[i], freed[i] = load(KEYS[2*i-1], KEYS[2*i], now) end
local base = 4 + 3*n
for j = 1, (#ARGV - base) / 3 do
  local i = tonumber(ARGV[base+3*j-2])
  if ARGV[base+3*j] == '0' and spent[i] + reserved[i] + worst > tonumber(ARGV[base+3*j-1]) then
    for k = 1, n do
      if freed[k] > 0 then redis.call('HINCRBY', KEYS[2*k-1], 'reserved', int(-freed[k])) end
    end
    return {0, now, j, spent[i], reserved[i]}
  end
end
local member = ARGV[1] .. ':' .. ARGV[2]
local expires = now + tonumber(ARGV[3])
for i = 1, n do
  local h, z = KEYS[2*i-1], KEYS[2*i]
  redis.call('HINCRBY', h, 'reserved', int(worst - freed[i]))
  redis.call('ZADD', z, expires, member)
  redis.call('PEXPIREAT', z, ARGV[4+3*i])
  if not existed[i] then redis.call('PEXPIREAT', h, ARGV[4+3*i]) end
end
return {1, now}
`)

// settleScript: KEYS as for admitScript. ARGV are the worst case, the
// reservation id, the actual cost and n; then per counter its keys' expiry
// (Unix ms); then per budget its counter, limit and softness. It returns
// {spent, reserved} per counter, then the budgets (1-based) that reached
// their limit for the first time in the period.
var settleScript = redis.NewScript(luaLoad + `
local n = tonumber(ARGV[4])
local member = ARGV[1] .. ':' .. ARGV[2]
local out, spent = {}, {}
for i = 1, n do
  local h, z = KEYS[2*i-1], KEYS[2*i]
  local _, reserved, existed, freed = load(h, z, now)
  local mine = 0
  if redis.call('ZREM', z, member) == 1 then mine = tonumber(ARGV[1]) end
  if freed + mine > 0 then redis.call('HINCRBY', h, 'reserved', int(-(freed + mine))) end
  spent[i] = redis.call('HINCRBY', h, 'spent', ARGV[3])
  if not existed then redis.call('PEXPIREAT', h, ARGV[4+i]) end
  out[2*i-1] = spent[i]
  out[2*i] = reserved - mine
end
local base = 4 + n
for j = 1, (#ARGV - base) / 3 do
  local i = tonumber(ARGV[base+3*j-2])
  local limit = ARGV[base+3*j-1]
  if spent[i] >= tonumber(limit) and
     redis.call('HSETNX', KEYS[2*i-1], 'x' .. ARGV[base+3*j] .. ':' .. limit, 1) == 1 then
    out[#out+1] = j
  end
end
return out
`)

// seedScript: KEYS are the counter's hash; ARGV the amount and the key's
// expiry (Unix ms). It returns 1 if this was the period's first seed.
var seedScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], 'seeded', 1) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'spent', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
`)

// statusScript: KEYS are the counter's (hash, leases); it returns {spent,
// reserved}.
var statusScript = redis.NewScript(luaLoad + `
local s, r, _, freed = load(KEYS[1], KEYS[2], now)
if freed > 0 then redis.call('HINCRBY', KEYS[1], 'reserved', int(-freed)) end
return {s, r}
`)

// Admit implements Enforcer, in one round trip unless this replica's clock
// and the server's disagree about the period, which costs one more.
func (r *Redis) Admit(ctx context.Context, budgets []Budget, worstCase Nanos) (Decision, *Reservation, error) {
	var p *Pending
	for range 3 {
		if p = r.prepare(ctx, budgets, worstCase); p.done() {
			return p.empty()
		}
		d, res, retry, err := p.decode(admitScript.Run(ctx, r.client, p.keys, p.args...))
		if !retry {
			return d, res, err
		}
	}
	return Decision{}, nil, fmt.Errorf("budget: redis admit: the server's time keeps leaving the period (%s)", p.res.periods[0].start.Format(time.RFC3339))
}

// Queue adds an admission to pipe without sending it, for a caller that
// sends several checks (say this one and a rate limiter's) in one round
// trip. After pipe.Exec (whose error the caller may ignore: each command
// keeps its own), Pending.Result decodes the outcome.
func (r *Redis) Queue(ctx context.Context, pipe redis.Pipeliner, budgets []Budget, worstCase Nanos) *Pending {
	p := r.prepare(ctx, budgets, worstCase)
	if !p.done() {
		p.cmd = admitScript.EvalSha(ctx, pipe, p.keys, p.args...)
	}
	return p
}

// Pending is an admission queued on a pipeline.
type Pending struct {
	r        *Redis
	ctx      context.Context
	budgets  []Budget
	worst    Nanos
	err      error
	res      *Reservation
	keys     []string
	args     []any
	localNow time.Time
	cmd      *redis.Cmd
}

// Result returns the queued admission's outcome; call it after the pipeline
// ran. If the server did not have the script yet (NOSCRIPT: once after each
// server start or SCRIPT FLUSH) or named the period differently from this
// replica, the queued command did nothing and Result admits again on its own.
func (p *Pending) Result() (Decision, *Reservation, error) {
	if p.done() {
		return p.empty()
	}
	if redis.HasErrorPrefix(p.cmd.Err(), "NOSCRIPT") {
		return p.r.Admit(p.ctx, p.budgets, p.worst)
	}
	d, res, retry, err := p.decode(p.cmd)
	if retry {
		return p.r.Admit(p.ctx, p.budgets, p.worst)
	}
	return d, res, err
}

func (r *Redis) now() time.Time {
	return r.clock().Add(time.Duration(r.skew.Load()))
}

func (r *Redis) prepare(ctx context.Context, budgets []Budget, worst Nanos) *Pending {
	p := &Pending{r: r, ctx: ctx, budgets: budgets, worst: worst, localNow: r.clock()}
	ps, index, err := plan(budgets, worst, p.localNow.Add(time.Duration(r.skew.Load())))
	if err != nil {
		p.err = err
		return p
	}
	id := strconv.FormatUint(rand.Uint64(), 36)
	p.res = &Reservation{owner: r, worst: worst, budgets: slices.Clone(budgets), periods: ps, index: index, id: id}
	if len(ps) == 0 {
		return p
	}
	p.keys = make([]string, 0, 2*len(ps))
	p.args = make([]any, 0, 4+3*len(ps)+3*len(budgets))
	p.args = append(p.args, int64(worst), id, r.lease.Microseconds(), len(ps))
	for _, c := range ps {
		h, z := r.counterKeys(c)
		p.keys = append(p.keys, h, z)
		p.args = append(p.args, c.start.UnixMicro(), c.end.UnixMicro(), r.expireAt(c))
	}
	for i, b := range budgets {
		p.args = append(p.args, index[i]+1, int64(b.Limit), soft(b))
	}
	return p
}

// done reports whether the admission is decided without Redis: invalid, or
// with no budgets.
func (p *Pending) done() bool { return p.err != nil || len(p.res.periods) == 0 }

func (p *Pending) empty() (Decision, *Reservation, error) {
	if p.err != nil {
		return Decision{}, nil, p.err
	}
	return Decision{Allowed: true}, p.res, nil
}

// decode reads an admission's reply; retry reports that the server's time
// lies outside the periods this replica named, and corrects its offset.
func (p *Pending) decode(cmd *redis.Cmd) (d Decision, res *Reservation, retry bool, err error) {
	vals, err := cmd.Int64Slice()
	if err != nil {
		return Decision{}, nil, false, fmt.Errorf("budget: redis admit: %w", err)
	}
	switch {
	case len(vals) == 2 && vals[0] == -1:
		p.r.skew.Store(int64(time.UnixMicro(vals[1]).Sub(p.localNow)))
		return Decision{}, nil, true, nil
	case len(vals) == 2 && vals[0] == 1:
		return Decision{Allowed: true}, p.res, false, nil
	case len(vals) == 5 && vals[0] == 0 && vals[2] >= 1 && int(vals[2]) <= len(p.budgets):
		j := vals[2] - 1
		c := p.res.periods[p.res.index[j]]
		return Decision{Refused: Status{
			Budget: p.budgets[j], Spent: Nanos(vals[3]), Reserved: Nanos(vals[4]),
			PeriodStart: c.start, ResetsAt: c.end,
		}}, nil, false, nil
	}
	return Decision{}, nil, false, fmt.Errorf("budget: redis admit: unexpected reply %v", vals)
}

// Settle implements Enforcer in one round trip.
func (r *Redis) Settle(ctx context.Context, res *Reservation, actual Nanos) ([]Status, error) {
	if res == nil || res.owner != r {
		return nil, ErrForeignReservation
	}
	if err := checkCost(actual); err != nil {
		return nil, err
	}
	if !res.done.CompareAndSwap(false, true) {
		return nil, ErrSettled
	}
	n := len(res.periods)
	if n == 0 {
		return nil, nil
	}
	keys := make([]string, 0, 2*n)
	args := make([]any, 0, 4+n+3*len(res.budgets))
	args = append(args, int64(res.worst), res.id, int64(actual), n)
	for _, c := range res.periods {
		h, z := r.counterKeys(c)
		keys = append(keys, h, z)
		args = append(args, r.expireAt(c))
	}
	for i, b := range res.budgets {
		args = append(args, res.index[i]+1, int64(b.Limit), soft(b))
	}
	vals, err := settleScript.Run(ctx, r.client, keys, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("budget: redis settle: %w", err)
	}
	if len(vals) < 2*n {
		return nil, fmt.Errorf("budget: redis settle: unexpected reply %v", vals)
	}
	var crossed []Status
	for _, j := range vals[2*n:] {
		if j < 1 || int(j) > len(res.budgets) {
			return nil, fmt.Errorf("budget: redis settle: unexpected reply %v", vals)
		}
		i := res.index[j-1]
		c := res.periods[i]
		crossed = append(crossed, Status{
			Budget: res.budgets[j-1], Spent: Nanos(vals[2*i]), Reserved: Nanos(vals[2*i+1]),
			PeriodStart: c.start, ResetsAt: c.end,
		})
	}
	return crossed, nil
}

// Seed implements Enforcer in one round trip.
func (r *Redis) Seed(ctx context.Context, scope string, p Period, start time.Time, spent Nanos) (bool, error) {
	ps, _, err := plan([]Budget{{Scope: scope, Period: p}}, 0, start)
	if err != nil {
		return false, err
	}
	if err := checkCost(spent); err != nil {
		return false, err
	}
	h, _ := r.counterKeys(ps[0])
	n, err := seedScript.Run(ctx, r.client, []string{h}, int64(spent), r.expireAt(ps[0])).Int64()
	if err != nil {
		return false, fmt.Errorf("budget: redis seed: %w", err)
	}
	return n == 1, nil
}

// Status implements Enforcer in one round trip.
func (r *Redis) Status(ctx context.Context, b Budget) (Status, error) {
	ps, _, err := plan([]Budget{b}, 0, r.now())
	if err != nil {
		return Status{}, err
	}
	h, z := r.counterKeys(ps[0])
	vals, err := statusScript.Run(ctx, r.client, []string{h, z}).Int64Slice()
	if err != nil {
		return Status{}, fmt.Errorf("budget: redis status: %w", err)
	}
	if len(vals) != 2 {
		return Status{}, fmt.Errorf("budget: redis status: unexpected reply %v", vals)
	}
	return Status{Budget: b, Spent: Nanos(vals[0]), Reserved: Nanos(vals[1]), PeriodStart: ps[0].start, ResetsAt: ps[0].end}, nil
}

func (r *Redis) counterKeys(c period) (hash, leases string) {
	suffix := c.kind.code(c.start) + ":" + c.scope
	return r.keys + "s:" + suffix, r.keys + "l:" + suffix
}

// expireAt is when a counter's keys may go: a day after the last lease
// taken in its period could have expired.
func (r *Redis) expireAt(c period) int64 {
	return c.end.Add(r.lease + 24*time.Hour).UnixMilli()
}

func soft(b Budget) int {
	if b.Soft {
		return 1
	}
	return 0
}
