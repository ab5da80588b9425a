package async

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns the queue's Prometheus metrics: the depth of each
// endpoint's queue by state and the age of its oldest queued request,
// read from the database at scrape time, and this replica's counts of
// outcomes, retries and notifications, and the time its requests waited
// for their first dispatch.
func (q *Queue) Collector() prometheus.Collector { return collector{q} }

type collector struct{ q *Queue }

var (
	depthDesc = prometheus.NewDesc("junction_async_queue_depth", "Async invocations per endpoint and state (queued, running, succeeded, failed; finished ones within the retention).",
		[]string{"endpoint", "state"}, nil)
	oldestDesc = prometheus.NewDesc("junction_async_oldest_queued_seconds", "Age of each endpoint's oldest queued async invocation.",
		[]string{"endpoint"}, nil)
	outcomeDesc = prometheus.NewDesc("junction_async_requests_total", "Async invocations this replica ended or retried, by outcome (succeeded, failed, retried, expired).",
		[]string{"outcome"}, nil)
	notifyDesc = prometheus.NewDesc("junction_async_notifications_total", "Webhook deliveries of async notifications by this replica, by outcome (sent, retried, given_up).",
		[]string{"outcome"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- depthDesc
	ch <- oldestDesc
	ch <- outcomeDesc
	ch <- notifyDesc
	c.q.wait.Describe(ch)
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := &c.q.stats
	for outcome, n := range map[string]int64{"succeeded": s.succeeded.Load(), "failed": s.failed.Load(), "retried": s.retried.Load(), "expired": s.expired.Load()} {
		ch <- prometheus.MustNewConstMetric(outcomeDesc, prometheus.CounterValue, float64(n), outcome)
	}
	for outcome, n := range map[string]int64{"sent": s.notified.Load(), "retried": s.notifyRetries.Load(), "given_up": s.notifyFailed.Load()} {
		ch <- prometheus.MustNewConstMetric(notifyDesc, prometheus.CounterValue, float64(n), outcome)
	}
	c.q.wait.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	stats, err := c.q.Stats(ctx, "")
	if err != nil {
		return
	}
	for _, st := range stats {
		for state, n := range map[string]int{StateQueued: st.Queued, StateRunning: st.Running, StateSucceeded: st.Succeeded, StateFailed: st.Failed} {
			ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(n), st.Endpoint, state)
		}
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, st.OldestQueuedSeconds, st.Endpoint)
	}
}
