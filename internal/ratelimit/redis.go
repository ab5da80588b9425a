package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Limiter whose state lives in Redis, so that every replica
// sharing the server enforces one global limit. Each call is one Lua script
// (EVALSHA), so one round trip, atomic across all the limits it touches.
//
// Time comes from the Redis server (TIME inside the script), so replicas with
// skewed clocks agree on every window. That needs Redis 5 or later, where
// scripts replicate their effects and may write after reading the clock.
//
// Per scope there are two keys: a sorted set, the charge log (member
// "<requests>:<tokens>:<id>", score the admission time in microseconds), and
// a hash with the log's totals. Both expire one window after their last
// write. Every key starts with the hash tag "{prefix}", so on Redis Cluster
// all of them live in one slot and a script may touch any of them.
type Redis struct {
	client redis.UniversalClient
	keys   string // "{prefix}:rl:"
	window time.Duration
}

// NewRedis returns a limiter that keeps its state in client under keys
// starting with "{prefix}:rl:". prefix must not contain braces.
func NewRedis(client redis.UniversalClient, prefix string, opts ...Option) *Redis {
	o := buildOptions(opts)
	return &Redis{client: client, keys: "{" + prefix + "}:rl:", window: o.window}
}

// luaPrune is shared by the scripts. prune drops the charges of one scope
// stamped at or before cutoff and returns the requests and tokens still in
// the window, and whether it dropped any; the caller writes the totals back
// (one HSET) if they changed, so that a call costs as few redis.call as can be.
const luaPrune = `
local function prune(z, h, cutoff)
  local v = redis.call('HMGET', h, 'r', 't')
  local r, t = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff)
  if #old == 0 then return r, t, false end
  for _, m in ipairs(old) do
    local a, b = string.match(m, '^(%d+):(%d+):')
    r = r - tonumber(a)
    t = t - tonumber(b)
  end
  redis.call('ZREMRANGEBYRANK', z, 0, #old - 1)
  return r, t, true
end
local function int(x) return string.format('%d', x) end
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000000 + tonumber(tm[2])
`

// admitScript: KEYS are (log, totals) per scope; ARGV are window (µs), id,
// tokens, then (rpm, tpm) per scope. It returns {allowed, now, refusing scope
// (1-based, 0 when allowed), wait in µs (-1: too large), the scope with the
// fewest requests left and the score of its oldest charge, the same for
// tokens (scope 0: no such limit; score -1: no charge), then per scope its
// requests and tokens}.
var admitScript = redis.NewScript(luaPrune + `
local win = tonumber(ARGV[1])
local tokens = tonumber(ARGV[3])
local cutoff = now - win
local n = #KEYS / 2
local reqs, toks, dirty = {}, {}, {}
local refuse, wait = 0, 0
for i = 1, n do
  local z, h = KEYS[2*i-1], KEYS[2*i]
  local rpm, tpm = tonumber(ARGV[2+2*i]), tonumber(ARGV[3+2*i])
  local r, t, d = prune(z, h, cutoff)
  reqs[i], toks[i], dirty[i] = r, t, d
  if wait ~= -1 then
    if tpm > 0 and tokens > tpm then
      refuse, wait = i, -1
    else
      local needR, needT = 0, 0
      if rpm > 0 and r + 1 > rpm then needR = r + 1 - rpm end
      if tpm > 0 and t + tokens > tpm then needT = t + tokens - tpm end
      if needR > 0 or needT > 0 then
        local fr, ft, w, start = 0, 0, nil, 0
        while w == nil do
          local batch = redis.call('ZRANGE', z, start, start + 127, 'WITHSCORES')
          if #batch == 0 then w = win break end
          for j = 1, #batch, 2 do
            local a, b = string.match(batch[j], '^(%d+):(%d+):')
            fr = fr + tonumber(a)
            ft = ft + tonumber(b)
            if fr >= needR and ft >= needT then
              w = tonumber(batch[j+1]) + win - now
              break
            end
          end
          start = start + 128
        end
        if refuse == 0 or w > wait then refuse, wait = i, w end
      end
    end
  end
end
if refuse == 0 then
  local member = '1:' .. ARGV[3] .. ':' .. ARGV[2]
  local ttl = math.floor(win / 1000) + 1000
  for i = 1, n do
    local z, h = KEYS[2*i-1], KEYS[2*i]
    reqs[i] = reqs[i] + 1
    toks[i] = toks[i] + tokens
    redis.call('ZADD', z, now, member)
    redis.call('HSET', h, 'r', int(reqs[i]), 't', int(toks[i]))
    redis.call('PEXPIRE', z, ttl)
    redis.call('PEXPIRE', h, ttl)
  end
else
  for i = 1, n do
    if dirty[i] then redis.call('HSET', KEYS[2*i], 'r', int(reqs[i]), 't', int(toks[i])) end
  end
end
local out = {refuse == 0 and 1 or 0, now, refuse, wait, 0, -1, 0, -1}
local bestR, bestT
for i = 1, n do
  local rpm, tpm = tonumber(ARGV[2+2*i]), tonumber(ARGV[3+2*i])
  if rpm > 0 then
    local left = math.max(rpm - reqs[i], 0)
    if bestR == nil or left < bestR then bestR, out[5] = left, i end
  end
  if tpm > 0 then
    local left = math.max(tpm - toks[i], 0)
    if bestT == nil or left < bestT then bestT, out[7] = left, i end
  end
end
for k = 5, 7, 2 do
  if out[k] > 0 then
    local oldest = redis.call('ZRANGE', KEYS[2*out[k]-1], 0, 0, 'WITHSCORES')
    if oldest[2] then out[k+1] = tonumber(oldest[2]) end
  end
end
for i = 1, n do
  out[#out+1] = reqs[i]
  out[#out+1] = toks[i]
end
return out
`)

