package script

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Call is one script call on a pipeline: its keys and arguments, kept to
// run it again with EVAL when the server did not have the script.
type Call struct {
	Keys []string
	Args []any
	cmd  *redis.Cmd
}

// Queue adds the call of s to pipe.
func (c *Call) Queue(ctx context.Context, pipe redis.Pipeliner, s *redis.Script) {
	c.cmd = s.EvalSha(ctx, pipe, c.Keys, c.Args...)
}

// Result returns the call's reply, after the pipeline ran, or, when the
// server did not have the script (NOSCRIPT: once after each server start
// or SCRIPT FLUSH), the reply of running s again with EVAL on client.
func (c *Call) Result(ctx context.Context, client redis.Scripter, s *redis.Script) *redis.Cmd {
	if redis.HasErrorPrefix(c.cmd.Err(), "NOSCRIPT") {
		return s.Eval(ctx, client, c.Keys, c.Args...)
	}
	return c.cmd
}

// Group is one side's share (rate limits' or budgets') of a batch of
// admissions in one slot group: the hashes its requests name, each
// request's size, the call and its reply. Each side's Group embeds it
// and adds its own arguments and reply sizes.
type Group struct {
	Call
	slot     string
	keyIndex map[string]int // 1-based, as Lua counts
	// Sizes holds each request's number of entries, as its side counts
	// them (a request's arguments and reply follow from it).
	Sizes   []int
	replies Batch
}

// NewGroup returns the empty group of slot ("" on a standalone server,
// the scope whose hash tag the keys share on a cluster).
func NewGroup(slot string) Group { return Group{slot: slot, keyIndex: map[string]int{}} }

// Slot names the group's slot: "" on a standalone server, the scope whose
// hash tag its keys share on a cluster.
func (g *Group) Slot() string { return g.slot }

// Key returns k's place in Keys, from 1 as Lua counts, adding it if new.
func (g *Group) Key(k string) int {
	ki, ok := g.keyIndex[k]
	if !ok {
		g.Keys = append(g.Keys, k)
		ki = len(g.Keys)
		g.keyIndex[k] = ki
	}
	return ki
}

// Len returns how many requests the group holds.
func (g *Group) Len() int { return len(g.Sizes) }

// SetReplies fills the group's replies: vals, request q's run being
// size(q) integers, or err. Calls after the first do nothing.
func (g *Group) SetReplies(vals []int64, err error, size func(q int) int) {
	g.replies.Set(vals, err, g.Len(), size)
}

// Reply returns request q's reply: from SetReplies, or else from the
// group's own call of s.
func (g *Group) Reply(ctx context.Context, client redis.Scripter, s *redis.Script, q int, size func(q int) int) ([]int64, error) {
	g.replies.Load(func() ([]int64, error) { return g.Result(ctx, client, s).Int64Slice() }, g.Len(), size)
	return g.replies.Request(q, size(q))
}

// Part is what of one admission a side's group carries: the group, the
// admission's request number there, and which of the admission's entries
// (its limits or budget counters, by place) the request holds, in order.
type Part[G any] struct {
	Group G
	Req   int
	Idx   []int
}
