package script

import (
	"errors"
	"slices"
	"testing"
)

// TestBatchSplitsRuns checks that a batch's reply is cut into each
// request's run, that a reply of the wrong length is an error for every
// request rather than runs read out of place, and that the first of Set
// and Load wins.
func TestBatchSplitsRuns(t *testing.T) {
	size := func(q int) int { return q + 1 } // runs of 1, 2 and 3
	var b Batch
	b.Set([]int64{1, 2, 2, 3, 3, 3}, nil, 3, size)
	b.Load(func() ([]int64, error) { t.Fatal("Load after Set ran"); return nil, nil }, 3, size)
	for q, want := range [][]int64{{1}, {2, 2}, {3, 3, 3}} {
		if got, err := b.Request(q, size(q)); err != nil || !slices.Equal(got, want) {
			t.Errorf("request %d: %v %v, want %v", q, got, err, want)
		}
	}
	var short Batch
	short.Load(func() ([]int64, error) { return []int64{1, 2, 2}, nil }, 3, size)
	if _, err := short.Request(0, 1); err == nil {
		t.Error("a reply shorter than its runs was read")
	}
	var failed Batch
	boom := errors.New("boom")
	failed.Set(nil, boom, 3, size)
	if _, err := failed.Request(2, 3); !errors.Is(err, boom) {
		t.Errorf("got %v, want the batch's error", err)
	}
}