// settleScript: KEYS as for admitScript; ARGV are window (µs), id, estimated
// tokens, actual tokens.
var settleScript = redis.NewScript(luaPrune + `
local win = tonumber(ARGV[1])
local id = ARGV[2]
local delta = tonumber(ARGV[4]) - tonumber(ARGV[3])
local old = '1:' .. ARGV[3] .. ':' .. id
local ttl = math.floor(win / 1000) + 1000
for i = 1, #KEYS / 2 do
  local z, h = KEYS[2*i-1], KEYS[2*i]
  local r, t, dirty = prune(z, h, now - win)
  local score = redis.call('ZSCORE', z, old)
  local wrote = false
  if score then
    redis.call('ZREM', z, old)
    redis.call('ZADD', z, score, '1:' .. ARGV[4] .. ':' .. id)
    wrote = true
  elseif delta > 0 then
    redis.call('ZADD', z, now, '0:' .. int(delta) .. ':' .. id)
    wrote = true
  end
  if wrote then t = t + delta end
  if wrote or dirty then redis.call('HSET', h, 'r', int(r), 't', int(t)) end
  if wrote then
    redis.call('PEXPIRE', z, ttl)
    redis.call('PEXPIRE', h, ttl)
  end
end
return 1
`)

// cancelScript: KEYS as for admitScript; ARGV are id and estimated tokens.
var cancelScript = redis.NewScript(`
local member = '1:' .. ARGV[2] .. ':' .. ARGV[1]
for i = 1, #KEYS / 2 do
  local z, h = KEYS[2*i-1], KEYS[2*i]
  if redis.call('ZREM', z, member) == 1 then
    redis.call('HINCRBY', h, 'r', -1)
    redis.call('HINCRBY', h, 't', string.format('%d', -tonumber(ARGV[2])))
  end
end
return 1
`)

// Admit implements Limiter in one round trip.
func (r *Redis) Admit(ctx context.Context, limits []Limit, tokens int64) (Decision, *Ticket, error) {
	p := r.prepare(limits, tokens)
	if p.err != nil || len(p.limits) == 0 {
		return p.empty()
	}
	return p.decode(admitScript.Run(ctx, r.client, p.keys, p.args...))
}

// Queue adds an admission to pipe without sending it, for a caller that
// sends several checks (say this one and a budget's) in one round trip.
// After pipe.Exec (whose error the caller may ignore: each command keeps its
// own), Pending.Result decodes the outcome.
func (r *Redis) Queue(ctx context.Context, pipe redis.Pipeliner, limits []Limit, tokens int64) *Pending {
	p := r.prepare(limits, tokens)
	if p.err == nil && len(p.limits) > 0 {
		p.cmd = admitScript.EvalSha(ctx, pipe, p.keys, p.args...)
		p.ctx = ctx
	}
	return p
}

// Pending is an admission queued on a pipeline.
type Pending struct {
	r      *Redis
	ctx    context.Context
	err    error
	limits []Limit
	keys   []string
	args   []any
	ticket *Ticket
	cmd    *redis.Cmd
}

// Result returns the queued admission's outcome; call it after the
// pipeline ran. If the server did not have the script yet (NOSCRIPT: once
// after each server start or SCRIPT FLUSH), the pipeline did nothing and
// Result runs the admission again with EVAL, which also caches the script.
func (p *Pending) Result() (Decision, *Ticket, error) {
	if p.err != nil || len(p.limits) == 0 {
		return p.empty()
	}
	if redis.HasErrorPrefix(p.cmd.Err(), "NOSCRIPT") {
		return p.decode(admitScript.Eval(p.ctx, p.r.client, p.keys, p.args...))
	}
	return p.decode(p.cmd)
}

