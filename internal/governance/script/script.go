// Package script holds what the Lua admission scripts of rate limits and
// budgets share: the server's clock, the body of a script that runs one
// side alone, a script call kept to be run again with EVAL (Call), one
// side's share of a slot group's batch (Group), and the splitting of a
// batch's reply into each request's part. Each side's admission logic is a Lua chunk of its own package
// (ratelimit.LuaWindows, budget.LuaLeases); the governance package runs
// both in one script per slot group.
//
// Every request's answer is a run of integers whose length is known
// before the script runs; a batch's reply is those runs in order.
package script

import (
	"fmt"
	"sync"
)

// Now is a Lua chunk that sets now to the server's time in µs.
const Now = `
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000000 + tonumber(tm[2])
`

// Alone returns the Lua of an admission script that runs one side alone:
// side is its constructor (windows or leases), called with ARGV[1],
// ARGV[2], now and no key offset; ARGV[3] is the number of requests, whose
// arguments follow, and the reply is every request's run, in order.
func Alone(side string) string {
	return Now + `
local side = ` + side + `(ARGV[1] + 0, ARGV[2] + 0, now, 0)
local out, a = {}, 4
for _ = 1, ARGV[3] + 0 do
  local q
  q, a = side.decide(a)
  side.commit(q, true, out)
end
side.finish()
return out
`
}

// Batch is one script's reply to a batch of requests. Its zero value is
// ready; Set or Load fills it, once.
type Batch struct {
	once sync.Once
	vals []int64
	at   []int // where each request's run starts in vals
	err  error
}

// Set fills b with vals, the runs of n requests of size(q) integers each,
// or with err. Calls after the first (or after Load) do nothing.
func (b *Batch) Set(vals []int64, err error, n int, size func(q int) int) {
	b.once.Do(func() { b.fill(vals, err, n, size) })
}

// Load fills b from load, run once, unless Set or Load already did.
func (b *Batch) Load(load func() ([]int64, error), n int, size func(q int) int) {
	b.once.Do(func() {
		vals, err := load()
		b.fill(vals, err, n, size)
	})
}

func (b *Batch) fill(vals []int64, err error, n int, size func(q int) int) {
	b.vals, b.err = vals, err
	if err != nil {
		return
	}
	b.at = make([]int, n)
	total := 0
	for q := range n {
		b.at[q] = total
		total += size(q)
	}
	if total != len(vals) {
		b.err = fmt.Errorf("unexpected reply %v", vals)
	}
}

// Request returns request q's run of size integers, or the error that
// stopped the batch.
func (b *Batch) Request(q, size int) ([]int64, error) {
	if b.err != nil {
		return nil, b.err
	}
	return b.vals[b.at[q] : b.at[q]+size], nil
}
