package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Self-hosted endpoints: the SageMaker-runtime invocations the surface
// counts as they finish, and the fleet read from the controller when
// Prometheus scrapes. Labels are endpoint and variant names, which only
// an admin can create, and HTTP statuses and instance states, which are
// few: an invocation that no variant took (an unknown endpoint, a
// throttled or malformed call) is counted under endpoint="" rather than
// the name the client sent, so clients cannot grow the label set.

// invocationKey is one invocation counter's labels.
type invocationKey struct {
	endpoint, variant string
	status            int
}

// hostingMetrics are the collectors of the hosting surface.
type hostingMetrics struct {
	invocations *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	// model and overhead split an answered invocation's latency into the
	// model server's time and the rest of its time in Junction.
	model, overhead *prometheus.HistogramVec
	counters        sync.Map // invocationKey -> prometheus.Counter
	observers       sync.Map // [2]string{endpoint, variant} -> *invocationObservers
}

// invocationObservers are one endpoint variant's latency histograms.
type invocationObservers struct{ total, model, overhead prometheus.Observer }

func newHostingMetrics(buckets []float64) *hostingMetrics {
	return &hostingMetrics{
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "junction_sagemaker_invocations_total",
			Help: "SageMaker-runtime invocations, by endpoint, the variant that served or failed them, and HTTP status."},
			[]string{"endpoint", "variant", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "junction_sagemaker_invocation_duration_seconds",
			Help: "SageMaker-runtime invocation latency as the client sees it (for streams, until the stream ends).", Buckets: buckets},
			[]string{"endpoint", "variant"}),
		model: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "junction_sagemaker_model_latency_seconds",
			Help: "Time the model server took to answer an invocation: from sending the request to the instance until its answer was read.", Buckets: buckets},
			[]string{"endpoint", "variant"}),
		overhead: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "junction_sagemaker_overhead_latency_seconds",
			Help: "The rest of an answered invocation's time in Junction: its latency less the model server's.", Buckets: buckets},
			[]string{"endpoint", "variant"}),
	}
}

// Invocation records a finished SageMaker-runtime invocation. variant is
// the variant that served or failed it; empty when none took it, and then
// the endpoint is not named either. model is the time the model server
// took to answer; when it is positive, the latency is also split into
// model and overhead time.
func (m *Metrics) Invocation(endpoint, variant string, status int, latency, model time.Duration) {
	if variant == "" {
		endpoint = ""
	}
	h := m.hosting
	k := invocationKey{endpoint, variant, status}
	c, ok := h.counters.Load(k)
	if !ok {
		c, _ = h.counters.LoadOrStore(k, h.invocations.WithLabelValues(endpoint, variant, strconv.Itoa(status)))
	}
	c.(prometheus.Counter).Inc()
	ev := [2]string{endpoint, variant}
	o, ok := h.observers.Load(ev)
	if !ok {
		o, _ = h.observers.LoadOrStore(ev, &invocationObservers{total: h.latency.WithLabelValues(endpoint, variant),
			model: h.model.WithLabelValues(endpoint, variant), overhead: h.overhead.WithLabelValues(endpoint, variant)})
	}
	obs := o.(*invocationObservers)
	obs.total.Observe(latency.Seconds())
	if model > 0 {
		obs.model.Observe(model.Seconds())
		obs.overhead.Observe(max(latency-model, 0).Seconds())
	}
}

// FleetVariant is one variant of one endpoint as the fleet metrics see
// it.
type FleetVariant struct {
	Endpoint, Variant string
	// Desired and Current are its instance counts.
	Desired, Current int
	// Instances counts its instances by state.
	Instances map[string]int
	// Restarts sums its instances' model-server restarts.
	Restarts int
}

// fleetCollector reads the fleet at each scrape.
type fleetCollector struct {
	list                                 func() []FleetVariant
	desired, current, instances, restart *prometheus.Desc
}

// WatchFleet exports the fleet that list describes, read at each scrape:
// instances by endpoint, variant and state, desired and current instance
// counts, and model-server restarts.
func (m *Metrics) WatchFleet(list func() []FleetVariant) {
	l := []string{"endpoint", "variant"}
	m.reg.MustRegister(&fleetCollector{list: list,
		desired: prometheus.NewDesc("junction_hosting_desired_instances", "Instances a variant should have.", l, nil),
		current: prometheus.NewDesc("junction_hosting_current_instances", "Instances a variant has in service.", l, nil),
		instances: prometheus.NewDesc("junction_hosting_instances", "A variant's instances by state.",
			append(l, "state"), nil),
		restart: prometheus.NewDesc("junction_hosting_model_server_restarts",
			"Model-server restarts of a variant's instances (a gauge: it falls when an instance is removed).", l, nil),
	})
}

func (f *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- f.desired
	ch <- f.current
	ch <- f.instances
	ch <- f.restart
}

func (f *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	for _, v := range f.list() {
		ch <- prometheus.MustNewConstMetric(f.desired, prometheus.GaugeValue, float64(v.Desired), v.Endpoint, v.Variant)
		ch <- prometheus.MustNewConstMetric(f.current, prometheus.GaugeValue, float64(v.Current), v.Endpoint, v.Variant)
		ch <- prometheus.MustNewConstMetric(f.restart, prometheus.GaugeValue, float64(v.Restarts), v.Endpoint, v.Variant)
		for state, n := range v.Instances {
			ch <- prometheus.MustNewConstMetric(f.instances, prometheus.GaugeValue, float64(n), v.Endpoint, v.Variant, state)
		}
	}
}