func (r *Redis) prepare(limits []Limit, tokens int64) *Pending {
	p := &Pending{r: r}
	if p.err = checkTokens(tokens); p.err != nil {
		return p
	}
	if p.limits, p.err = merge(make([]Limit, 0, len(limits)), limits); p.err != nil {
		return p
	}
	id := strconv.FormatUint(rand.Uint64(), 36)
	p.ticket = &Ticket{owner: r, tokens: tokens, id: id, scopes: make([]string, len(p.limits))}
	p.keys = make([]string, 0, 2*len(p.limits))
	p.args = make([]any, 0, 3+2*len(p.limits))
	p.args = append(p.args, r.window.Microseconds(), id, tokens)
	for i, l := range p.limits {
		p.ticket.scopes[i] = l.Scope
		p.keys = append(p.keys, r.keys+"l:"+l.Scope, r.keys+"c:"+l.Scope)
		p.args = append(p.args, l.RPM, l.TPM)
	}
	return p
}

// empty answers an admission that needs no round trip: invalid, or with no
// limits to check.
func (p *Pending) empty() (Decision, *Ticket, error) {
	if p.err != nil {
		return Decision{}, nil, p.err
	}
	return Decision{Allowed: true}, p.ticket, nil
}

func (p *Pending) decode(cmd *redis.Cmd) (Decision, *Ticket, error) {
	vals, err := cmd.Int64Slice()
	if err != nil {
		return Decision{}, nil, fmt.Errorf("ratelimit: redis admit: %w", err)
	}
	n := len(p.limits)
	if len(vals) != 8+2*n || vals[2] < 0 || vals[2] > int64(n) || vals[4] < 0 || vals[4] > int64(n) || vals[6] < 0 || vals[6] > int64(n) {
		return Decision{}, nil, fmt.Errorf("ratelimit: redis admit: unexpected reply %v", vals)
	}
	now, window := vals[1], p.r.window.Microseconds()
	reset := func(oldest int64) time.Duration {
		if oldest < 0 {
			return 0
		}
		return time.Duration(oldest+window-now) * time.Microsecond
	}
	var d Decision
	if i := vals[4]; i > 0 {
		l := p.limits[i-1].RPM
		d.Requests = Quota{Limit: l, Remaining: max(l-vals[8+2*(i-1)], 0), Reset: reset(vals[5])}
	}
	if i := vals[6]; i > 0 {
		l := p.limits[i-1].TPM
		d.Tokens = Quota{Limit: l, Remaining: max(l-vals[9+2*(i-1)], 0), Reset: reset(vals[7])}
	}
	switch {
	case vals[0] == 1:
		d.Allowed = true
		return d, p.ticket, nil
	case vals[2] == 0:
		return Decision{}, nil, fmt.Errorf("ratelimit: redis admit: unexpected reply %v", vals)
	}
	d.Limit = p.limits[vals[2]-1]
	if vals[3] < 0 {
		d.TooLarge = true
	} else {
		d.RetryAfter = time.Duration(vals[3]) * time.Microsecond
	}
	return d, nil, nil
}

// Settle implements Limiter in one round trip.
func (r *Redis) Settle(ctx context.Context, t *Ticket, actualTokens int64) error {
	if err := checkTokens(actualTokens); err != nil {
		return err
	}
	if err := r.claim(t); err != nil {
		return err
	}
	if actualTokens == t.tokens || len(t.scopes) == 0 {
		return nil
	}
	err := settleScript.Run(ctx, r.client, r.ticketKeys(t), r.window.Microseconds(), t.id, t.tokens, actualTokens).Err()
	if err != nil {
		return fmt.Errorf("ratelimit: redis settle: %w", err)
	}
	return nil
}

// Cancel implements Limiter in one round trip.
func (r *Redis) Cancel(ctx context.Context, t *Ticket) error {
	if err := r.claim(t); err != nil {
		return err
	}
	if len(t.scopes) == 0 {
		return nil
	}
	if err := cancelScript.Run(ctx, r.client, r.ticketKeys(t), t.id, t.tokens).Err(); err != nil {
		return fmt.Errorf("ratelimit: redis cancel: %w", err)
	}
	return nil
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

func (r *Redis) ticketKeys(t *Ticket) []string {
	keys := make([]string, 0, 2*len(t.scopes))
	for _, s := range t.scopes {
		keys = append(keys, r.keys+"l:"+s, r.keys+"c:"+s)
	}
	return keys
}
