package capacity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Invoke sends one request with body and reports whether it succeeded.
// It must return when ctx is done.
type Invoke func(ctx context.Context, body []byte) error

// Defaults of a Driver's settings.
const (
	DefaultStepDuration   = 5 * time.Second
	DefaultMaxConcurrency = 64
)

// Driver runs the rising-load measurement. Its zero value is not usable:
// Invoke and LatencyTarget are required.
type Driver struct {
	// Invoke sends one request; Body is what every request sends.
	Invoke Invoke
	Body   []byte
	// LatencyTarget is the p95 latency a step must keep to count.
	LatencyTarget time.Duration
	// StepDuration is how long each concurrency level runs (default
	// DefaultStepDuration). Requests in flight when it ends are waited
	// for and counted.
	StepDuration time.Duration
	// MaxConcurrency is the highest level tried (default
	// DefaultMaxConcurrency). Levels double from 1; the last is
	// MaxConcurrency itself.
	MaxConcurrency int
	// MaxErrorRate is the share of failed requests a step may have
	// (0 allows none). A step with more ends the run and does not count.
	MaxErrorRate float64
	// MinGain is the least rise in throughput over the best step so far,
	// as a fraction (0.05 is 5%), that makes the next level worth trying;
	// 0 continues on any rise.
	MinGain float64
	// Progress, when set, is called after each step with what it
	// achieved.
	Progress func(Step)
}

// Run measures. It returns the steps run so far and ctx's error when ctx
// ends first (a step cut short is left out). A run in which no step
// kept p95 within the target is not an error: Result.Best is nil and
// Result.Stopped says why.
func (d *Driver) Run(ctx context.Context) (*Result, error) {
	if d.Invoke == nil {
		return nil, errors.New("capacity: Driver.Invoke is required")
	}
	if d.LatencyTarget <= 0 {
		return nil, errors.New("capacity: the latency target must be positive")
	}
	if d.MaxErrorRate < 0 || d.MaxErrorRate >= 1 || d.MinGain < 0 {
		return nil, fmt.Errorf("capacity: MaxErrorRate %g must be in [0, 1) and MinGain %g not negative", d.MaxErrorRate, d.MinGain)
	}
	step, maxConc := d.StepDuration, d.MaxConcurrency
	if step <= 0 {
		step = DefaultStepDuration
	}
	if maxConc <= 0 {
		maxConc = DefaultMaxConcurrency
	}
	res := &Result{LatencyTarget: d.LatencyTarget, StepDuration: step}
	var best *Step
	for c := 1; ; c = min(c*2, maxConc) {
		s := d.step(ctx, c, step)
		if err := ctx.Err(); err != nil {
			res.Best, res.Stopped = best, "cancelled: "+err.Error()
			return res, err
		}
		res.Steps = append(res.Steps, s)
		if d.Progress != nil {
			d.Progress(s)
		}
		stop, passed := d.judge(s, best)
		if passed && (best == nil || s.RPS > best.RPS) {
			best = &res.Steps[len(res.Steps)-1]
		}
		if stop == "" && c == maxConc {
			stop = fmt.Sprintf("reached the maximum concurrency, %d", maxConc)
		}
		if stop != "" {
			res.Stopped = stop
			break
		}
	}
	if best != nil {
		b := *best
		res.Best = &b
	}
	return res, nil
}

// judge applies the stop rules to step s, given the best passing step
// before it: it returns why the run stops here ("" to go on) and whether
// s itself counts.
func (d *Driver) judge(s Step, best *Step) (stop string, passed bool) {
	target := float64(d.LatencyTarget) / float64(time.Millisecond)
	switch {
	case s.ErrorRate() > d.MaxErrorRate:
		why := fmt.Sprintf("%d of %d requests failed at concurrency %d", s.Errors, s.Requests, s.Concurrency)
		if s.FirstError != "" {
			why += " (first: " + s.FirstError + ")"
		}
		return why, false
	case s.P95MS > target:
		return fmt.Sprintf("p95 %s ms passed the %s ms target at concurrency %d", ms(s.P95MS), ms(target), s.Concurrency), false
	case best != nil && s.RPS < best.RPS*(1+d.MinGain):
		return fmt.Sprintf("throughput stopped rising at concurrency %d (%s req/s against %s at %d)",
			s.Concurrency, FormatRPS(s.RPS), FormatRPS(best.RPS), best.Concurrency), true
	}
	return "", true
}

// step keeps c requests in flight for length, then waits for the last to
// finish.
func (d *Driver) step(ctx context.Context, c int, length time.Duration) Step {
	start := time.Now()
	deadline := start.Add(length)
	latencies := make([][]time.Duration, c)
	failures := make([]int, c)
	var (
		mu       sync.Mutex
		firstErr error
		firstAt  time.Time
	)
	var wg sync.WaitGroup
	for w := range c {
		wg.Go(func() {
			for {
				t0 := time.Now()
				if !t0.Before(deadline) || ctx.Err() != nil {
					return
				}
				err := d.Invoke(ctx, d.Body)
				if err == nil {
					latencies[w] = append(latencies[w], time.Since(t0))
					continue
				}
				failures[w]++
				mu.Lock()
				if firstErr == nil || t0.Before(firstAt) {
					firstErr, firstAt = err, t0
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var all []time.Duration
	s := Step{Concurrency: c, Seconds: time.Since(start).Seconds()}
	for w := range c {
		all = append(all, latencies[w]...)
		s.Errors += failures[w]
	}
	s.Requests = len(all) + s.Errors
	if firstErr != nil {
		s.FirstError = firstErr.Error()
	}
	if s.Seconds > 0 {
		s.RPS = float64(len(all)) / s.Seconds
	}
	slices.Sort(all)
	s.P50MS, s.P95MS, s.P99MS = percentile(all, 50), percentile(all, 95), percentile(all, 99)
	return s
}

// percentile returns the pct-th percentile of sorted latencies in
// milliseconds by nearest rank: the smallest value with at least pct% of
// the values at or below it. It is 0 for no values.
func percentile(sorted []time.Duration, pct int) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := (pct*n + 99) / 100 // ⌈pct·n/100⌉, in integers
	return float64(sorted[max(rank, 1)-1]) / float64(time.Millisecond)
}

// ms writes milliseconds with at most one decimal.
func ms(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.1f", v)
}
