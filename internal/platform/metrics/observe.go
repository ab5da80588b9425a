package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Observation is one finished request, as the metrics see it.
type Observation struct {
	Surface, Model, Provider string
	Status                   int
	Latency                  time.Duration
	// TTFT is the time to first token of a stream; nil otherwise.
	TTFT                  *time.Duration
	Input, Output, Cached int
	// CostUSD is nil when the model has no known price.
	CostUSD *float64
	// Unpriced counts the request as served with an unknown price.
	Unpriced bool
	// Invocation marks an invocation of a hosted endpoint (Model is the
	// endpoint, empty when no variant took the call): it is also counted
	// in the junction_sagemaker_* series by endpoint and Variant, the
	// variant that served or failed it, with ModelLatency, the model
	// server's time, when it answered.
	Invocation   bool
	Variant      string
	ModelLatency time.Duration
}

// modelSet holds one model and provider's label-bound collectors, looked
// up once and reused: a label lookup hashes its values every time.
type modelSet struct {
	latency, ttft                    prometheus.Observer
	input, output, cached, cost, unp prometheus.Counter
}

type modelKey struct{ model, provider string }

type requestKey struct {
	surface, model, provider string
	status                   int
}

// cache is the Metrics' store of label-bound collectors.
type cache struct {
	models   sync.Map // modelKey -> *modelSet
	requests sync.Map // requestKey -> prometheus.Counter
}

func (m *Metrics) modelSet(model, provider string) *modelSet {
	k := modelKey{model, provider}
	if s, ok := m.cache.models.Load(k); ok {
		return s.(*modelSet)
	}
	s := &modelSet{
		latency: m.Latency.WithLabelValues(model, provider),
		ttft:    m.TTFT.WithLabelValues(model, provider),
		input:   m.Tokens.WithLabelValues(model, provider, "input"),
		output:  m.Tokens.WithLabelValues(model, provider, "output"),
		cached:  m.Tokens.WithLabelValues(model, provider, "cached"),
		cost:    m.Cost.WithLabelValues(model, provider),
		unp:     m.Unpriced.WithLabelValues(model, provider),
	}
	actual, _ := m.cache.models.LoadOrStore(k, s)
	return actual.(*modelSet)
}

// Observe records a finished request.
func (m *Metrics) Observe(o Observation) {
	rk := requestKey{o.Surface, o.Model, o.Provider, o.Status}
	c, ok := m.cache.requests.Load(rk)
	if !ok {
		c, _ = m.cache.requests.LoadOrStore(rk, m.Requests.WithLabelValues(o.Surface, o.Model, o.Provider, strconv.Itoa(o.Status)))
	}
	c.(prometheus.Counter).Inc()
	s := m.modelSet(o.Model, o.Provider)
	s.latency.Observe(o.Latency.Seconds())
	if o.TTFT != nil {
		s.ttft.Observe(o.TTFT.Seconds())
	}
	if o.Input > 0 || o.Output > 0 {
		s.input.Add(float64(o.Input))
		s.output.Add(float64(o.Output))
		s.cached.Add(float64(o.Cached))
	}
	if o.CostUSD != nil {
		s.cost.Add(*o.CostUSD)
	} else if o.Unpriced {
		s.unp.Inc()
	}
	if o.Invocation {
		m.Invocation(o.Model, o.Variant, o.Status, o.Latency, o.ModelLatency)
	}
}
