package governance

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/junctionhq/junction/internal/governance/budget"
	"github.com/junctionhq/junction/internal/governance/ratelimit"
	"github.com/junctionhq/junction/internal/governance/script"
)

// admitScript admits a batch of requests in one slot group, rate limits
// and budgets together: one call per slot group and round trip, where a
// script per side would take two. KEYS are the rate-limit hashes, then
// the budget hashes. ARGV are the window and its bucket width, the lease
// and its bucket width (µs; 0 for a side the group lacks), how many of
// KEYS are rate limits, the number of requests and, per request, which
// sides it has (1 rate limits, 2 budgets, 3 both) and each side's
// arguments as its own script takes them. Each request is decided on both
// sides before either charges: when one side refuses it, the other
// charges nothing and answers as if it had admitted, so that within a slot
// an admission is all-or-nothing without a give-back. It returns each
// request's replies, rate limits first, as each side's script does.
var admitScript = redis.NewScript(ratelimit.LuaWindows + budget.LuaLeases + `
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000000 + tonumber(tm[2])
local w, b
if ARGV[2] ~= '0' then w = windows(ARGV[1] + 0, ARGV[2] + 0, now, 0) end
if ARGV[4] ~= '0' then b = leases(ARGV[3] + 0, ARGV[4] + 0, now, ARGV[5] + 0) end
local out, a = {}, 7
for _ = 1, ARGV[6] + 0 do
  local sides = ARGV[a]
  a = a + 1
  local ql, qb
  if sides ~= '2' then ql, a = w.decide(a) end
  if sides ~= '1' then qb, a = b.decide(a) end
  if ql then w.commit(ql, not qb or qb.status ~= 0, out) end
  if qb then b.commit(qb, not ql or ql.refuse == 0, out) end
end
if w then w.finish() end
if b then b.finish() end
return out
`)

// slotCall is one slot group's script in an admission batch: its rate
// limit and budget groups (either may be nil) and its requests, each with
// its number in either group or -1.
type slotCall struct {
	script.Call
	client redis.Scripter
	rl     *ratelimit.Group
	bg     *budget.Group
	reqs   [][2]int
}

// queueSlots adds to pipe one script per slot group for the admissions
// (rls[i] and bgs[i] are one request's sides, either may be nil), and
// returns a function that, after pipe.Exec, hands every group its
// replies; the admissions' Result may be called after it.
func queueSlots(ctx context.Context, client redis.Scripter, pipe redis.Pipeliner, rl *ratelimit.Redis, bg *budget.Redis, rls []*ratelimit.Pending, bgs []*budget.Pending) func() {
	var rp []*ratelimit.Pending
	for _, p := range rls {
		if p != nil {
			rp = append(rp, p)
		}
	}
	var bp []*budget.Pending
	for _, p := range bgs {
		if p != nil {
			bp = append(bp, p)
		}
	}
	rl.Groups(ctx, rp)
	bg.Groups(ctx, bp)
	calls := map[string]*slotCall{}
	var order []*slotCall
	call := func(slot string) *slotCall {
		c := calls[slot]
		if c == nil {
			c = &slotCall{client: client}
			calls[slot] = c
			order = append(order, c)
		}
		return c
	}
	type at struct {
		c *slotCall
		q int
	}
	var mine []at // one request's place in each call
	place := func(c *slotCall) *[2]int {
		for _, m := range mine {
			if m.c == c {
				return &c.reqs[m.q]
			}
		}
		mine = append(mine, at{c, len(c.reqs)})
		c.reqs = append(c.reqs, [2]int{-1, -1})
		return &c.reqs[len(c.reqs)-1]
	}
	for i := range max(len(rls), len(bgs)) {
		mine = mine[:0]
		if i < len(rls) && rls[i] != nil {
			for _, s := range rls[i].Slots() {
				c := call(s.Group.Slot())
				c.rl = s.Group
				place(c)[0] = s.Req
			}
		}
		if i < len(bgs) && bgs[i] != nil {
			for _, s := range bgs[i].Slots() {
				c := call(s.Group.Slot())
				c.bg = s.Group
				place(c)[1] = s.Req
			}
		}
	}
	for _, c := range order {
		var win, bw, lease, lw int64
		nk := 0
		if c.rl != nil {
			win, bw = c.rl.Params()
			c.Keys = append(c.Keys, c.rl.Keys...)
			nk = len(c.Keys)
		}
		if c.bg != nil {
			lease, lw = c.bg.Params()
			c.Keys = append(c.Keys, c.bg.Keys...)
		}
		c.Args = append(make([]any, 0, 6+len(c.reqs)*24), win, bw, lease, lw, nk, len(c.reqs))
		for _, r := range c.reqs {
			sides := 0
			if r[0] >= 0 {
				sides |= 1
			}
			if r[1] >= 0 {
				sides |= 2
			}
			c.Args = append(c.Args, sides)
			if r[0] >= 0 {
				c.Args = append(c.Args, c.rl.Request(r[0])...)
			}
			if r[1] >= 0 {
				c.Args = append(c.Args, c.bg.Request(r[1])...)
			}
		}
		c.Queue(ctx, pipe, admitScript)
	}
	return func() {
		for _, c := range order {
			c.reply(ctx)
		}
	}
}

// reply splits the call's reply between its groups.
func (c *slotCall) reply(ctx context.Context) {
	vals, err := c.Result(ctx, c.client, admitScript).Int64Slice()
	var rv, bv []int64
	if err == nil {
		n := 0
		for _, r := range c.reqs {
			if r[0] >= 0 {
				n += c.rl.ReplyLen(r[0])
			}
			if r[1] >= 0 {
				n += c.bg.ReplyLen(r[1])
			}
		}
		if n != len(vals) {
			err = fmt.Errorf("governance: redis admit: unexpected reply %v", vals)
		}
	}
	if err == nil {
		at := 0
		for _, r := range c.reqs {
			if r[0] >= 0 {
				n := c.rl.ReplyLen(r[0])
				rv = append(rv, vals[at:at+n]...)
				at += n
			}
			if r[1] >= 0 {
				n := c.bg.ReplyLen(r[1])
				bv = append(bv, vals[at:at+n]...)
				at += n
			}
		}
	}
	if c.rl != nil {
		c.rl.SetReply(rv, err)
	}
	if c.bg != nil {
		c.bg.SetReply(bv, err)
	}
}
