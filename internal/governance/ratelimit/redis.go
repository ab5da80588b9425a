package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/junctionhq/junction/internal/governance/script"
)

// Buckets is how many parts a window is cut into on Redis: a charge is
// kept in the bucket of its admission time and leaves the window with it.
const Buckets = 60

// Redis is a Limiter whose state lives in Redis, so that every replica
// sharing the server (or Redis Cluster) enforces one global limit.
//
// # Data
//
// Each scope is one hash, "{prefix:scope}:rl": the window cut into
// Buckets buckets (a second each for a minute), a field pair per bucket
// with its requests and tokens ("r<n>", "t<n>", n the bucket's number
// since the epoch), their totals ("R", "T") and the oldest and newest
// bucket numbers ("o", "n"). An admission reads five fields and writes
// five in two commands; the buckets that left the window are dropped at
// most once per bucket, by whichever call comes first. The hash expires
// one window after its newest bucket.
//
// # Exactness
//
// A charge counts from its admission until the end of its bucket plus one
// window, so in every interval of one window's length, wherever it starts,
// at most RPM requests are admitted and at most TPM tokens charged, as on
// Memory. What it costs is capacity returning up to one bucket (1/60 of
// the window) later than an exact log would return it.
//
// # Slots
//
// Each scope's hash tag is its own, so on a Redis Cluster unrelated scopes
// live in different slots and the cluster's capacity grows with its
// masters. An admission runs one Lua script per slot group (all scopes on
// a standalone server; each scope on a cluster), all in one pipeline: one
// round trip per node, in parallel. Each script is atomic for its scopes;
// when one refuses, what the others charged is given back (a second round
// trip, on refusals only), so an admission stays all-or-nothing. Between
// the two, a concurrent request may be refused for a charge that is then
// given back: the give-back errs toward refusing, never toward admitting.
//
// Time comes from the Redis server (TIME inside the scripts), so replicas
// with skewed clocks agree on every window.
type Redis struct {
	client  redis.UniversalClient
	cluster bool
	tag     string // "{prefix:"
	window  time.Duration
	bucket  time.Duration
}

// NewRedis returns a limiter that keeps its state in client, which is a
// *redis.Client (one server) or a *redis.ClusterClient, under keys
// starting with "{prefix:". prefix must not contain braces.
func NewRedis(client redis.UniversalClient, prefix string, opts ...Option) *Redis {
	o := buildOptions(opts)
	_, cluster := client.(*redis.ClusterClient)
	return &Redis{client: client, cluster: cluster, tag: "{" + prefix + ":", window: o.window,
		bucket: max(o.window/Buckets, time.Microsecond)}
}

// Key returns the hash that holds scope's window.
func (r *Redis) Key(scope string) string { return r.tag + scope + "}:rl" }

