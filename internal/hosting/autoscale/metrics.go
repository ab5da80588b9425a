package autoscale

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports what the Scaler last saw and did, read at each
// scrape: each policy's metric per instance and its target, the decisions
// taken, and the calls each variant holds for a cold start. Desired and
// current instance counts are hosting's (junction_hosting_desired_instances
// and junction_hosting_current_instances).
func (s *Scaler) Collector() prometheus.Collector {
	l := []string{"endpoint", "variant"}
	return &collector{s: s,
		metric: prometheus.NewDesc("junction_autoscale_metric_per_instance",
			"The metric a variant's target-tracking policy follows, per instance, as last evaluated.", append(l, "metric"), nil),
		target: prometheus.NewDesc("junction_autoscale_target_per_instance",
			"The target value of a variant's target-tracking policy.", append(l, "metric"), nil),
		decisions: prometheus.NewDesc("junction_autoscale_decisions_total",
			"Instance counts the autoscaler asked for, by direction (out or in).", append(l, "direction"), nil),
		held: prometheus.NewDesc("junction_hosting_held_requests",
			"Calls waiting for a ready instance of a variant (cold start).", l, nil),
		admitted: prometheus.NewDesc("junction_hosting_serverless_concurrency",
			"Calls a serverless variant has admitted (held or running), against its max_concurrency.", l, nil),
	}
}

type collector struct {
	s                               *Scaler
	metric, target, decisions, held *prometheus.Desc
	admitted                        *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.metric
	ch <- c.target
	ch <- c.decisions
	ch <- c.held
	ch <- c.admitted
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for _, l := range c.s.last {
		ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(l.Held), l.Endpoint, l.Variant)
		if l.Serverless != nil {
			ch <- prometheus.MustNewConstMetric(c.admitted, prometheus.GaugeValue, float64(l.Admitted), l.Endpoint, l.Variant)
		}
	}
	for key, t := range c.s.tracks {
		ep, v, _ := strings.Cut(key, "/")
		if t.metricName != "" {
			ch <- prometheus.MustNewConstMetric(c.metric, prometheus.GaugeValue, t.perInst, ep, v, t.metricName)
			ch <- prometheus.MustNewConstMetric(c.target, prometheus.GaugeValue, t.target, ep, v, t.metricName)
		}
		ch <- prometheus.MustNewConstMetric(c.decisions, prometheus.CounterValue, float64(t.decisionsOut), ep, v, "out")
		ch <- prometheus.MustNewConstMetric(c.decisions, prometheus.CounterValue, float64(t.decisionsIn), ep, v, "in")
	}
}
