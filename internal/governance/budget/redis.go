package budget

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/junctionhq/junction/internal/governance/script"
)

// LeaseBuckets is how many parts a lease is cut into on Redis: a
// reservation is held until the end of the bucket its lease ends in.
const LeaseBuckets = 60

// Redis is an Enforcer whose counters live in Redis, so that every replica
// sharing the server (or Redis Cluster) enforces the same budgets.
//
// # Data
//
// Each scope's period is one hash, "{prefix:scope}:bg:<period>": spent
// ("s"), reserved ("r"), the seed marker, the once-per-period crossing
// marks, and the reservations by when their lease ends, cut into
// LeaseBuckets buckets (15 s for the default lease; "l<n>", n the bucket's
// number since the epoch) with the oldest bucket's number ("o"). An
// admission reads five fields and writes three in two commands;
// reservations whose lease ran out are released at most once per bucket,
// by whichever call comes first. A reservation is held until the end of
// its lease's bucket, up to 1/60 of a lease longer than asked. The hash
// expires a day after the period's last lease could.
//
// # Slots
//
// Each scope's hash tag is its own, so on a Redis Cluster unrelated scopes
// live in different slots. An admission runs one Lua script per slot
// group (all counters on a standalone server; each scope's on a cluster),
// all in one pipeline: one round trip per node, in parallel. Each script
// is atomic for its counters; when one refuses, what the others reserved
// is released again (a second round trip, on refusals only), so an
// admission stays all-or-nothing. Meanwhile a concurrent request may be
// refused for a reservation that is then released: the give-back errs
// toward refusing, never toward spending past a hard limit.
//
// Leases run on the server's clock (TIME inside the scripts; Redis 5 or
// later). Periods are named by the replica from its clock corrected by
// the last offset it saw; the admission script checks the name against
// server time and, when a skewed replica is on the wrong side of a
// boundary, says so and the replica retries with the server's time, so
// all replicas agree on every period.
//
// Spent is kept by HINCRBY, an exact integer; the admission check adds
// and compares amounts in Lua, whose numbers are doubles: exact up to 2^53
// Nanos (about 9 million dollars) per period, a few Nanos of rounding
// beyond.
type Redis struct {
	client  redis.UniversalClient
	cluster bool
	tag     string // "{prefix:"
	lease   time.Duration
	bucket  time.Duration
	clock   func() time.Time
	skew    atomic.Int64 // server time minus local time, in nanoseconds
}

// NewRedis returns an enforcer that keeps its counters in client, a
// *redis.Client (one server) or a *redis.ClusterClient, under keys
// starting with "{prefix:". prefix must not contain braces.
func NewRedis(client redis.UniversalClient, prefix string, opts ...Option) *Redis {
	o := buildOptions(opts)
	_, cluster := client.(*redis.ClusterClient)
	return &Redis{client: client, cluster: cluster, tag: "{" + prefix + ":", lease: o.lease,
		bucket: max(o.lease/LeaseBuckets, time.Microsecond), clock: time.Now}
}

