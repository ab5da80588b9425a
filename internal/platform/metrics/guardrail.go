package metrics

import "github.com/prometheus/client_golang/prometheus"

// newInterventions counts guardrail interventions. Its guardrail label is
// a guardrail id, which only an admin can create; direction is input or
// output and action is blocked or anonymized, so the label set stays
// bounded.
func newInterventions() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "junction_guardrail_interventions_total",
		Help: "Guardrail interventions the gateway applied, by guardrail id, direction (input or output) and action (blocked or anonymized)."},
		[]string{"guardrail", "direction", "action"})
}

// GuardrailIntervention counts one intervention of guardrail on a
// request's input or a model's output.
func (m *Metrics) GuardrailIntervention(guardrail, direction string, blocked bool) {
	action := "anonymized"
	if blocked {
		action = "blocked"
	}
	m.interventions.WithLabelValues(guardrail, direction, action).Inc()
}