// LuaWindows is a Lua chunk that defines windows(win, bw, now, ko): the
// rate-limit side of the admission scripts, over the hashes KEYS[ko+1],
// KEYS[ko+2], ... with a window of win and buckets of bw µs at the server
// time now (µs). It returns a table w: w.decide(a) reads one request's
// entries at ARGV[a] (see admitScript) and decides it, charging nothing,
// returning the decision and where the next request starts; w.commit(q,
// ok, out) appends q's reply to out and charges it when it was allowed and
// ok (false: another part of the admission refused, and this one reports
// itself allowed having charged nothing); w.finish() writes back every
// hash the call touched. w.open, w.charge and w.store serve the other
// scripts. The governance package combines it with budgets' chunk in one
// script per slot group.
const LuaWindows = `
local function windows(win, bw, now, ko)
local cur = math.floor(now / bw)
local first = math.floor((now - win) / bw)
-- A value longer than hash-max-listpack-value (64) makes Redis keep a
-- hash as a hash table, where a field costs the same to find however
-- many buckets the hash holds; as a listpack every field is a linear scan.
local pad = '------------------------------------------------------------------------'
-- Numbers written back are formatted here as integers ('%d'): cheaper
-- than the %.17g Redis applies to a number argument, and the same digits.
local fmt = string.format

-- Field names of buckets, made once per call (nearly every charge of a
-- call goes to the current bucket).
local rname, tname = {}, {}
local function names(b)
  local r = rname[b]
  if not r then
    local n = string.format('%d', b)
    r = 'r' .. n
    rname[b], tname[b] = r, 't' .. n
  end
  return r, tname[b]
end

-- A scope's state s holds its totals (R, T), oldest and newest bucket
-- (o, n), the buckets read, by number (r and t; false: read and absent),
-- and what store must write: the buckets charged (d), whether the totals
-- changed (dirty), o (wo) or n (expire, which also renews the expiry),
-- and the padding when the hash is new. Every field is named in its
-- constructor, so that setting one never grows the table.

-- scan reads a scope's whole hash into s, dropping the buckets that left
-- the window.
local function scan(s)
  local all = redis.call('HGETALL', s.h)
  local dead, r, t, R, T, o = {}, {}, {}, 0, 0, nil
  for i = 1, #all, 2 do
    local k = all[i]
    local kind, b = string.sub(k, 1, 1), tonumber(string.sub(k, 2))
    if b and (kind == 'r' or kind == 't') then
      if b < first then
        dead[#dead+1] = k
      else
        local v = tonumber(all[i+1])
        if kind == 'r' then r[b], R = v, R + v else t[b], T = v, T + v end
        if not o or b < o then o = b end
      end
    end
  end
  s.r, s.t, s.R, s.T, s.o, s.scanned, s.dirty = r, t, R, T, o, true, true
  if o then s.wo = true else dead[#dead+1] = 'o' end
  if #dead > 0 then redis.call('HDEL', s.h, unpack(dead)) end
end

-- store writes back what changed in s.
local function store(s)
  if s.dirty then
    local args, i = {'R', fmt('%d', s.R), 'T', fmt('%d', s.T), false, false, false, false, false, false, false, false, false, false}, 4
    local d = s.d
    for j = 1, #d do
      local b = d[j]
      local rf, tf = names(b)
      args[i+1], args[i+2], args[i+3], args[i+4], i = rf, fmt('%d', s.r[b]), tf, fmt('%d', s.t[b]), i + 4
    end
    if s.wo then args[i+1], args[i+2], i = 'o', fmt('%d', s.o), i + 2 end
    if s.expire then args[i+1], args[i+2], i = 'n', fmt('%d', s.n), i + 2 end
    if s.new and #d > 0 then args[i+1], args[i+2], i, s.new = 'x', pad, i + 2, false end
    redis.call('HSET', s.h, unpack(args, 1, i))
    if s.expire then redis.call('PEXPIRE', s.h, math.floor(((s.n + 1) * bw + win - now) / 1000) + 1) end
    s.d, s.dirty, s.wo, s.expire = {}, false, false, false
  end
end

-- open reads a scope's totals and the bucket b (or the buckets in want),
-- dropping the buckets that left the window; need reads one more bucket
-- later.
local function open(h, b, want)
  local v, s
  if want then
    local fields = {'R', 'T', 'o', 'n'}
    for _, x in ipairs(want) do
      local rf, tf = names(x)
      fields[#fields+1] = rf
      fields[#fields+1] = tf
    end
    v = redis.call('HMGET', h, unpack(fields))
  else
    local rf, tf = names(b)
    v = redis.call('HMGET', h, 'R', 'T', 'o', 'n', rf, tf)
  end
  s = {h = h, R = (v[1] or 0) + 0, T = (v[2] or 0) + 0, o = v[3] and v[3] + 0, n = v[4] and v[4] + 0,
    r = {}, t = {}, d = {}, new = not v[1], scanned = false, dirty = false, wo = false, expire = false}
  if want then
    for i, x in ipairs(want) do
      s.r[x], s.t[x] = v[3+2*i] and v[3+2*i] + 0, v[4+2*i] and v[4+2*i] + 0
    end
  else
    s.r[b], s.t[b] = v[5] and v[5] + 0, v[6] and v[6] + 0
  end
  if s.o and s.o < first then scan(s) end
  return s
end

local function need(s, b)
  if s.scanned or s.r[b] ~= nil then return end
  local rf, tf = names(b)
  local v = redis.call('HMGET', s.h, rf, tf)
  s.r[b], s.t[b] = v[1] and v[1] + 0, v[2] and v[2] + 0
end

local function charge(s, b, dr, dt)
  s.r[b], s.t[b] = (s.r[b] or 0) + dr, (s.t[b] or 0) + dt
  s.R, s.T, s.dirty = s.R + dr, s.T + dt, true
  local d = s.d
  local seen = false
  for j = 1, #d do
    if d[j] == b then seen = true break end
  end
  if not seen then d[#d+1] = b end
  if not s.o or b < s.o then s.o, s.wo = b, true end
  if not s.n or b > s.n then s.n, s.expire = b, true end
end

local function waitFor(s, needR, needT)
  -- The hash must hold what this call charged before it is read whole.
  store(s)
  scan(s)
  local bs, seen = {}, {}
  for _, m in ipairs({s.r, s.t}) do
    for b in pairs(m) do
      if not seen[b] then seen[b], bs[#bs+1] = true, b end
    end
  end
  table.sort(bs)
  local fr, ft = 0, 0
  for _, b in ipairs(bs) do
    fr, ft = fr + (s.r[b] or 0), ft + (s.t[b] or 0)
    if fr >= needR and ft >= needT then return (b + 1) * bw + win - now end
  end
  return win
end

-- A decision q holds, per entry j, its scope's state, bucket and the
-- requests and tokens granted at q[4j-3] to q[4j].
local st = {}
local function decide(a)
  local k = ARGV[a] + 0
  a = a + 1
  local q = {k = k, refuse = 0, wait = 0}
  for j = 1, k do
    local ki, b = ko + ARGV[a], cur + ARGV[a+7]
    local s = st[ki]
    if not s then
      s = open(KEYS[ki], b)
      st[ki] = s
    else
      need(s, b)
    end
    local e, gr, gt = 4 * j, 0, 0
    if q.wait ~= -1 then
      local rpm, tpm, minR, minT = ARGV[a+1] + 0, ARGV[a+2] + 0, ARGV[a+5] + 0, ARGV[a+6] + 0
      if tpm > 0 and minT > tpm then
        q.refuse, q.wait = j, -1
      else
        local r, t = ARGV[a+3] + 0, ARGV[a+4] + 0
        if rpm > 0 and rpm - s.R < r then r = rpm - s.R end
        if tpm > 0 and tpm - s.T < t then t = tpm - s.T end
        if r >= minR and t >= minT then
          gr, gt = r, t
        else
          local needR, needT = minR - r, minT - t
          if needR < 0 then needR = 0 end
          if needT < 0 then needT = 0 end
          local w = waitFor(s, needR, needT)
          if q.refuse == 0 or w > q.wait then q.refuse, q.wait = j, w end
        end
      end
    end
    q[e-3], q[e-2], q[e-1], q[e] = s, b, gr, gt
    a = a + 8
  end
  return q, a
end

local function commit(q, ok, out)
  local o = #out
  local allowed = q.refuse == 0
  out[o+1], out[o+2], out[o+3], out[o+4] = allowed and 1 or 0, now, q.refuse, q.wait
  o = o + 4
  for j = 1, q.k do
    local e = 4 * j
    local s, gr, gt = q[e-3], q[e-1], q[e]
    if allowed and ok then
      charge(s, q[e-2], gr, gt)
    else
      gr, gt = 0, 0
      q[e-1], q[e] = 0, 0
    end
    out[o+1], out[o+2], out[o+3], out[o+4], out[o+5] = s.R, s.T, s.o and (s.o + 1) * bw + win - now or 0, gr, gt
    o = o + 5
  end
end

local function finish()
  for _, s in pairs(st) do store(s) end
end

return {decide = decide, commit = commit, finish = finish, open = open, charge = charge, store = store, cur = cur, first = first}
end
`