// LuaLeases is a Lua chunk that defines leases(lease, lw, now, ko): the
// budget side of the admission scripts, over the hashes KEYS[ko+1],
// KEYS[ko+2], ... with a lease of lease and lease buckets of lw µs at the
// server time now (µs). It returns a table b: b.decide(a) reads one
// request's counters and budgets at ARGV[a] (see admitScript) and decides
// it, reserving nothing, returning the decision and where the next
// request starts; b.commit(q, ok, out) appends q's reply to out and
// reserves when it was allowed and ok (false: another part of the
// admission refused, and this one reports itself allowed having reserved
// nothing); b.finish() writes back every hash the call touched.
// b.release(h) drops a counter's reservations whose lease ran out and
// returns its spent and reserved amounts and the oldest bucket left; it is
// called when the oldest bucket has ended (b.gone or before), at most once
// per bucket. The governance package combines it with rate limits' chunk
// in one script per slot group.
const LuaLeases = `
local function leases(lease, lw, now, ko)
local gone = math.floor(now / lw)
local function f(x) return string.format('%d', x) end
-- A value longer than hash-max-listpack-value (64) makes Redis keep a
-- hash as a hash table, where a field costs the same to find however
-- many buckets the hash holds; as a listpack every field is a linear scan.
local pad = '------------------------------------------------------------------------'

local function release(h)
  local all = redis.call('HGETALL', h)
  local dead, s, r, o = {}, 0, 0, nil
  for i = 1, #all, 2 do
    local k = all[i]
    if k == 's' then
      s = all[i+1] + 0
    elseif string.sub(k, 1, 1) == 'l' then
      local b = tonumber(string.sub(k, 2))
      if b <= gone then
        dead[#dead+1] = k
      else
        r = r + all[i+1]
        if not o or b < o then o = b end
      end
    end
  end
  if o then
    redis.call('HSET', h, 'r', r, 'o', o)
  else
    redis.call('HSET', h, 'r', r)
    dead[#dead+1] = 'o'
  end
  if #dead > 0 then redis.call('HDEL', h, unpack(dead)) end
  return s, r, o
end

local e = math.floor((now + lease + lw - 1) / lw)
local lf = 'l' .. f(e)
local st = {}
local function open(ki, expire)
  local h = KEYS[ki]
  local v = redis.call('HMGET', h, 's', 'r', 'o', 'p', lf)
  local c = {h = h, s = (v[1] or 0) + 0, r = (v[2] or 0) + 0, o = v[3] and v[3] + 0, l = (v[5] or 0) + 0, new = not v[4],
    expire = expire, dirty = false, wo = false}
  if c.o and c.o <= gone then c.s, c.r, c.o = release(h) end
  return c
end

-- A decision q holds, per counter i, its state, the amount to reserve
-- and the least that will do at q[3i-2] to q[3i].
local function decide(a)
  local n, m = ARGV[a] + 0, ARGV[a+1] + 0
  a = a + 2
  local q = {n = n, status = 1, refused = 0, by = false}
  for i = 1, n do
    if now < ARGV[a+1] + 0 or now >= ARGV[a+2] + 0 then q.status = -1 end
    local ki = ko + ARGV[a]
    local c = st[ki]
    if not c then
      c = open(ki, ARGV[a+3])
      st[ki] = c
    end
    local x = 3 * i
    q[x-2], q[x-1], q[x] = c, ARGV[a+4] + 0, ARGV[a+5] + 0
    a = a + 6
  end
  for j = 1, m do
    if q.status == 1 and ARGV[a+2] == '0' then
      local x = 3 * ARGV[a]
      local c = q[x-2]
      local room = ARGV[a+1] - c.s - c.r
      if room < q[x-1] then q[x-1] = room end
      if q[x-1] < q[x] then q.status, q.refused, q.by = 0, j, c end
    end
    a = a + 3
  end
  return q, a
end

local function commit(q, ok, out)
  local o = #out
  out[o+1], out[o+2], out[o+3], out[o+4], out[o+5] = q.status, now, q.refused, 0, 0
  if q.status == 0 then out[o+4], out[o+5] = q.by.s, q.by.r end
  local take = q.status == 1 and ok
  for i = 1, q.n do
    local g = 0
    if take then
      local x = 3 * i
      local c = q[x-2]
      g = q[x-1]
      c.r, c.l, c.dirty = c.r + g, c.l + g, true
      if not c.o or e < c.o then c.o, c.wo = e, true end
    end
    out[o+5+i] = g
  end
end

local function finish()
  for _, c in pairs(st) do
    if c.dirty then
      -- Numbers go as integers formatted here: cheaper than Redis's
      -- %.17g, and the same digits. o is written when it moved.
      if c.new then
        redis.call('HSET', c.h, 'r', f(c.r), 'o', f(c.o), lf, f(c.l), 'p', pad)
        redis.call('PEXPIREAT', c.h, c.expire)
      elseif c.wo then
        redis.call('HSET', c.h, 'r', f(c.r), 'o', f(c.o), lf, f(c.l))
      else
        redis.call('HSET', c.h, 'r', f(c.r), lf, f(c.l))
      end
    end
  end
end

return {decide = decide, commit = commit, finish = finish, release = release, gone = gone, f = f}
end
`

