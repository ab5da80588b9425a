// Package capacity measures how much traffic a self-hosted endpoint
// serves within a latency target, and keeps the measurements.
//
// A Driver sends a request body with rising concurrency (1, 2, 4, … up to a
// maximum), one fixed-length step at each level, and records every step's
// throughput and latency percentiles. It stops when the 95th percentile
// passes the target, when too many requests fail, or when more concurrency
// no longer buys throughput; the answer is the step with the highest
// throughput that kept p95 within the target. Divided by the endpoint's
// ready instances, that is the capacity per instance the cost advisor sizes
// fleets with (docs/advisor.md, "Measured capacity").
//
// The Driver knows nothing of HTTP: it calls an Invoke function. Junction
// supplies the functions that reach an endpoint through Junction itself
// (the SageMaker runtime surface or the gateway). Store keeps measurements
// in Junction's database. The package does not serve HTTP and does not
// decide anything about cost: the advisor does.
package capacity

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
)

// Step is what one level of concurrency achieved.
type Step struct {
	// Concurrency is the number of requests kept in flight.
	Concurrency int `json:"concurrency"`
	// Requests counts every request that finished, Errors those that
	// failed.
	Requests int `json:"requests"`
	Errors   int `json:"errors"`
	// Seconds is the step's length, from its first request to the end of
	// its last.
	Seconds float64 `json:"seconds"`
	// RPS is successful requests per second.
	RPS float64 `json:"rps"`
	// P50MS, P95MS and P99MS are latency percentiles of the successful
	// requests, in milliseconds (nearest rank).
	P50MS float64 `json:"p50_ms"`
	P95MS float64 `json:"p95_ms"`
	P99MS float64 `json:"p99_ms"`
	// FirstError is the first failure's message, to say what went wrong.
	FirstError string `json:"first_error,omitempty"`
}

// ErrorRate is the share of the step's requests that failed.
func (s Step) ErrorRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Requests)
}

// Result is a whole run.
type Result struct {
	// LatencyTarget and StepDuration are the settings it ran with.
	LatencyTarget time.Duration `json:"-"`
	StepDuration  time.Duration `json:"-"`
	// Steps are in the order they ran.
	Steps []Step `json:"steps"`
	// Best is the step with the highest throughput that kept p95 within
	// the target and errors within bounds; nil when none did.
	Best *Step `json:"best,omitempty"`
	// Stopped says why the run went no further.
	Stopped string `json:"stopped"`
}

// Measurement is a run's answer for one endpoint, as it is stored.
type Measurement struct {
	// ID is set by the store.
	ID       int64  `json:"id,omitempty"`
	Endpoint string `json:"endpoint"`
	Config   string `json:"config"`
	// Variant is the production variant measured; empty when the load
	// went to every production variant (all of one instance type).
	Variant      string `json:"variant,omitempty"`
	InstanceType string `json:"instance_type"`
	// InstanceCount is the number of ready instances that shared the
	// load.
	InstanceCount   int `json:"instance_count"`
	LatencyTargetMS int `json:"latency_target_ms"`
	// RPS is the best step's throughput; RPSPerInstance is RPS divided
	// by InstanceCount: the advisor's capacity_rps_per_instance.
	RPS            float64 `json:"rps"`
	RPSPerInstance float64 `json:"rps_per_instance"`
	P50MS          float64 `json:"p50_ms"`
	P95MS          float64 `json:"p95_ms"`
	P99MS          float64 `json:"p99_ms"`
	// Concurrency is the best step's.
	Concurrency int `json:"concurrency"`
	// StepMS is how long each step ran.
	StepMS int64 `json:"step_ms"`
	// Stopped says why the run ended.
	Stopped string `json:"stopped,omitempty"`
	// USDPerHour is the instance type's hourly price when the
	// measurement was stored, from the hosting catalog (0 when it has
	// none); the advisor uses it for types its price catalog lacks.
	USDPerHour float64   `json:"usd_per_hour,omitempty"`
	MeasuredAt time.Time `json:"measured_at"`
	Steps      []Step    `json:"steps"`
}

// Measurement turns the run's best step into a measurement of t.
func (r *Result) Measurement(t *Target, at time.Time) (*Measurement, error) {
	if r.Best == nil {
		return nil, fmt.Errorf("no step kept p95 within %s: %s", r.LatencyTarget, r.Stopped)
	}
	b := r.Best
	m := &Measurement{
		Endpoint: t.Endpoint, Config: t.Config, Variant: t.Variant, InstanceType: t.InstanceType,
		InstanceCount: t.Instances, LatencyTargetMS: int(r.LatencyTarget.Milliseconds()),
		RPS: b.RPS, P50MS: b.P50MS, P95MS: b.P95MS, P99MS: b.P99MS, Concurrency: b.Concurrency,
		StepMS: r.StepDuration.Milliseconds(), Stopped: r.Stopped, MeasuredAt: at.UTC(), Steps: r.Steps,
	}
	return m, m.Validate()
}

