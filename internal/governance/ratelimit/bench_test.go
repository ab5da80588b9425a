package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/junctionhq/junction/internal/testkit/redistest"
)

// redisCPU reports the CPU time redis-server spent per operation
// (redis-µs/op) from when it is called to when the function it returns is.
func redisCPU(b *testing.B, c redis.UniversalClient) func() {
	ctx := context.Background()
	before, err := redistest.CPU(ctx, c)
	if err != nil {
		b.Fatal(err)
	}
	return func() {
		after, err := redistest.CPU(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64((after-before).Microseconds())/float64(b.N), "redis-µs/op")
	}
}

// Three limits, as a request on a team key meets: key, team and team×model.
var benchLimits = []Limit{
	{Scope: "key:k1", RPM: 1 << 40, TPM: 1 << 50},
	{Scope: "team:t1", TPM: 1 << 50},
	{Scope: "team:t1|model:m1", RPM: 1 << 40},
}

// BenchmarkAdmit measures one admission under three limits. The one-second
// window keeps the logs the benchmark leaves behind bounded; a charge costs
// the same whatever the window.
func BenchmarkAdmit(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, l Limiter) {
		b.ReportAllocs()
		for b.Loop() {
			if d, _, err := l.Admit(ctx, benchLimits, 1000); err != nil || !d.Allowed {
				b.Fatal(d, err)
			}
		}
	}
	b.Run("memory", func(b *testing.B) { run(b, NewMemory(nil, WithWindow(time.Second))) })
	b.Run("memory/parallel", func(b *testing.B) {
		m := NewMemory(nil, WithWindow(time.Second))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if d, _, err := m.Admit(ctx, benchLimits, 1000); err != nil || !d.Allowed {
					b.Error(d, err)
					return
				}
			}
		})
	})
	b.Run("redis", func(b *testing.B) {
		c := newRedisClient(b)
		defer redisCPU(b, c)()
		run(b, NewRedis(c, testPrefix(b), WithWindow(time.Second)))
	})
	b.Run("cluster", func(b *testing.B) {
		c := newClusterClient(b)
		defer redisCPU(b, c)()
		run(b, NewRedis(c, testPrefix(b), WithWindow(time.Second)))
	})
}
