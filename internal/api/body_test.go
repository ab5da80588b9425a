package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// request is a POST with body; chunked hides its length, as a
// Transfer-Encoding: chunked request does.
func request(info *Info, body string, chunked bool) *http.Request {
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	if chunked {
		r.ContentLength = -1
		r.Body = io.NopCloser(strings.NewReader(body))
	}
	return r.WithContext(WithInfo(context.Background(), info))
}

func TestReadBodyHoldsItsBytesUntilReleased(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		budget := NewBodyBudget(2*chunk + 100)
		first := &Info{Bodies: budget}
		body := strings.Repeat("x", 100)
		got, e := ReadBody(httptest.NewRecorder(), request(first, body, chunked), 1<<20)
		if e != nil || string(got) != body {
			t.Fatalf("chunked %v: %v %q", chunked, e, got)
		}
		second := &Info{Bodies: budget}
		w := httptest.NewRecorder()
		if _, e := ReadBody(w, request(second, strings.Repeat("y", 2*chunk+1), chunked), 1<<20); e == nil ||
			e.Status != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Fatalf("chunked %v: past the budget: %v %v", chunked, e, w.Header())
		}
		first.ReleaseBody()
		second.ReleaseBody()
		if budget.InUse() != 0 || budget.Refused.Load() != 1 {
			t.Fatalf("chunked %v: in use %d, refused %d", chunked, budget.InUse(), budget.Refused.Load())
		}
		if got, e := ReadBody(httptest.NewRecorder(), request(&Info{Bodies: budget}, strings.Repeat("y", 2*chunk-1), chunked), 1<<20); e != nil || len(got) != 2*chunk-1 {
			t.Fatalf("chunked %v: after release: %v %d", chunked, e, len(got))
		}
	}
}

func TestReadBodyLimits(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		if _, e := ReadBody(httptest.NewRecorder(), request(&Info{}, strings.Repeat("x", 1001), chunked), 1000); e == nil || e.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("chunked %v: %v, want 413", chunked, e)
		}
		if got, e := ReadBody(httptest.NewRecorder(), request(&Info{}, strings.Repeat("x", 1000), chunked), 1000); e != nil || len(got) != 1000 {
			t.Fatalf("chunked %v: at the limit: %v %d", chunked, e, len(got))
		}
		if got, e := ReadBody(httptest.NewRecorder(), request(&Info{}, "", chunked), 1000); e != nil || len(got) != 0 {
			t.Fatalf("chunked %v: empty: %v %d", chunked, e, len(got))
		}
	}
}

// largeBody is the size of the bodies in the measurement.
const largeBody = 7_900_000

// BenchmarkReadLargeBody compares the memory one 7.9 MB body costs read
// with ReadBody (one buffer of the declared size) and with io.ReadAll
// (the baseline: a buffer grown by doubling): see B/op.
func BenchmarkReadLargeBody(b *testing.B) {
	data := bytes.Repeat([]byte("x"), largeBody)
	b.Run("ReadBody", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := httptest.NewRequest("POST", "/", bytes.NewReader(data))
			if _, e := ReadBody(httptest.NewRecorder(), r, 8<<20); e != nil {
				b.Fatal(e)
			}
		}
	})
	b.Run("io.ReadAll", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := httptest.NewRequest("POST", "/", bytes.NewReader(data))
			if _, err := io.ReadAll(http.MaxBytesReader(httptest.NewRecorder(), r.Body, 8<<20)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLargeBodiesInFlight reads ten 7.9 MB bodies at once, b.N
// times, under a 64 MiB budget and without one (the baseline), and
// reports the heap in use with all of them in flight and after they end
// and a GC runs.
func BenchmarkLargeBodiesInFlight(b *testing.B) {
	data := bytes.Repeat([]byte("x"), largeBody)
	for _, tc := range []struct {
		name   string
		budget *BodyBudget
	}{{"budget=64MiB", NewBodyBudget(64 << 20)}, {"no-budget", nil}} {
		b.Run(tc.name, func(b *testing.B) {
			var peak uint64
			refused := 0
			for b.Loop() {
				var wg, ready sync.WaitGroup
				hold := make(chan struct{})
				var mu sync.Mutex
				for range 10 {
					ready.Add(1)
					wg.Go(func() {
						info := &Info{Bodies: tc.budget}
						defer info.ReleaseBody()
						r := httptest.NewRequest("POST", "/", bytes.NewReader(data)).WithContext(WithInfo(context.Background(), info))
						body, e := ReadBody(httptest.NewRecorder(), r, 8<<20)
						if e != nil {
							mu.Lock()
							refused++
							mu.Unlock()
						}
						ready.Done()
						<-hold // all ten in flight at once
						runtime.KeepAlive(body)
					})
				}
				ready.Wait()
				runtime.GC() // count what the bodies hold, not earlier garbage
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
				close(hold)
				wg.Wait()
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(peak)/(1<<20), "in-flight-heap-MiB")
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "after-heap-MiB")
			b.ReportMetric(float64(refused)/float64(b.N), "refused/op")
		})
	}
}