// admitScript admits many requests in one call: a replica sends what
// arrives while its last call is out (group commit), so that a busy
// scope's hash is read and written once per call, not once per request.
// KEYS are the scopes' hashes; ARGV are the window and bucket width (µs),
// the number of requests and, per request, its number of entries and per
// entry the scope (its index in KEYS), RPM and TPM, the requests and
// tokens wanted and the least of each that will do, and how many buckets
// ahead of now to stamp the charge. Requests are decided in order, each on
// every scope or on none, as if each were a call of its own. It returns,
// per request, {allowed, now, refusing entry (1-based; 0 when allowed),
// wait in µs (-1: too large), then per entry its scope's requests and
// tokens, µs until its oldest bucket leaves the window, and the requests
// and tokens charged}.
var admitScript = redis.NewScript(LuaWindows + script.Alone("windows"))

// adjustScript: KEYS are scopes' hashes; ARGV after the window and bucket
// width are, per scope, a count m and then m adjustments (bucket, requests,
// tokens given back, extra tokens). An adjustment to a bucket still in
// the window applies there; one whose bucket has left it charges only its
// extra tokens, to the current bucket.
var adjustScript = redis.NewScript(LuaWindows + script.Now + `
local w = windows(ARGV[1] + 0, ARGV[2] + 0, now, 0)
local a = 3
for i = 1, #KEYS do
  local m = ARGV[a] + 0
  a = a + 1
  local want, adj = {w.cur}, {}
  for j = 1, m do
    adj[j] = {ARGV[a] + 0, ARGV[a+1] + 0, ARGV[a+2] + 0, ARGV[a+3] + 0}
    want[#want+1] = adj[j][1]
    a = a + 4
  end
  local s = w.open(KEYS[i], nil, want)
  for _, d in ipairs(adj) do
    local b = d[1]
    if b >= w.first and (s.r[b] or s.t[b]) then
      w.charge(s, b, d[2], d[3] + d[4])
    elseif d[4] > 0 then
      w.charge(s, w.cur, 0, d[4])
    end
  end
  w.store(s)
end
return 1
`)

