package openai

import (
	"encoding/json"
	"testing"

	"github.com/junctionhq/junction/internal/guardrail"
)

// TestQuietReportMatchesEncodingJSON holds appendQuietReport to what
// json.Marshal writes for the reports it takes, and checks that it leaves
// the others to json.Marshal.
func TestQuietReportMatchesEncodingJSON(t *testing.T) {
	metrics := &guardrail.InvocationMetrics{GuardrailProcessingLatency: 12, Usage: guardrail.Usage{
		TopicPolicyUnits: 1, ContentPolicyUnits: 2, WordPolicyUnits: 3, SensitiveInformationPolicyUnits: 4,
		SensitiveInformationPolicyFreeUnits: 5, ContextualGroundingPolicyUnits: 6}}
	quiet := []GuardrailReport{
		{ID: "g1", Action: guardrail.ActionNone},
		{ID: "a \"quoted\" <id>\n\u2028", Action: guardrail.ActionNone, OutputAction: guardrail.ActionIntervened},
		{ID: "g1", Action: guardrail.ActionNone, Input: &guardrail.Assessment{}},
		{ID: "g1", Action: guardrail.ActionIntervened, Input: &guardrail.Assessment{InvocationMetrics: metrics}, OutputAction: guardrail.ActionNone},
		{ID: "", Action: "", Input: &guardrail.Assessment{InvocationMetrics: &guardrail.InvocationMetrics{}}},
	}
	for _, rep := range quiet {
		want, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendQuietReport([]byte("x"), &rep)
		if !ok || string(got) != "x"+string(want) {
			t.Errorf("report %+v:\n got %s (taken: %v)\nwant x%s", rep, got, ok, want)
		}
	}
	loud := []GuardrailReport{
		{ID: "g1", Action: guardrail.ActionIntervened, Input: &guardrail.Assessment{WordPolicy: &guardrail.WordAssessment{}}},
		{ID: "g1", Action: guardrail.ActionNone, Input: &guardrail.Assessment{InvocationMetrics: &guardrail.InvocationMetrics{GuardrailCoverage: &guardrail.Coverage{}}}},
		{ID: "g1", Action: guardrail.ActionIntervened, Input: &guardrail.Assessment{TopicPolicy: &guardrail.TopicAssessment{}}},
	}
	for _, rep := range loud {
		if got, ok := appendQuietReport([]byte("x"), &rep); ok || string(got) != "x" {
			t.Errorf("report %+v was taken: %s", rep, got)
		}
	}
}