// Validate checks a measurement and derives RPSPerInstance from RPS and
// InstanceCount, so that the two always agree. A bad measurement gives
// Problems.
func (m *Measurement) Validate() error {
	var ps Problems
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if m.Endpoint == "" {
		add("endpoint", "required")
	}
	if m.InstanceType == "" {
		add("instance_type", "required")
	}
	if m.InstanceCount < 1 {
		add("instance_count", "%d must be at least 1", m.InstanceCount)
	}
	if m.LatencyTargetMS < 1 {
		add("latency_target_ms", "%d must be at least 1", m.LatencyTargetMS)
	}
	if !(m.RPS > 0) || math.IsInf(m.RPS, 0) {
		add("rps", "%g must be a positive number", m.RPS)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"p50_ms", m.P50MS}, {"p95_ms", m.P95MS}, {"p99_ms", m.P99MS}} {
		if !(p.v >= 0) || math.IsInf(p.v, 0) {
			add(p.name, "%g must not be negative", p.v)
		}
	}
	if m.Concurrency < 1 {
		add("concurrency", "%d must be at least 1", m.Concurrency)
	}
	if len(ps) > 0 {
		return ps
	}
	m.RPSPerInstance = m.RPS / float64(m.InstanceCount)
	if m.Steps == nil {
		m.Steps = []Step{}
	}
	return nil
}

// Problem is one thing wrong with a measurement, at its JSON field.
type Problem struct {
	Field   string
	Message string
}

// Problems lists everything wrong with a measurement.
type Problems []Problem

func (ps Problems) Error() string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.Field + ": " + p.Message
	}
	return strings.Join(parts, "; ")
}

// Summary says what was measured in one line: "capacity measured
// 2026-11-25 by junction bench endpoint: 41.2 req/s per ml.g6.xlarge at
// p95 < 500 ms".
func (m *Measurement) Summary() string {
	return fmt.Sprintf("capacity measured %s by junction bench endpoint: %s req/s per %s at p95 < %d ms",
		m.MeasuredAt.UTC().Format("2006-01-02"), FormatRPS(m.RPSPerInstance), m.InstanceType, m.LatencyTargetMS)
}

// FormatRPS writes a throughput with three significant digits and at
// least one decimal: 41.2, 0.352, 1234.5. The advisor prices fleets with
// exactly the figure printed.
func FormatRPS(x float64) string {
	if x <= 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	decimals := 2 - int(math.Floor(math.Log10(x)))
	decimals = min(max(decimals, 1), 6)
	return strconv.FormatFloat(x, 'f', decimals, 64)
}

// Target is the part of an endpoint a run measures: which production
// variants take the load, on what instance type, and how many ready
// instances share it.
type Target struct {
	Endpoint string
	Config   string
	// Variant is the variant the load is sent to; empty sends it to all
	// production variants, which then share one instance type.
	Variant      string
	InstanceType string
	// Instances counts the ready instances of the variants measured.
	Instances int
	// Models are the models those variants serve, without repeats.
	Models []string
}

// TargetOf picks what a run on ep measures. With variant empty, every
// production variant of the endpoint's config takes the load, which is
// only a measure of one instance type if they all run the same one;
// otherwise variant must name one. The endpoint must be InService with
// no update in progress and at least one ready instance.
func TargetOf(ep *hosting.Endpoint, variant string) (*Target, error) {
	if ep.Status != hosting.StatusInService || ep.PendingConfig != "" {
		state := ep.Status
		if ep.PendingConfig != "" {
			state += " (moving to " + ep.PendingConfig + ")"
		}
		return nil, fmt.Errorf("endpoint %s is %s: measure an endpoint that is InService and not updating", ep.Name, state)
	}
	var prod []hosting.VariantSummary
	for _, v := range ep.Variants {
		if !v.Shadow && v.Config == ep.Config {
			prod = append(prod, v)
		}
	}
	t := &Target{Endpoint: ep.Name, Config: ep.Config, Variant: variant}
	chosen := prod
	if variant != "" {
		chosen = nil
		var names []string
		for _, v := range prod {
			names = append(names, v.Name)
			if v.Name == variant {
				chosen = append(chosen, v)
			}
		}
		if len(chosen) == 0 {
			return nil, fmt.Errorf("endpoint %s has no production variant %q (it has %s)", ep.Name, variant, strings.Join(names, ", "))
		}
	}
	if len(chosen) == 0 {
		return nil, fmt.Errorf("endpoint %s has no production variants", ep.Name)
	}
	seen := map[string]bool{}
	for _, v := range chosen {
		if t.InstanceType == "" {
			t.InstanceType = v.InstanceType
		}
		if v.InstanceType != t.InstanceType {
			var names []string
			for _, v := range chosen {
				names = append(names, v.Name+" ("+v.InstanceType+")")
			}
			return nil, fmt.Errorf("endpoint %s runs more than one instance type (%s): pick a variant to measure", ep.Name, strings.Join(names, ", "))
		}
		t.Instances += v.CurrentInstanceCount
		if !seen[v.Model] {
			seen[v.Model] = true
			t.Models = append(t.Models, v.Model)
		}
	}
	if t.Instances == 0 {
		return nil, fmt.Errorf("endpoint %s has no ready instance to measure", ep.Name)
	}
	return t, nil
}
