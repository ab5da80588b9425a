package governance

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/junctionhq/junction/internal/testkit/redistest"
)

// floorScript makes the Redis calls an exact admission of batchSize
// requests makes on one slot (the server's clock, then each hash read
// once and written once) and answers as many integers, with none of its
// logic: what any script keeping the state in these hashes pays.
var floorScript = redis.NewScript(`
local tm = redis.call('TIME')
for i = 1, #KEYS do redis.call('HMGET', KEYS[i], 'R', 'T', 'o', 'n', 'r1', 't1') end
for i = 1, #KEYS do redis.call('HSET', KEYS[i], 'R', ARGV[1], 'T', ARGV[2], 'r1', ARGV[3], 't1', ARGV[4]) end
local out = {}
for i = 1, ARGV[6] * 16 do out[i] = i end
return out
`)

// BenchmarkAdmitScript measures one call of the exact admission script for a batch of five requests on one
// server: a rate limit on global, a budget on global and one on each
// request's key, far from their limits. Beside it, floorScript with the
// same keys and arguments: the calls and the reply alone. What is left
// between them is the script's Lua: deciding, charging, converting
// numbers. script-µs/call is Redis's own accounting of the time inside
// the script (INFO commandstats: wall time, which a busy machine inflates
// by preempting redis-server mid-script); redis-cpu-µs/call is the
// server's CPU time per call (INFO cpu), the network's part included.
func BenchmarkAdmitScript(b *testing.B) {
	const batch = 5
	ctx := context.Background()
	c := redistest.Client(b)
	// The arguments, as queueSlots lays them out (see admitScript): the
	// window and its bucket width, the lease and its bucket width, one
	// rate-limit hash, the number of requests; per request its sides,
	// one rate-limit entry and two budget counters (global's, its key's),
	// each with a hard budget.
	now := time.Now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	period := func(from, to time.Time) []any { // start and end (µs), the hash's expiry (ms)
		return []any{from.UnixMicro(), to.UnixMicro(), to.Add(24 * time.Hour).UnixMilli()}
	}
	global, key := period(month, month.AddDate(0, 1, 0)), period(day, day.AddDate(0, 0, 1))
	args := []any{60_000_000, 1_000_000, 900_000_000, 15_000_000, 1, batch}
	for i := range batch {
		args = append(args, 3,
			1, 1, 1_000_000_000, 1_000_000_000_000, 1, 1500, 1, 1500, 0,
			2, 2,
			1, global[0], global[1], global[2], 7_500_000, 7_500_000,
			2+i, key[0], key[1], key[2], 7_500_000, 7_500_000,
			1, 1_000_000_000_000_000, 0, 2, 1_000_000_000_000_000, 0)
	}
	for _, s := range []struct {
		name   string
		script *redis.Script
	}{{"admit", admitScript}, {"floor", floorScript}} {
		b.Run(s.name, func(b *testing.B) {
			p := redistest.Prefix(b)
			keys := []string{"{" + p + "}:rl", "{" + p + "}:bg:global"}
			for i := range batch {
				keys = append(keys, "{"+p+"}:bg:key"+strconv.Itoa(i))
			}
			out, err := s.script.Run(ctx, c, keys, args...).Int64Slice()
			if err != nil {
				b.Fatal(err)
			}
			// Per request: the rate limits' reply (allowed first, then four
			// more and five per entry), then the budgets' (status first,
			// then four more and one per counter).
			if len(out) != batch*16 {
				b.Fatalf("reply of %d integers, want %d", len(out), batch*16)
			}
			for i := range batch {
				if r := out[16*i:]; s.name == "admit" && (r[0] != 1 || r[9] != 1) {
					b.Fatalf("request %d not admitted: %v", i, r[:16])
				}
			}
			// usage reads the server's script calls and time (INFO
			// commandstats) and its CPU time (INFO cpu).
			usage := func() (redistest.CommandTime, time.Duration) {
				stats, err := redistest.CommandStats(ctx, c)
				if err != nil {
					b.Fatal(err)
				}
				cpu, err := redistest.CPU(ctx, c)
				if err != nil {
					b.Fatal(err)
				}
				return stats["evalsha"], cpu
			}
			before, cpu0 := usage()
			for b.Loop() {
				if err := s.script.EvalSha(ctx, c, keys, args...).Err(); err != nil {
					b.Fatal(err)
				}
			}
			after, cpu1 := usage()
			calls := after.Calls - before.Calls
			if calls < int64(b.N) {
				b.Fatalf("commandstats counted %d calls of %d", calls, b.N)
			}
			usec := float64(after.Usec - before.Usec)
			b.ReportMetric(usec/float64(calls), "script-µs/call")
			b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "redis-cpu-µs/call")
		})
	}
}