// admitScript admits many requests in one call: a replica sends what
// arrives while its last call is out (group commit), so that a busy
// budget's hash is read and written once per call, not once per request.
// KEYS are the counters' hashes. ARGV are the lease and its bucket width
// (µs), the number of requests and, per request, its number of counters n
// and of budgets m; per counter its hash (index in KEYS), its period's
// start and end (µs), the hash's expiry (Unix ms), and the amount wanted
// and the least that will do; per budget its counter (1-based within the
// request), limit and softness (0 or 1). Requests are decided in order,
// each on every counter or on none. It returns, per request, {status,
// now, refusing budget (1-based within the request), spent, reserved,
// then per counter the amount reserved}: status -1 when a period does not
// contain the server's time, 0 on refusal, 1 when it reserved.
var admitScript = redis.NewScript(LuaLeases + script.Alone("leases"))

// settleScript: KEYS are counters' hashes. ARGV after the lease and its
// bucket width are, per counter, its hash's expiry (Unix ms), the amount
// spent, a count m of releases and m pairs (lease bucket, amount), and a
// count k of budgets and k pairs (limit, softness). It returns per counter
// its spent and reserved amounts, then for each of its budgets 1 if this
// settlement took spent to the limit first in the period, else 0.
var settleScript = redis.NewScript(LuaLeases + script.Now + `
local L = leases(ARGV[1] + 0, ARGV[2] + 0, now, 0)
local gone, f = L.gone, L.f
local out = {}
local a = 3
for i = 1, #KEYS do
  local h = KEYS[i]
  local expire, spend, m = ARGV[a], ARGV[a+1] + 0, ARGV[a+2] + 0
  a = a + 3
  local fields, rel = {'s', 'r', 'o', 'p'}, {}
  for j = 1, m do
    rel[j] = {ARGV[a] + 0, ARGV[a+1] + 0}
    fields[#fields+1] = 'l' .. f(rel[j][1])
    a = a + 2
  end
  local v = redis.call('HMGET', h, unpack(fields))
  local s, r, o = (v[1] or 0) + 0, (v[2] or 0) + 0, v[3] and v[3] + 0
  local existed = v[1] or v[2] or v[4]
  if o and o <= gone then
    s, r, o = L.release(h)
    v = redis.call('HMGET', h, unpack(fields))
  end
  local w = {}
  for j, d in ipairs(rel) do
    local held = v[4 + j]
    if d[1] > gone and held then
      r = r - d[2]
      w[#w+1] = fields[4 + j]
      w[#w+1] = held - d[2]
    end
  end
  if #w > 0 then
    w[#w+1] = 'r'
    w[#w+1] = r
    redis.call('HSET', h, unpack(w))
  end
  if spend > 0 or not existed then s = redis.call('HINCRBY', h, 's', f(spend)) end
  if not existed then redis.call('PEXPIREAT', h, expire) end
  out[#out+1] = s
  out[#out+1] = r
  local k = ARGV[a] + 0
  a = a + 1
  for j = 1, k do
    local limit, soft = ARGV[a], ARGV[a+1]
    a = a + 2
    if s >= limit + 0 and redis.call('HSETNX', h, 'x' .. soft .. ':' .. limit, 1) == 1 then
      out[#out+1] = 1
    else
      out[#out+1] = 0
    end
  end
end
return out
`)

