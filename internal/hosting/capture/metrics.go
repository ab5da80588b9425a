package capture

import "github.com/prometheus/client_golang/prometheus"

// Collector returns the Writer's Prometheus metrics: records by endpoint
// and outcome (written, dropped when the buffer was full, failed when
// their object could not be written), objects written or failed, and the
// bytes held in memory.
func (w *Writer) Collector() prometheus.Collector { return collector{w} }

type collector struct{ w *Writer }

var (
	recordsDesc = prometheus.NewDesc("junction_capture_records_total",
		"Invocations captured by data capture, by endpoint and outcome (written; dropped because the capture buffer was full; failed because their object could not be written).",
		[]string{"endpoint", "outcome"}, nil)
	objectsDesc = prometheus.NewDesc("junction_capture_objects_total", "Capture objects written, by outcome (written, failed).",
		[]string{"outcome"}, nil)
	heldDesc = prometheus.NewDesc("junction_capture_buffer_bytes", "Bytes of captured records held in memory, gathering or being written.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- recordsDesc
	ch <- objectsDesc
	ch <- heldDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.w.byEndpoint.Range(func(k, v any) bool {
		n := v.(*counts)
		for outcome, x := range map[string]int64{"written": n.written.Load(), "dropped": n.dropped.Load(), "failed": n.failed.Load()} {
			ch <- prometheus.MustNewConstMetric(recordsDesc, prometheus.CounterValue, float64(x), k.(string), outcome)
		}
		return true
	})
	ch <- prometheus.MustNewConstMetric(objectsDesc, prometheus.CounterValue, float64(c.w.objectsOK.Load()), "written")
	ch <- prometheus.MustNewConstMetric(objectsDesc, prometheus.CounterValue, float64(c.w.objectsBad.Load()), "failed")
	ch <- prometheus.MustNewConstMetric(heldDesc, prometheus.GaugeValue, float64(c.w.held.Load()))
}
