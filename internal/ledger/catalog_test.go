package ledger

import (
	"strings"
	"testing"
)

func TestBuiltinCatalogReadsProvisionedAndInstances(t *testing.T) {
	c := Builtin()
	p, ok := c.LookupProvisioned("anthropic.claude-3-5-sonnet")
	if !ok || p.PerModelUnitMonth != 19000 || p.CommitmentMonths != 6 {
		t.Fatalf("provisioned sonnet = %+v, %v; want 19000/month at 6 months", p, ok)
	}
	// Versioned and cross-region ids find the same entry, as Lookup does.
	for _, id := range []string{"anthropic.claude-3-5-sonnet-20241022-v2:0", "us.anthropic.claude-3-5-sonnet-20241022-v2:0"} {
		if q, ok := c.LookupProvisioned(id); !ok || q.ID != "anthropic.claude-3-5-sonnet" {
			t.Errorf("LookupProvisioned(%q) = %+v, %v", id, q, ok)
		}
	}
	if _, ok := c.LookupProvisioned("gpt-4o"); ok {
		t.Error("gpt-4o has no provisioned price in the catalog")
	}
	if in, ok := c.Instance("ml.g5.xlarge"); !ok || in.USDPerHour != 1.006 {
		t.Errorf("ml.g5.xlarge = %+v, %v", in, ok)
	}
	if _, ok := c.Instance("ml.x9.huge"); ok {
		t.Error("ml.x9.huge is not in the catalog")
	}
	if c.SavingsPlanDiscount != 0.30 {
		t.Errorf("savings plan discount = %v", c.SavingsPlanDiscount)
	}
	if got := c.Models(); len(got) != 12 || got[0] != "amazon.nova-lite" {
		t.Errorf("Models() = %v", got)
	}
	// The longest id that prefixes the model prices it: flash-lite is
	// not priced as flash.
	if p, ok := c.Lookup("gemini-2.5-flash-lite-preview-06-17"); !ok || p.InputPer1K != 0.0001 {
		t.Errorf("gemini-2.5-flash-lite = %+v, %v", p, ok)
	}
}

func TestParseCatalogRejectsBadCapacityPrices(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"provisioned: [{id: m, per_model_unit_month: 0}]", "provisioned[0]"},
		{"instances: [{type: ml.a, usd_per_hour: -1}]", "instances[0]"},
		{"savings_plan_discount: 1.5", "savings_plan_discount"},
	} {
		if _, err := ParseCatalog([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %s", tc.yaml, err, tc.want)
		}
	}
}
