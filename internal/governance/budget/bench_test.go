package budget

import (
	"context"
	"testing"
	"time"
)

// Two budgets, as a request on a team key meets: the key's daily and the
// team's monthly.
var benchBudgets = []Budget{
	{Scope: "key:k1", Period: Daily, Limit: 1 << 50},
	{Scope: "team:t1", Period: Monthly, Limit: 1 << 50},
}

// BenchmarkAdmit measures one admission under two budgets, and an admission
// with its settle. The one-second lease keeps the reservations an
// admit-only run leaves behind bounded.
func BenchmarkAdmit(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, e Enforcer, settle bool) {
		b.ReportAllocs()
		for b.Loop() {
			d, r, err := e.Admit(ctx, benchBudgets, Dollar/100)
			if err != nil || !d.Allowed {
				b.Fatal(d, err)
			}
			if settle {
				if _, err := e.Settle(ctx, r, Dollar/200); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("memory", func(b *testing.B) { run(b, NewMemory(nil, WithLease(time.Second)), false) })
	b.Run("memory/settle", func(b *testing.B) { run(b, NewMemory(nil, WithLease(time.Second)), true) })
	b.Run("redis", func(b *testing.B) {
		run(b, NewRedis(newRedisClient(b), testPrefix(b), WithLease(time.Second)), false)
	})
	b.Run("redis/settle", func(b *testing.B) {
		run(b, NewRedis(newRedisClient(b), testPrefix(b), WithLease(time.Second)), true)
	})
}
