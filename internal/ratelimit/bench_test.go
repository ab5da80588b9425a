package ratelimit

import (
	"context"
	"testing"
	"time"
)

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
		run(b, NewRedis(newRedisClient(b), testPrefix(b), WithWindow(time.Second)))
	})
}