// Admit implements Limiter in one round trip per Redis node (and one more
// to give back on a refusal that only some slots made).
func (r *Redis) Admit(ctx context.Context, limits []Limit, tokens int64) (Decision, *Ticket, error) {
	pipe := r.client.Pipeline()
	p := r.Queue(ctx, pipe, limits, tokens)
	if len(p.parts) > 0 {
		_, _ = pipe.Exec(ctx) // each queued command keeps its own error
	}
	d, t, err := p.Result()
	if err != nil || !d.Allowed {
		if b := p.GiveBack(); b != nil {
			err = errors.Join(err, b.Send(ctx))
		}
	}
	return d, t, err
}

// Queue adds an admission to pipe without sending it, for a caller that
// sends several checks (say this one and a budget's) in one round trip.
// After pipe.Exec (whose error the caller may ignore: each command keeps
// its own), Pending.Result decodes the outcome; Pending.GiveBack returns
// what it charged, to be sent, when it is not to stand.
func (r *Redis) Queue(ctx context.Context, pipe redis.Pipeliner, limits []Limit, tokens int64) *Pending {
	p := r.Prepare(limits, tokens)
	r.QueueAll(ctx, pipe, []*Pending{p})
	return p
}

// Prepare readies an admission to be queued, with others, by QueueAll.
func (r *Redis) Prepare(limits []Limit, tokens int64) *Pending {
	return r.prepare(limits, charges(tokens))
}

// want is what one admission charges each scope: as much as wanted, down
// to the least that will do, stamped ahead buckets after now.
type want struct {
	reqs, tokens       int64
	minReqs, minTokens int64
	ahead              int64
}

// charges returns the charge of one request of the given tokens.
func charges(tokens int64) func(Limit) want {
	return func(Limit) want { return want{1, tokens, 1, tokens, 0} }
}

func (r *Redis) prepare(limits []Limit, charge func(Limit) want) *Pending {
	p := &Pending{r: r}
	if p.limits, p.err = merge(make([]Limit, 0, len(limits)), limits); p.err != nil || len(p.limits) == 0 {
		return p
	}
	p.wants = make([]want, len(p.limits))
	for i, l := range p.limits {
		p.wants[i] = charge(l)
		if err := checkTokens(p.wants[i].minTokens); err != nil {
			p.err = err
			return p
		}
	}
	return p
}

// QueueAll adds admissions made by Prepare to pipe, in one script per
// slot group for all of them (group commit): one for everything on a
// standalone server, one per scope on a cluster. A busy scope's hash is
// then read and written once for all of them.
func (r *Redis) QueueAll(ctx context.Context, pipe redis.Pipeliner, ps []*Pending) {
	for _, c := range r.Groups(ctx, ps) {
		args := append(make([]any, 0, 3+len(c.reqs)*9), r.window.Microseconds(), r.bucket.Microseconds(), len(c.reqs))
		for q := range c.reqs {
			args = append(args, c.Request(q)...)
		}
		c.reqs = nil
		c.Args = args
		c.Queue(ctx, pipe, admitScript)
	}
}

