package process

import (
	"encoding/json"
	"net/url"
	"testing"
)

// TestGPUsComeFromTheRuntimesPool: an instance asking for GPUs gets free
// ones as CUDA_VISIBLE_DEVICES, one asking for more than are free gets
// none, and a stopped instance's GPUs go to the next.
func TestGPUsComeFromTheRuntimesPool(t *testing.T) {
	r := newRuntime(t, "", WithGPUs([]int{2, 0, 1}))
	visible := func(in *Instance) string {
		t.Helper()
		st := waitReady(t, in)
		var env map[string]string
		if err := json.Unmarshal([]byte(get(t, st.Addr, "/env?"+url.Values{"name": {"CUDA_VISIBLE_DEVICES"}}.Encode())), &env); err != nil {
			t.Fatal(err)
		}
		return env["CUDA_VISIBLE_DEVICES"]
	}
	two := childSpec(t, "two", nil)
	two.GPUCount = 2
	a := start(t, r, two)
	if got := visible(a); got != "0,1" || len(a.Spec().GPUs) != 2 {
		t.Fatalf("first instance: CUDA_VISIBLE_DEVICES %q, spec GPUs %v", got, a.Spec().GPUs)
	}
	tooMany := childSpec(t, "too-many", nil)
	tooMany.GPUCount = 2
	b := start(t, r, tooMany)
	if got := visible(b); got != "" || len(b.Spec().GPUs) != 0 {
		t.Fatalf("with one GPU free, an instance asking for two got %q", got)
	}
	stopNow(t, a)
	again := childSpec(t, "again", nil)
	again.GPUCount = 3
	c := start(t, r, again)
	if got := visible(c); got != "0,1,2" {
		t.Fatalf("after the first stopped: CUDA_VISIBLE_DEVICES %q, want its GPUs back in the pool", got)
	}
}
