package hosting

import (
	"fmt"
	"sync"
	"testing"
)

// BenchmarkHoldRelease measures the hold's own overhead: from an instance
// reported ready (wake) until every held call has resumed, for 1 and 50
// held calls. BenchmarkHandoff is the baseline in the same run: the same
// goroutines released by closing one channel, the least any hand-off
// costs.
func BenchmarkHoldRelease(b *testing.B) {
	for _, held := range []int{1, 50} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) {
			var q holdQueue
			for range b.N {
				var wg sync.WaitGroup
				var joined sync.WaitGroup
				b.StopTimer()
				for range held {
					wg.Add(1)
					joined.Add(1)
					go func() {
						defer wg.Done()
						ch, _ := q.join(held)
						joined.Done()
						<-ch
					}()
				}
				joined.Wait()
				b.StartTimer()
				q.wake()
				wg.Wait()
			}
		})
	}
}

func BenchmarkHandoff(b *testing.B) {
	for _, held := range []int{1, 50} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) {
			for range b.N {
				var wg, joined sync.WaitGroup
				ch := make(chan struct{})
				b.StopTimer()
				for range held {
					wg.Add(1)
					joined.Add(1)
					go func() {
						defer wg.Done()
						joined.Done()
						<-ch
					}()
				}
				joined.Wait()
				b.StartTimer()
				close(ch)
				wg.Wait()
			}
		})
	}
}

// Held calls are let go in the order they arrived, and one that gave up
// is not woken.
func TestHoldQueueOrderAndBound(t *testing.T) {
	var q holdQueue
	var chans []chan struct{}
	for range 3 {
		ch, ok := q.join(3)
		if !ok {
			t.Fatal("join refused below the bound")
		}
		chans = append(chans, ch)
	}
	if _, ok := q.join(3); ok {
		t.Fatal("a fourth call joined a queue bounded at 3")
	}
	q.leave(chans[1])
	if len(q.waiters) != 2 || q.waiters[0] != chans[0] || q.waiters[1] != chans[2] {
		t.Fatalf("after leave: %v", q.waiters)
	}
	q.wake()
	for _, i := range []int{0, 2} {
		select {
		case <-chans[i]:
		default:
			t.Fatalf("waiter %d not woken", i)
		}
	}
	select {
	case <-chans[1]:
		t.Fatal("a waiter that left was woken")
	default:
	}
	if _, ok := q.join(3); !ok {
		t.Fatal("the queue is not empty after wake")
	}
}
