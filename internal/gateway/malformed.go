package gateway

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// malformedEvents counts stream events skipped because an upstream sent
// them malformed. It is registered on a Gateway's metrics on first use.
var malformedEvents = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "junction_stream_malformed_events_total",
	Help: "Upstream stream events skipped because they were not valid JSON, by provider (router.strict_streams ends the stream instead)."},
	[]string{"provider"})

var registerMalformed sync.Map // *metrics.Metrics → *sync.Once

// malformedEvent counts one skipped event from provider.
func (g *Gateway) malformedEvent(provider string) {
	if g.Metrics != nil {
		once, _ := registerMalformed.LoadOrStore(g.Metrics, &sync.Once{})
		once.(*sync.Once).Do(func() { g.Metrics.Register(malformedEvents) })
	}
	malformedEvents.WithLabelValues(provider).Inc()
}
