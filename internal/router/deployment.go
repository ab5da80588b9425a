package router

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Target is where a model name is served.
type Target struct {
	// Model is the name clients use.
	Model string
	// Provider is the configured provider's name.
	Provider string
	// ProviderType is openai, anthropic or bedrock.
	ProviderType string
	// Upstream is the adapter that calls the provider.
	Upstream llm.Provider
	// UpstreamModel is the provider's own model id.
	UpstreamModel string
	// Price is nil when the model has no known price.
	Price *ledger.Price
	// Guardrail ("ID" or "ID:VERSION") and GuardrailMode are the model's
	// guardrail, if it has one; GuardrailEnforced says a request may not
	// replace it.
	Guardrail, GuardrailMode string
	GuardrailEnforced        bool
	// Streams are the model's own stream timeouts.
	Streams config.Streams
	// prefill is whether the model continues a trailing assistant
	// message: configured, by provider type, or learnt from a rejection.
	prefill atomic.Bool
}

// Prefill reports whether the model continues an answer given as a
// trailing assistant message.
func (t *Target) Prefill() bool { return t.prefill.Load() }

// NoPrefill marks the model as not continuing assistant messages, after it
// rejected one.
func (t *Target) NoPrefill() { t.prefill.Store(false) }

// Health tunes passive health checks.
type Health struct {
	// FailureThreshold consecutive retryable failures start a cooldown.
	FailureThreshold int
	// Cooldown is the first cooldown; it doubles while the deployment
	// keeps failing, up to MaxCooldown.
	Cooldown, MaxCooldown time.Duration
	// RetriesPerSecond bounds the retries of one deployment across all
	// requests; zero means no bound.
	RetriesPerSecond int
}

// Deployment is something that serves a model — a provider model today, a
// self-hosted endpoint later — with the live statistics the balancing
// strategies read. One Deployment is shared by every route that uses its
// model, so what one route learns about it, all routes know.
type Deployment struct {
	*Target

	outstanding atomic.Int64
	latencyEWMA atomic.Uint64 // float64 bits, milliseconds
	latencyP90  atomic.Uint64 // float64 bits, milliseconds: mean + 1.28 sd
	ttftEWMA    atomic.Uint64 // float64 bits, milliseconds
	// coolUntil is the UnixNano time a cooldown ends; 0 when healthy.
	coolUntil atomic.Int64

	// tripped is set while the deployment has failed FailureThreshold
	// times in a row without a success since; probing while one request
	// tests it (a circuit breaker's half-open state).
	tripped, probing atomic.Bool

	mu       sync.Mutex
	variance float64 // exponentially weighted, of latency in ms
	failures int
	cooldown time.Duration
	health   *Health
	// retryWindow and retriesIn count the retries begun in the current
	// second, bounded by Health.RetriesPerSecond.
	retryWindow int64
	retriesIn   int
}

// ewmaWeight is the weight of a new latency sample.
const ewmaWeight = 0.2

// Outstanding is the number of calls in flight.
func (d *Deployment) Outstanding() int64 { return d.outstanding.Load() }

// Latency is the decaying average latency in milliseconds; 0 before the
// first success.
func (d *Deployment) Latency() float64 { return math.Float64frombits(d.latencyEWMA.Load()) }

// P90 estimates the 90th-percentile latency in milliseconds from the
// decaying mean and variance (as if normal); 0 before the first success.
func (d *Deployment) P90() float64 { return math.Float64frombits(d.latencyP90.Load()) }

// TTFT is the decaying average time to first token in milliseconds.
func (d *Deployment) TTFT() float64 { return math.Float64frombits(d.ttftEWMA.Load()) }

// CoolingDown reports whether the deployment is in cooldown at now.
func (d *Deployment) CoolingDown(now int64) bool { return d.coolUntil.Load() > now }

// Begin marks a call started.
func (d *Deployment) Begin() { d.outstanding.Add(1) }

// End marks a call finished, feeding its latency (and time to first token,
// if nonzero) into the averages and its outcome into passive health.
func (d *Deployment) End(latency, ttft time.Duration, err error) {
	d.outstanding.Add(-1)
	if err == nil {
		ms := float64(latency.Microseconds()) / 1000
		if ttft > 0 {
			observe(&d.ttftEWMA, float64(ttft.Microseconds())/1000)
		}
		d.mu.Lock()
		// Exponentially weighted mean and variance (West's update).
		mean := math.Float64frombits(d.latencyEWMA.Load())
		if mean == 0 {
			mean, d.variance = ms, 0
		} else {
			diff := ms - mean
			incr := ewmaWeight * diff
			mean += incr
			d.variance = (1 - ewmaWeight) * (d.variance + diff*incr)
		}
		d.latencyEWMA.Store(math.Float64bits(mean))
		d.latencyP90.Store(math.Float64bits(mean + 1.2816*math.Sqrt(d.variance)))
		d.failures, d.cooldown = 0, 0
		d.mu.Unlock()
		d.coolUntil.Store(0)
		d.tripped.Store(false)
		return
	}
	if !llm.Retryable(err) {
		return // the request's fault, not the deployment's
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failures++
	var wait time.Duration
	if e := llm.AsError(err); e.RetryAfter != "" {
		if secs, perr := time.ParseDuration(e.RetryAfter + "s"); perr == nil {
			wait = secs
		}
	}
	h := d.health
	if d.failures >= h.FailureThreshold {
		d.tripped.Store(true)
		if d.cooldown == 0 {
			d.cooldown = h.Cooldown
		} else {
			d.cooldown = min(d.cooldown*2, h.MaxCooldown)
		}
		wait = max(wait, d.cooldown)
	}
	if wait > 0 {
		d.coolUntil.Store(time.Now().Add(wait).UnixNano())
	}
}

// Tripped reports whether the deployment has failed enough times in a row
// to cool down, and has not answered since.
func (d *Deployment) Tripped() bool { return d.tripped.Load() }

// tryProbe takes the deployment's one probe, if no request holds it.
func (d *Deployment) tryProbe() bool { return d.probing.CompareAndSwap(false, true) }

// AllowRetry takes one of the deployment's retries for the current second
// and reports whether there was one left.
func (d *Deployment) AllowRetry() bool {
	limit := d.health.RetriesPerSecond
	if limit <= 0 {
		return true
	}
	sec := time.Now().Unix()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.retryWindow != sec {
		d.retryWindow, d.retriesIn = sec, 0
	}
	if d.retriesIn >= limit {
		return false
	}
	d.retriesIn++
	return true
}

func observe(v *atomic.Uint64, sample float64) {
	for {
		old := v.Load()
		cur := math.Float64frombits(old)
		next := sample
		if cur != 0 {
			next = cur + ewmaWeight*(sample-cur)
		}
		if v.CompareAndSwap(old, math.Float64bits(next)) {
			return
		}
	}
}

// unitPrice is the price used to rank deployments by cost: input plus
// output per 1K tokens; +Inf when unknown.
func (d *Deployment) unitPrice() float64 {
	if d.Price == nil {
		return math.Inf(1)
	}
	return d.Price.InputPer1K + d.Price.OutputPer1K
}
