// Package metrics defines Junction's Prometheus metrics, so every name and
// label set is declared in one place.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors.
type Metrics struct {
	reg     *prometheus.Registry
	cache   cache
	hosting *hostingMetrics
	// interventions counts guardrail interventions.
	interventions *prometheus.CounterVec

	// Requests counts requests by surface, model, provider and status.
	Requests *prometheus.CounterVec
	// Latency is total request latency by model and provider.
	Latency *prometheus.HistogramVec
	// TTFT is the time to first token of streams by model and provider.
	TTFT *prometheus.HistogramVec
	// Tokens counts tokens by model, provider and kind (input, output, cached).
	Tokens *prometheus.CounterVec
	// Cost sums USD cost by model and provider.
	Cost *prometheus.CounterVec
	// Unpriced counts successful requests whose model has no known price.
	Unpriced *prometheus.CounterVec
}

// New registers the collectors on a fresh registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	m := &Metrics{
		reg: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "junction_requests_total",
			Help: "Requests handled, by inbound surface, model, provider and HTTP status."}, []string{"surface", "model", "provider", "status"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "junction_request_duration_seconds",
			Help: "Total request latency.", Buckets: buckets}, []string{"model", "provider"}),
		TTFT: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "junction_time_to_first_token_seconds",
			Help: "Time from request to the first streamed token.", Buckets: buckets}, []string{"model", "provider"}),
		Tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "junction_tokens_total",
			Help: "Tokens processed, by kind: input, output or cached (cached is part of input)."}, []string{"model", "provider", "kind"}),
		Cost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "junction_cost_usd_total",
			Help: "Cost of requests in USD, from the price catalog."}, []string{"model", "provider"}),
		Unpriced: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "junction_unpriced_requests_total",
			Help: "Successful requests whose model has no known price; their cost is unknown, not zero."}, []string{"model", "provider"}),
	}
	m.hosting = newHostingMetrics(buckets)
	m.interventions = newInterventions()
	reg.MustRegister(m.interventions, m.Requests, m.Latency, m.TTFT, m.Tokens, m.Cost, m.Unpriced, m.hosting.invocations, m.hosting.latency,
		m.hosting.model, m.hosting.overhead)
	return m
}

// Register adds more collectors to the registry.
func (m *Metrics) Register(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