// Groups splits admissions made by Prepare into slot groups (one for
// everything on a standalone server, one per scope on a cluster), for a
// caller that sends each group in a script of its own making (see
// LuaWindows) and hands its replies to Group.SetReply.
func (r *Redis) Groups(ctx context.Context, ps []*Pending) []*Group {
	cmds := map[string]*Group{} // by slot group: "" on one server, the scope on a cluster
	var order []*Group
	for _, p := range ps {
		p.ctx = ctx
		if p.err != nil || len(p.limits) == 0 {
			continue
		}
		p.parts = p.parts[:0]
		byCmd := map[*Group]int{} // the part of p in each command
		for i, l := range p.limits {
			g := ""
			if r.cluster {
				g = l.Scope
			}
			c := cmds[g]
			if c == nil {
				c = &Group{Group: script.NewGroup(g), r: r}
				cmds[g] = c
				order = append(order, c)
			}
			at, ok := byCmd[c]
			if !ok {
				at = len(p.parts)
				byCmd[c] = at
				p.parts = append(p.parts, script.Part[*Group]{Group: c, Req: len(c.reqs)})
				c.reqs = append(c.reqs, nil)
			}
			pt := &p.parts[at]
			pt.Idx = append(pt.Idx, i)
			w := p.wants[i]
			c.reqs[pt.Req] = append(c.reqs[pt.Req], int64(c.Key(r.Key(l.Scope))), l.RPM, l.TPM, w.reqs, w.tokens, w.minReqs, w.minTokens, w.ahead)
		}
	}
	for _, c := range order {
		c.Sizes = make([]int, len(c.reqs))
		for q, entries := range c.reqs {
			c.Sizes[q] = len(entries) / 8
		}
	}
	return order
}

// Group is the rate-limit part of a batch of admissions in one slot
// group, sent in one script.
type Group struct {
	script.Group
	r    *Redis
	reqs [][]int64 // each request's entries
}

// Params returns the window and the bucket width in µs, windows' first
// two arguments.
func (c *Group) Params() (window, bucket int64) {
	return c.r.window.Microseconds(), c.r.bucket.Microseconds()
}

// Request returns request q's arguments, as decide reads them at ARGV[a].
func (c *Group) Request(q int) []any {
	args := make([]any, 0, 1+len(c.reqs[q]))
	args = append(args, c.Sizes[q])
	for _, v := range c.reqs[q] {
		args = append(args, v)
	}
	return args
}

// ReplyLen returns how many integers commit appends for request q.
func (c *Group) ReplyLen(q int) int { return 4 + 5*c.Sizes[q] }

// SetReply hands the group its replies, every request's in order, or the
// error that stopped them; call it before the admissions' Result.
func (c *Group) SetReply(vals []int64, err error) { c.SetReplies(vals, err, c.ReplyLen) }

// reply returns request q's reply, from SetReply or else from the group's
// own script.
func (c *Group) reply(ctx context.Context, q int) ([]int64, error) {
	return c.Reply(ctx, c.r.client, admitScript, q, c.ReplyLen)
}

// Slots returns, for each slot group the admission reaches, the group,
// the admission's request number there and which of its limits it holds,
// after Groups or QueueAll. The slice is the admission's own: read it,
// do not change it.
func (p *Pending) Slots() []script.Part[*Group] { return p.parts }

// Pending is an admission queued on a pipeline.
type Pending struct {
	r      *Redis
	ctx    context.Context
	err    error
	limits []Limit
	wants  []want
	parts  []script.Part[*Group]
	// After Result: the charges made, per scope (zero where none was), and
	// the buckets they went to.
	granted [][2]int64
	buckets []int64
	nowUS   []int64      // the server's time when it decided, per scope
	states  []scopeState // what Redis counted, per scope, after the charge
	decided bool
	allowed bool
	ticket  *Ticket
}

