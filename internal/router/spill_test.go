package router_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/router"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// A route's spill target answers while its endpoint is cold
// (spill:cold-start), or while a call's predicted wait on it exceeds the
// tighter of the call's latency budget and the route's spill_wait
// (spill:queue); otherwise the endpoint does.
func TestSpillReasons(t *testing.T) {
	cfg, err := config.Parse([]byte(`
providers: [{name: up, type: openai, base_url: "http://127.0.0.1:1/v1", api_key: k}]
models:
  - {name: local-lm, provider: endpoint, upstream_model: lm}
  - {name: cloud-mini, provider: up}
routes:
  - {name: budget-only, deployments: [{model: local-lm}], spill: cloud-mini}
  - {name: bounded, deployments: [{model: local-lm}], spill: cloud-mini, spill_wait: 3s}
`), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	var cold bool
	var wait time.Duration
	known := true
	r, err := router.New(context.Background(), cfg, ledger.Builtin(), func(context.Context, config.Provider) (llm.Provider, error) {
		return nil, nil
	}, router.Options{Endpoints: stubProvider{}, EndpointCold: func(string) bool { return cold },
		EndpointWait: func(name string) (time.Duration, bool) {
			if name != "lm" {
				t.Errorf("asked the wait of %q, want the endpoint lm", name)
			}
			return wait, known
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		route     string
		cold      bool
		wait      time.Duration
		known     bool
		budgetMs  int
		model, by string
	}{
		{"budget-only", true, 0, true, 0, "cloud-mini", router.SpillColdStart},
		{"budget-only", false, 10 * time.Second, true, 0, "local-lm", ""}, // no bound at all
		{"budget-only", false, 2 * time.Second, true, 1000, "cloud-mini", router.SpillQueue},
		{"budget-only", false, 2 * time.Second, true, 2000, "local-lm", ""},
		{"budget-only", false, 2 * time.Second, false, 1000, "local-lm", ""}, // nothing to go on
		{"bounded", false, 4 * time.Second, true, 0, "cloud-mini", router.SpillQueue},
		{"bounded", false, 2 * time.Second, true, 0, "local-lm", ""},
		{"bounded", false, 2 * time.Second, true, 1500, "cloud-mini", router.SpillQueue}, // the budget is tighter
		{"bounded", false, 4 * time.Second, true, 5000, "cloud-mini", router.SpillQueue}, // spill_wait is tighter
	} {
		cold, wait, known = c.cold, c.wait, c.known
		p, err := r.PlanWith(c.route, router.Metadata{MaxLatencyMs: c.budgetMs})
		if err != nil {
			t.Fatal(err)
		}
		d, ok := p.Next()
		if !ok || d.Model != c.model || (c.by != "" && p.Reason != c.by) || (c.by == "" && p.Reason == router.SpillQueue) {
			t.Errorf("%+v: answered by %v (%s), want %s (%s)", c, d.Model, p.Reason, c.model, c.by)
		}
	}
}

// stubProvider stands in for hosting's endpoint provider; nothing calls it.
type stubProvider struct{ llm.Provider }