// seedScript: KEYS are the counter's hash; ARGV the amount and the key's
// expiry (Unix ms). It returns 1 if this was the period's first seed.
var seedScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], 'seeded', 1) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 's', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
`)

// statusScript: KEYS are the counter's hash; it returns {spent, reserved}.
var statusScript = redis.NewScript(LuaLeases + script.Now + `
local L = leases(ARGV[1] + 0, ARGV[2] + 0, now, 0)
local v = redis.call('HMGET', KEYS[1], 's', 'r', 'o')
local s, r, o = (v[1] or 0) + 0, (v[2] or 0) + 0, v[3] and v[3] + 0
if o and o <= L.gone then s, r = L.release(KEYS[1]) end
return {s, r}
`)

// Admit implements Enforcer, in one round trip per Redis node (one more
// when a slot refused and others must release, or when this replica's
// clock and the server's disagree about the period).
func (r *Redis) Admit(ctx context.Context, budgets []Budget, worstCase Nanos) (Decision, *Reservation, error) {
	var p *Pending
	for range 3 {
		pipe := r.client.Pipeline()
		p = r.Queue(ctx, pipe, budgets, worstCase)
		if !p.done() {
			_, _ = pipe.Exec(ctx) // each queued command keeps its own error
		}
		d, res, retry, err := p.decode()
		if err != nil || !d.Allowed {
			if b := p.GiveBack(); b != nil {
				if _, gerr := b.Send(ctx); gerr != nil {
					err = errors.Join(err, gerr)
				}
			}
		}
		if !retry {
			return d, res, err
		}
	}
	return Decision{}, nil, fmt.Errorf("budget: redis admit: the server's time keeps leaving the period (%s)", p.res.periods[0].start.Format(time.RFC3339))
}

// Queue adds an admission to pipe without sending it, for a caller that
// sends several checks (say this one and a rate limiter's) in one round
// trip. After pipe.Exec (whose error the caller may ignore: each command
// keeps its own), Pending.Result decodes the outcome; Pending.GiveBack
// returns what it reserved, to be sent, when it is not to stand.
func (r *Redis) Queue(ctx context.Context, pipe redis.Pipeliner, budgets []Budget, worstCase Nanos) *Pending {
	p := r.Prepare(budgets, worstCase)
	r.QueueAll(ctx, pipe, []*Pending{p})
	return p
}

// Prepare readies an admission to be queued, with others, by QueueAll.
func (r *Redis) Prepare(budgets []Budget, worstCase Nanos) *Pending {
	return r.prepare(budgets, func(period) (Nanos, Nanos) { return worstCase, worstCase }, worstCase)
}

// prepare readies an admission that reserves, on each counter, as much as
// want says down to the least it says will do.
func (r *Redis) prepare(budgets []Budget, want func(period) (Nanos, Nanos), worst Nanos) *Pending {
	p := &Pending{r: r, budgets: budgets, worst: worst, localNow: r.clock()}
	ps, index, err := plan(budgets, worst, p.localNow.Add(time.Duration(r.skew.Load())))
	if err != nil {
		p.err = err
		return p
	}
	p.res = &Reservation{owner: r, worst: worst, budgets: slices.Clone(budgets), periods: ps, index: index}
	p.wants = make([][2]Nanos, len(ps))
	for i, c := range ps {
		p.wants[i][0], p.wants[i][1] = want(c)
	}
	return p
}

// QueueAll adds admissions made by Prepare to pipe, in one script per
// slot group for all of them (group commit): one for everything on a
// standalone server, one per scope on a cluster (a scope's counters share
// its hash tag). A busy budget's hash is then read and written once for
// all of them.
func (r *Redis) QueueAll(ctx context.Context, pipe redis.Pipeliner, ps []*Pending) {
	for _, sc := range r.Groups(ctx, ps) {
		args := append(make([]any, 0, 3+len(sc.reqs)*16), r.lease.Microseconds(), r.bucket.Microseconds(), len(sc.reqs))
		for _, req := range sc.reqs {
			args = append(args, req...)
		}
		sc.Args = args
		sc.Queue(ctx, pipe, admitScript)
	}
}

// Groups splits admissions made by Prepare into slot groups (one for
// everything on a standalone server, one per scope on a cluster), for a
// caller that sends each group in a script of its own making (see
// LuaLeases) and hands its replies to Group.SetReply.
func (r *Redis) Groups(ctx context.Context, ps []*Pending) []*Group {
	cmds := map[string]*Group{}
	var order []*Group
	for _, p := range ps {
		p.ctx = ctx
		if p.done() {
			continue
		}
		p.parts = p.parts[:0]
		byCmd := map[*Group]int{}
		for i, c := range p.res.periods {
			g := ""
			if r.cluster {
				g = c.scope
			}
			sc := cmds[g]
			if sc == nil {
				sc = &Group{Group: script.NewGroup(g), r: r}
				cmds[g] = sc
				order = append(order, sc)
			}
			at, ok := byCmd[sc]
			if !ok {
				at = len(p.parts)
				byCmd[sc] = at
				p.parts = append(p.parts, script.Part[*Group]{Group: sc, Req: len(sc.reqs)})
				sc.reqs = append(sc.reqs, nil)
			}
			pt := &p.parts[at]
			pt.Idx = append(pt.Idx, i)
		}
		for _, pt := range p.parts {
			sc := pt.Group
			local := make(map[int]int, len(pt.Idx)) // counter -> its place in the part, 1-based
			var entry []any
			var nb int
			for j, i := range pt.Idx {
				c := p.res.periods[i]
				local[i] = j + 1
				entry = append(entry, sc.Key(r.key(c)), c.start.UnixMicro(), c.end.UnixMicro(), r.expireAt(c), int64(p.wants[i][0]), int64(p.wants[i][1]))
			}
			for b, i := range p.res.index {
				if j, ok := local[i]; ok {
					entry = append(entry, j, int64(p.budgets[b].Limit), soft(p.budgets[b]))
					nb++
				}
			}
			sc.reqs[pt.Req] = append([]any{len(pt.Idx), nb}, entry...)
			sc.Sizes = append(sc.Sizes, 0)
			sc.Sizes[pt.Req] = len(pt.Idx)
		}
	}
	return order
}

// Group is the budget part of a batch of admissions in one slot group,
// sent in one script.
type Group struct {
	script.Group
	r    *Redis
	reqs [][]any // each request's arguments
}

// Params returns the lease and its bucket width in µs, leases' first two
// arguments.
func (c *Group) Params() (lease, bucket int64) {
	return c.r.lease.Microseconds(), c.r.bucket.Microseconds()
}

// Request returns request q's arguments, as decide reads them at ARGV[a].
func (c *Group) Request(q int) []any { return c.reqs[q] }

// ReplyLen returns how many integers commit appends for request q.
func (c *Group) ReplyLen(q int) int { return 5 + c.Sizes[q] }

// SetReply hands the group its replies, every request's in order, or the
// error that stopped them; call it before the admissions' Result.
func (c *Group) SetReply(vals []int64, err error) { c.SetReplies(vals, err, c.ReplyLen) }

// reply returns request q's reply, from SetReply or else from the group's
// own script.
func (c *Group) reply(ctx context.Context, q int) ([]int64, error) {
	return c.Reply(ctx, c.r.client, admitScript, q, c.ReplyLen)
}

// Slots returns, for each slot group the admission reaches, the group,
// the admission's request number there and which of its counters it holds,
// after Groups or QueueAll. The slice is the admission's own: read it,
// do not change it.
func (p *Pending) Slots() []script.Part[*Group] { return p.parts }

// Pending is an admission queued on a pipeline.
type Pending struct {
	r        *Redis
	ctx      context.Context
	budgets  []Budget
	worst    Nanos
	err      error
	res      *Reservation
	wants    [][2]Nanos // per counter: wanted, least
	localNow time.Time
	parts    []script.Part[*Group]
	// After decode: what each counter reserved (zero where none was), in
	// which lease bucket, and whether the whole admission went through.
	granted []Nanos
	buckets []int64
	decided bool
	allowed bool
}

// Result returns the queued admission's outcome; call it after the
// pipeline ran. If the server named the period differently from this
// replica, Result gives back what was reserved and admits again on its
// own.
func (p *Pending) Result() (Decision, *Reservation, error) {
	d, res, retry, err := p.decode()
	if retry {
		if b := p.GiveBack(); b != nil {
			if _, gerr := b.Send(p.ctx); gerr != nil {
				return Decision{}, nil, gerr
			}
			p.granted = nil
		}
		return p.r.Admit(p.ctx, p.budgets, p.worst)
	}
	return d, res, err
}

// done reports whether the admission is decided without Redis: invalid, or
// with no budgets.
func (p *Pending) done() bool { return p.err != nil || len(p.res.periods) == 0 }

// decode reads an admission's replies; retry reports that the server's
// time lies outside the periods this replica named, and corrects its
// offset.
func (p *Pending) decode() (d Decision, res *Reservation, retry bool, err error) {
	if p.err != nil {
		return Decision{}, nil, false, p.err
	}
	if len(p.res.periods) == 0 {
		return Decision{Allowed: true}, p.res, false, nil
	}
	n := len(p.res.periods)
	p.granted = make([]Nanos, n)
	p.buckets = make([]int64, n)
	p.decided = true
	var errs []error
	refusedBy := -1
	bw := p.r.bucket.Microseconds()
	leaseUS := p.r.lease.Microseconds()
	for _, pt := range p.parts {
		vals, err := pt.Group.reply(p.ctx, pt.Req)
		switch {
		case err != nil:
			errs = append(errs, err)
		case vals[0] == -1:
			p.r.skew.Store(int64(time.UnixMicro(vals[1]).Sub(p.localNow)))
			retry = true
		case vals[0] == 1:
			e := (vals[1] + leaseUS + bw - 1) / bw
			for j, i := range pt.Idx {
				p.granted[i] = Nanos(vals[5+j])
				p.buckets[i] = e
			}
		case vals[0] == 0 && vals[2] >= 1:
			// vals[2] counts the budgets of this part, in order.
			j := p.partBudget(pt.Idx, int(vals[2]))
			if j < 0 {
				errs = append(errs, fmt.Errorf("unexpected reply %v", vals))
				break
			}
			if refusedBy < 0 || j < refusedBy {
				refusedBy = j
				c := p.res.periods[p.res.index[j]]
				d.Refused = Status{Budget: p.budgets[j], Spent: Nanos(vals[3]), Reserved: Nanos(vals[4]),
					PeriodStart: c.start, ResetsAt: c.end}
			}
		default:
			errs = append(errs, fmt.Errorf("unexpected reply %v", vals))
		}
	}
	if len(errs) > 0 {
		return Decision{}, nil, false, fmt.Errorf("budget: redis admit: %w", errors.Join(errs...))
	}
	if retry {
		return Decision{}, nil, true, nil
	}
	if refusedBy >= 0 {
		return d, nil, false, nil
	}
	p.allowed = true
	p.res.amounts, p.res.buckets = p.granted, p.buckets
	return Decision{Allowed: true}, p.res, false, nil
}

// partBudget maps the k-th budget (1-based) that the part over counters
// idx was sent to its index in p.budgets; -1 when there is none.
func (p *Pending) partBudget(idx []int, k int) int {
	for b, i := range p.res.index {
		if slices.Contains(idx, i) {
			if k--; k == 0 {
				return b
			}
		}
	}
	return -1
}

// GiveBack returns, as a batch to send, what the admission reserved: in
// the slots that admitted it when another refused it or failed, or all of
// it when it was admitted and is not to stand (a rate limit refused it),
// in which case its reservation counts as settled. Nil when there is
// nothing to give back.
func (p *Pending) GiveBack() *Batch {
	if !p.decided || p.allowed && !p.res.done.CompareAndSwap(false, true) {
		return nil
	}
	var b *Batch
	for i, g := range p.granted {
		if g == 0 {
			continue
		}
		if b == nil {
			b = p.r.NewBatch()
		}
		b.release(p.res.periods[i], p.buckets[i], g)
	}
	return b
}

// Batch collects settlements of reservations to send to Redis together.
// Amounts for the same counter are summed first, so a batch of many
// settlements of a busy budget costs Redis about what one does. A Batch
// is not safe for concurrent use.
type Batch struct {
	r        *Redis
	counters map[counterID]*batchCounter
	order    []counterID
	// settled are the reservations added, for reporting crossings.
	settled []*Reservation
}

type counterID struct {
	scope string
	kind  Period
	start int64
}

type batchCounter struct {
	p        period
	spend    Nanos
	releases map[int64]Nanos // lease bucket -> amount
	buckets  []int64
	limits   []limitKey
	// who holds each of limits: the first reservation (index in settled)
	// and its budget index.
	holders [][2]int
}

type limitKey struct {
	limit Nanos
	soft  bool
}

// NewBatch returns an empty batch.
func (r *Redis) NewBatch() *Batch { return &Batch{r: r, counters: make(map[counterID]*batchCounter)} }

// Len returns how many counters the batch changes.
func (b *Batch) Len() int { return len(b.order) }

func (b *Batch) counter(p period) *batchCounter {
	id := counterID{p.scope, p.kind, p.start.Unix()}
	c := b.counters[id]
	if c == nil {
		c = &batchCounter{p: p, releases: map[int64]Nanos{}}
		b.counters[id] = c
		b.order = append(b.order, id)
	}
	return c
}

func (b *Batch) release(p period, bucket int64, amount Nanos) {
	c := b.counter(p)
	if _, ok := c.releases[bucket]; !ok {
		c.buckets = append(c.buckets, bucket)
	}
	c.releases[bucket] += amount
}

// Settle adds the settlement of res at actual; the reservation counts as
// settled from now on, whether or not the batch is sent.
func (b *Batch) Settle(res *Reservation, actual Nanos) error {
	if res == nil || res.owner != b.r {
		return ErrForeignReservation
	}
	if err := checkCost(actual); err != nil {
		return err
	}
	if !res.done.CompareAndSwap(false, true) {
		return ErrSettled
	}
	who := len(b.settled)
	b.settled = append(b.settled, res)
	cs := make([]*batchCounter, len(res.periods))
	for i, p := range res.periods {
		cs[i] = b.counter(p)
		cs[i].spend += actual
		b.release(p, res.buckets[i], res.amounts[i])
	}
	for j, bg := range res.budgets {
		c := cs[res.index[j]]
		k := limitKey{bg.Limit, bg.Soft}
		if !slices.Contains(c.limits, k) {
			c.limits = append(c.limits, k)
			c.holders = append(c.holders, [2]int{who, j})
		}
	}
	return nil
}

// Release adds the release of res without charging anything, for an
// admission given back because another check refused it; unlike a
// settlement at zero it checks no limits, so it reports no crossings.
func (b *Batch) Release(res *Reservation) error {
	if res == nil || res.owner != b.r {
		return ErrForeignReservation
	}
	if !res.done.CompareAndSwap(false, true) {
		return ErrSettled
	}
	for i, p := range res.periods {
		b.release(p, res.buckets[i], res.amounts[i])
	}
	return nil
}

// Queue adds the batch to pipe, one script per slot group; after
// pipe.Exec, the returned function reports, per reservation settled in
// the order Settle was called, the budgets whose spend reached their limit
// for the first time in the period.
func (b *Batch) Queue(ctx context.Context, pipe redis.Pipeliner) func() ([][]Status, error) {
	if len(b.order) == 0 {
		return func() ([][]Status, error) { return make([][]Status, len(b.settled)), nil }
	}
	type group struct {
		script.Call
		ids []counterID
	}
	var gs []*group
	byScope := map[string]*group{}
	for _, id := range b.order {
		var g *group
		switch {
		case !b.r.cluster && len(gs) > 0:
			g = gs[0]
		case b.r.cluster && byScope[id.scope] != nil:
			g = byScope[id.scope]
		default:
			g = &group{Call: script.Call{Args: []any{b.r.lease.Microseconds(), b.r.bucket.Microseconds()}}}
			gs = append(gs, g)
			byScope[id.scope] = g
		}
		c := b.counters[id]
		g.Keys = append(g.Keys, b.r.key(c.p))
		g.ids = append(g.ids, id)
		g.Args = append(g.Args, b.r.expireAt(c.p), int64(c.spend), len(c.buckets))
		for _, e := range c.buckets {
			g.Args = append(g.Args, e, int64(c.releases[e]))
		}
		g.Args = append(g.Args, len(c.limits))
		for _, l := range c.limits {
			g.Args = append(g.Args, int64(l.limit), soft(Budget{Soft: l.soft}))
		}
	}
	for _, g := range gs {
		g.Queue(ctx, pipe, settleScript)
	}
	return func() ([][]Status, error) {
		crossed := make([][]Status, len(b.settled))
		var errs []error
		for _, g := range gs {
			vals, err := g.Result(ctx, b.r.client, settleScript).Int64Slice()
			if err != nil {
				errs = append(errs, err)
				continue
			}
			at := 0
			for _, id := range g.ids {
				c := b.counters[id]
				if len(vals) < at+2+len(c.limits) {
					errs = append(errs, fmt.Errorf("unexpected reply %v", vals))
					break
				}
				spent, reserved := Nanos(vals[at]), Nanos(vals[at+1])
				for k, x := range vals[at+2 : at+2+len(c.limits)] {
					if x == 1 {
						who, j := c.holders[k][0], c.holders[k][1]
						res := b.settled[who]
						crossed[who] = append(crossed[who], Status{Budget: res.budgets[j], Spent: spent, Reserved: reserved,
							PeriodStart: c.p.start, ResetsAt: c.p.end})
					}
				}
				at += 2 + len(c.limits)
			}
		}
		if len(errs) > 0 {
			return crossed, fmt.Errorf("budget: redis settle: %w", errors.Join(errs...))
		}
		return crossed, nil
	}
}

// Send sends the batch in one round trip per Redis node and reports the
// crossings as Queue's function does.
func (b *Batch) Send(ctx context.Context) ([][]Status, error) {
	if len(b.order) == 0 {
		return make([][]Status, len(b.settled)), nil
	}
	pipe := b.r.client.Pipeline()
	check := b.Queue(ctx, pipe)
	_, _ = pipe.Exec(ctx)
	return check()
}

// Settle implements Enforcer in one round trip per node its counters live
// on.
func (r *Redis) Settle(ctx context.Context, res *Reservation, actual Nanos) ([]Status, error) {
	b := r.NewBatch()
	if err := b.Settle(res, actual); err != nil {
		return nil, err
	}
	crossed, err := b.Send(ctx)
	if len(crossed) == 0 {
		return nil, err
	}
	return crossed[0], err
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
	n, err := seedScript.Run(ctx, r.client, []string{r.key(ps[0])}, int64(spent), r.expireAt(ps[0])).Int64()
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
	vals, err := statusScript.Run(ctx, r.client, []string{r.key(ps[0])}, r.lease.Microseconds(), r.bucket.Microseconds()).Int64Slice()
	if err != nil {
		return Status{}, fmt.Errorf("budget: redis status: %w", err)
	}
	if len(vals) != 2 {
		return Status{}, fmt.Errorf("budget: redis status: unexpected reply %v", vals)
	}
	return Status{Budget: b, Spent: Nanos(vals[0]), Reserved: Nanos(vals[1]), PeriodStart: ps[0].start, ResetsAt: ps[0].end}, nil
}

func (r *Redis) now() time.Time {
	return r.clock().Add(time.Duration(r.skew.Load()))
}

// key returns the hash that holds a counter.
func (r *Redis) key(c period) string {
	return r.tag + c.scope + "}:bg:" + c.kind.code(c.start)
}

// expireAt is when a counter's hash may go: a day after the last lease
// taken in its period could have expired.
func (r *Redis) expireAt(c period) int64 {
	return c.end.Add(r.lease + r.bucket + 24*time.Hour).UnixMilli()
}

func soft(b Budget) int {
	if b.Soft {
		return 1
	}
	return 0
}