// Result returns the queued admission's outcome; call it after the
// pipeline ran.
func (p *Pending) Result() (Decision, *Ticket, error) {
	if p.err != nil {
		return Decision{}, nil, p.err
	}
	if len(p.limits) == 0 {
		return Decision{Allowed: true}, &Ticket{owner: p.r}, nil
	}
	d, err := p.decode()
	p.decided = true
	if err != nil || !d.Allowed {
		return d, nil, err
	}
	p.allowed = true
	t := &Ticket{owner: p.r, tokens: p.wants[0].tokens, scopes: make([]string, len(p.limits)), buckets: p.buckets}
	for i, l := range p.limits {
		t.scopes[i] = l.Scope
	}
	p.ticket = t
	return d, t, nil
}

func (p *Pending) decode() (Decision, error) {
	n := len(p.limits)
	st := make([]scopeState, n)
	p.granted = make([][2]int64, n)
	p.buckets = make([]int64, n)
	p.nowUS = make([]int64, n)
	var d Decision
	var errs []error
	refused, tooLarge := false, false
	bw := p.r.bucket.Microseconds()
	p.states = st
	for _, pt := range p.parts {
		vals, err := pt.Group.reply(p.ctx, pt.Req)
		if err == nil && (vals[2] < 0 || vals[2] > int64(len(pt.Idx))) {
			err = fmt.Errorf("unexpected reply %v", vals)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		now := vals[1]
		for j, i := range pt.Idx {
			v := vals[4+5*j:]
			st[i] = scopeState{reqs: v[0], tokens: v[1], reset: time.Duration(v[2]) * time.Microsecond}
			p.granted[i] = [2]int64{v[3], v[4]}
			p.buckets[i] = now/bw + p.wants[i].ahead
			p.nowUS[i] = now
		}
		if vals[0] == 1 {
			continue
		}
		if vals[2] == 0 {
			errs = append(errs, fmt.Errorf("unexpected reply %v", vals))
			continue
		}
		l := p.limits[pt.Idx[vals[2]-1]]
		switch wait := time.Duration(vals[3]) * time.Microsecond; {
		case vals[3] < 0:
			if !tooLarge {
				d.Limit, d.RetryAfter, tooLarge = l, 0, true
			}
		case !tooLarge && (!refused || wait > d.RetryAfter):
			d.Limit, d.RetryAfter = l, wait
		}
		refused = true
	}
	if len(errs) > 0 {
		return Decision{}, fmt.Errorf("ratelimit: redis admit: %w", errors.Join(errs...))
	}
	d.Allowed, d.TooLarge = !refused, tooLarge
	if refused {
		// Report the scopes that did charge as they will be once given
		// back.
		for i, g := range p.granted {
			st[i].reqs -= g[0]
			st[i].tokens -= g[1]
		}
	}
	quotas(&d, p.limits, st)
	return d, nil
}

// GiveBack returns, as a batch to send, what the admission charged: in
// the slots that admitted it when another refused it or failed, or all of
// it when it was admitted and is not to stand (a budget refused it), in
// which case its ticket counts as cancelled. Nil when there is nothing to
// give back.
func (p *Pending) GiveBack() *Batch {
	if !p.decided || p.allowed && (p.ticket == nil || !p.ticket.done.CompareAndSwap(false, true)) {
		return nil
	}
	var b *Batch
	for i, g := range p.granted {
		if g[0] == 0 && g[1] == 0 {
			continue
		}
		if b == nil {
			b = p.r.NewBatch()
		}
		b.add(p.limits[i].Scope, p.buckets[i], -g[0], -g[1], 0)
	}
	return b
}

// Batch collects settlements and cancellations of tickets to send to Redis
// together. Amounts for the same scope and bucket are summed first, so a
// batch of many settlements of a busy scope costs Redis about what one
// does. A Batch is not safe for concurrent use.
type Batch struct {
	r     *Redis
	adj   map[adjKey]*adjustment
	order []adjKey
}

type adjKey struct {
	scope  string
	bucket int64
}

// adjustment is what a batch changes in one bucket: requests, tokens given
// back, and extra tokens (charged now if the bucket has left the window).
type adjustment struct{ reqs, back, extra int64 }

// NewBatch returns an empty batch.
func (r *Redis) NewBatch() *Batch { return &Batch{r: r, adj: make(map[adjKey]*adjustment)} }

func (b *Batch) add(scope string, bucket, reqs, tokens, extra int64) {
	k := adjKey{scope, bucket}
	a := b.adj[k]
	if a == nil {
		a = &adjustment{}
		b.adj[k] = a
		b.order = append(b.order, k)
	}
	a.reqs += reqs
	a.back += tokens
	a.extra += extra
}

// Len returns how many buckets the batch changes.
func (b *Batch) Len() int { return len(b.order) }

// Settle adds the settlement of t at actualTokens; the ticket counts as
// settled from now on, whether or not the batch is sent.
func (b *Batch) Settle(t *Ticket, actualTokens int64) error {
	if err := checkTokens(actualTokens); err != nil {
		return err
	}
	if err := b.r.claim(t); err != nil {
		return err
	}
	delta := actualTokens - t.tokens
	for i, s := range t.scopes {
		if t.untracked != nil && t.untracked[i] {
			continue
		}
		switch {
		case delta < 0:
			b.add(s, t.buckets[i], 0, delta, 0)
		case delta > 0:
			b.add(s, t.buckets[i], 0, 0, delta)
		}
	}
	return nil
}

// Cancel adds the removal of t's whole charge, request included.
func (b *Batch) Cancel(t *Ticket) error {
	if err := b.r.claim(t); err != nil {
		return err
	}
	for i, s := range t.scopes {
		tokens := t.tokens
		if t.untracked != nil && t.untracked[i] {
			tokens = 0
		}
		b.add(s, t.buckets[i], -1, -tokens, 0)
	}
	return nil
}

// Queue adds the batch to pipe, one script per slot group; after
// pipe.Exec, the returned function reports the outcome.
func (b *Batch) Queue(ctx context.Context, pipe redis.Pipeliner) func() error {
	if len(b.order) == 0 {
		return func() error { return nil }
	}
	// Each scope's adjustments, in the order the scopes first came.
	var scopes []string
	per := map[string][]any{}
	for _, k := range b.order {
		a := b.adj[k]
		if _, ok := per[k.scope]; !ok {
			scopes = append(scopes, k.scope)
		}
		per[k.scope] = append(per[k.scope], k.bucket, a.reqs, a.back, a.extra)
	}
	var gs []*script.Call
	for _, s := range scopes {
		if b.r.cluster || len(gs) == 0 {
			gs = append(gs, &script.Call{Args: []any{b.r.window.Microseconds(), b.r.bucket.Microseconds()}})
		}
		g := gs[len(gs)-1]
		g.Keys = append(g.Keys, b.r.Key(s))
		g.Args = append(g.Args, len(per[s])/4)
		g.Args = append(g.Args, per[s]...)
	}
	for _, g := range gs {
		g.Queue(ctx, pipe, adjustScript)
	}
	return func() error {
		var errs []error
		for _, g := range gs {
			if err := g.Result(ctx, b.r.client, adjustScript).Err(); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("ratelimit: redis settle: %w", errors.Join(errs...))
		}
		return nil
	}
}

// Send sends the batch in one round trip per Redis node.
func (b *Batch) Send(ctx context.Context) error {
	if len(b.order) == 0 {
		return nil
	}
	pipe := b.r.client.Pipeline()
	check := b.Queue(ctx, pipe)
	_, _ = pipe.Exec(ctx)
	return check()
}

// Settle implements Limiter in one round trip per node its scopes live on.
func (r *Redis) Settle(ctx context.Context, t *Ticket, actualTokens int64) error {
	b := r.NewBatch()
	if err := b.Settle(t, actualTokens); err != nil {
		return err
	}
	return b.Send(ctx)
}

// Cancel implements Limiter in one round trip per node its scopes live on.
func (r *Redis) Cancel(ctx context.Context, t *Ticket) error {
	b := r.NewBatch()
	if err := b.Cancel(t); err != nil {
		return err
	}
	return b.Send(ctx)
}

func (r *Redis) claim(t *Ticket) error {
	if t == nil || t.owner != r {
		return ErrForeignTicket
	}
	if !t.done.CompareAndSwap(false, true) {
		return ErrSettled
	}
	return nil
}
