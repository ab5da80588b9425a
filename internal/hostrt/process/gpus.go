package process

import "sort"

// WithGPUs gives the runtime the GPU device indexes it may hand out: an
// instance whose Spec asks for GPUCount devices (and names none itself)
// gets that many free ones as CUDA_VISIBLE_DEVICES, and gives them back
// when it stops. With too few free, it runs without CUDA_VISIBLE_DEVICES
// set.
func WithGPUs(indexes []int) Option {
	return func(r *Runtime) {
		r.freeGPUs = append([]int(nil), indexes...)
		sort.Ints(r.freeGPUs)
	}
}

// takeGPUs returns n free GPUs, or none when too few are free. The caller
// holds r.mu.
func (r *Runtime) takeGPUs(n int) []int {
	if n <= 0 || len(r.freeGPUs) < n {
		return nil
	}
	out := append([]int(nil), r.freeGPUs[:n]...)
	r.freeGPUs = r.freeGPUs[n:]
	return out
}

// holdGPUs marks GPUs an adopted instance runs on as taken. The caller
// holds r.mu.
func (r *Runtime) holdGPUs(gpus []int) {
	for _, g := range gpus {
		for i, f := range r.freeGPUs {
			if f == g {
				r.freeGPUs = append(r.freeGPUs[:i], r.freeGPUs[i+1:]...)
				break
			}
		}
	}
}

// giveGPUs returns GPUs to the free list. The caller holds r.mu.
func (r *Runtime) giveGPUs(gpus []int) {
	if len(gpus) == 0 {
		return
	}
	r.freeGPUs = append(r.freeGPUs, gpus...)
	sort.Ints(r.freeGPUs)
}
