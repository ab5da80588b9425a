package hosting

import (
	"testing"
	"time"
)

func TestDrainWaitsForCallsInFlightAndRefusesNewOnes(t *testing.T) {
	c := &reconciler{opts: Options{DrainTimeout: time.Minute}}
	in := &instance{}
	in.ready.Store(true)
	if !in.acquire() {
		t.Fatal("a ready instance refused a call")
	}
	drained := make(chan bool)
	go func() { drained <- c.drain(in) }()
	deadline := time.Now().Add(10 * time.Second)
	for !in.draining.Load() {
		if time.Now().After(deadline) {
			t.Fatal("drain did not start")
		}
		time.Sleep(time.Millisecond)
	}
	if in.acquire() {
		t.Fatal("a draining instance took a new call")
	}
	if in.ready.Load() {
		t.Fatal("a draining instance is still in rotation")
	}
	select {
	case <-drained:
		t.Fatal("drain finished with a call in flight")
	default:
	}
	in.release()
	if ok := <-drained; !ok {
		t.Fatal("drain reported a timeout although the call finished")
	}
}

func TestDrainGivesUpAtItsTimeout(t *testing.T) {
	c := &reconciler{opts: Options{DrainTimeout: 20 * time.Millisecond}}
	in := &instance{}
	in.acquire()
	if c.drain(in) {
		t.Fatal("drain reported success with a call still in flight")
	}
}
