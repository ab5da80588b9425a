package hosting

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// mmeMetrics are the multi-model endpoints' Prometheus series, by
// endpoint and variant (never by model: clients name models, and must not
// grow the label set; per-model loads are in the endpoint's events and
// per-model calls in the ledger).
type mmeMetrics struct {
	once                         sync.Once
	loads, unloads, hits, misses *prometheus.CounterVec
	wait                         *prometheus.HistogramVec
}

// mmeSeries are one variant's series.
type mmeSeries struct {
	loads, unloads, hits, misses prometheus.Counter
	wait                         prometheus.Observer
}

func (p *plane) mmeMetrics() *mmeMetrics {
	m := &p.multiModel
	m.once.Do(func() {
		labels := []string{"endpoint", "variant"}
		counter := func(name, help string) *prometheus.CounterVec {
			return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		}
		m.loads = counter("junction_sagemaker_model_loads_total", "Models loaded into an instance of a multi-model endpoint.")
		m.unloads = counter("junction_sagemaker_model_unloads_total", "Models unloaded (evicted) from an instance of a multi-model endpoint.")
		m.hits = counter("junction_sagemaker_model_cache_hits_total", "Multi-model invocations whose model was loaded on the instance that served them (SageMaker's ModelCacheHit).")
		m.misses = counter("junction_sagemaker_model_cache_misses_total", "Multi-model invocations that waited for their model to load.")
		m.wait = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "junction_sagemaker_model_loading_wait_seconds",
			Help:    "How long a multi-model invocation waited for its model to load (SageMaker's ModelLoadingWaitTime).",
			Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 240}}, labels)
	})
	return m
}

// of returns a variant's series.
func (m *mmeMetrics) of(endpoint, variant string) mmeSeries {
	return mmeSeries{loads: m.loads.WithLabelValues(endpoint, variant), unloads: m.unloads.WithLabelValues(endpoint, variant),
		hits: m.hits.WithLabelValues(endpoint, variant), misses: m.misses.WithLabelValues(endpoint, variant),
		wait: m.wait.WithLabelValues(endpoint, variant)}
}

// MultiModelCollectors are the multi-model metrics, for the server to
// register.
func (p *plane) MultiModelCollectors() []prometheus.Collector {
	m := p.mmeMetrics()
	return []prometheus.Collector{m.loads, m.unloads, m.hits, m.misses, m.wait}
}
