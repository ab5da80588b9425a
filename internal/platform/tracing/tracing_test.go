package tracing

import (
	"context"
	"testing"
)

// With no span in the context, as when tracing is off, Start hands back
// the context and a span that records nothing, allocating nothing.
func TestStartWithoutSpanAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		c, span := Start(ctx, "route")
		End(span, nil)
		if c != ctx || span.IsRecording() {
			t.Fatal("a span was made without a parent")
		}
	})
	if allocs != 0 {
		t.Errorf("Start and End allocate %v times without a span", allocs)
	}
}

// BenchmarkStartOff is the cost of a child span's helpers on the hot path
// with tracing off.
func BenchmarkStartOff(b *testing.B) {
	ctx := context.WithValue(context.Background(), struct{}{}, 1)
	b.ReportAllocs()
	for b.Loop() {
		_, span := Start(ctx, "route")
		End(span, nil)
	}
}
