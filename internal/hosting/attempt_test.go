package hosting

import (
	"errors"
	"testing"
)

func readyVariant(n int) *variant {
	v := &variant{}
	var list []*instance
	for range n {
		in := &instance{v: v}
		in.ready.Store(true)
		list = append(list, in)
	}
	v.setInstances(list)
	return v
}

func TestTryMovesOnOnlyWhenTheCallNeverReachedAServer(t *testing.T) {
	errRefused, errCut := errors.New("refused"), errors.New("cut")
	cases := []struct {
		name      string
		instances int
		answers   []error // per attempt; retry when errRefused
		wantCalls int
		wantErr   error
	}{
		{"first answers", 3, []error{nil}, 1, nil},
		{"refused twice, third answers", 3, []error{errRefused, errRefused, nil}, 3, nil},
		{"a cut connection is not retried", 3, []error{errCut}, 1, errCut},
		{"at most maxAttempts", 5, []error{errRefused, errRefused, errRefused, nil}, maxAttempts, errRefused},
		{"each instance once", 2, []error{errRefused, errRefused, nil}, 2, errRefused},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := readyVariant(c.instances)
			seen := map[*instance]bool{}
			calls := 0
			in, err := v.try(func(in *instance) (bool, bool, error) {
				if seen[in] {
					t.Fatal("an instance was tried twice")
				}
				seen[in] = true
				if in.outstanding.Load() != 1 {
					t.Fatalf("the call is not counted against its instance: %d", in.outstanding.Load())
				}
				e := c.answers[calls]
				calls++
				return false, e == errRefused, e
			})
			if calls != c.wantCalls || !errors.Is(err, c.wantErr) || (err == nil) != (in != nil) {
				t.Fatalf("calls %d, err %v, instance %v; want %d calls, err %v", calls, err, in, c.wantCalls, c.wantErr)
			}
			for _, in := range v.instances() {
				if in.outstanding.Load() != 0 {
					t.Fatal("a finished call still counts against its instance")
				}
			}
		})
	}
}

func TestTryKeepsTheInstanceForAStreamAndSkipsDrainingOnes(t *testing.T) {
	v := readyVariant(2)
	draining := v.instances()[0]
	draining.draining.Store(true)
	in, err := v.try(func(in *instance) (bool, bool, error) {
		if in == draining {
			t.Fatal("a draining instance was called")
		}
		return true, false, nil
	})
	if err != nil || in == nil || in.outstanding.Load() != 1 {
		t.Fatalf("a stream should keep its instance until closed: %v %v", in, err)
	}
	if _, err := readyVariant(0).try(func(*instance) (bool, bool, error) { return false, false, nil }); err != nil {
		t.Fatalf("no instance: want no error (the caller says none is ready), got %v", err)
	}
}
