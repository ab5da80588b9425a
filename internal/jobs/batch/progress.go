package batch

import (
	"context"
	"sync"
	"time"
)

// rateWindow is how far back a running job's rate looks.
const rateWindow = 30 * time.Second

// progress is what this replica knows of a job it runs: its records done
// over time, for the rate, and how to stop it.
type progress struct {
	mu        sync.Mutex
	samples   []sample // oldest first, within rateWindow
	cancelled chan struct{}
	once      sync.Once
	stopRun   context.CancelFunc
}

type sample struct {
	at   time.Time
	done int64
}

func newProgress(j *Job) *progress {
	p := &progress{cancelled: make(chan struct{})}
	p.add(j.Completed + j.Failed)
	return p
}

// cancel marks the job cancelled by its owner.
func (p *progress) cancel() { p.once.Do(func() { close(p.cancelled) }) }

// add notes that done records are finished now.
func (p *progress) add(done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.samples = append(p.samples, sample{now, done})
	i := 0
	for i < len(p.samples)-2 && now.Sub(p.samples[i].at) > rateWindow {
		i++
	}
	p.samples = p.samples[i:]
}

// rate is records a second over the recent window.
func (p *progress) rate() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.samples) < 2 {
		return 0
	}
	a, b := p.samples[0], p.samples[len(p.samples)-1]
	d := b.at.Sub(a.at).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(b.done-a.done) / d
}

// Rate returns a job's records finished per second: measured over the
// last half minute when this replica runs it, else its average since it
// started. ETA is its pending records at that rate; 0 when unknown.
func (e *Engine) Rate(j *Job) (perSecond float64, eta time.Duration) {
	e.mu.Lock()
	p := e.running[j.ID]
	e.mu.Unlock()
	if p != nil {
		perSecond = p.rate()
	}
	if perSecond == 0 && !j.Status.Terminal() {
		if start, ok := j.Times[InProgress]; ok {
			if d := time.Since(time.Unix(start, 0)).Seconds(); d > 0 {
				perSecond = float64(j.Completed+j.Failed) / d
			}
		}
	}
	if perSecond > 0 && !j.Status.Terminal() {
		eta = time.Duration(float64(j.Pending()) / perSecond * float64(time.Second))
	}
	return perSecond, eta
}
