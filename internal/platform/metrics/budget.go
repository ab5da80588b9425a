package metrics

import "github.com/prometheus/client_golang/prometheus"

// BudgetSpend is one budget's current period as the budget gauge sees it.
type BudgetSpend struct {
	// Scope and Period name the budget ("team:ml", "monthly"); both come
	// from budgets only an admin defines.
	Scope, Period string
	// SpentUSD and LimitUSD are what the scope spent in the period and
	// what it may spend.
	SpentUSD, LimitUSD float64
}

// budgetCollector reads budget spending at each scrape.
type budgetCollector struct {
	list  func() []BudgetSpend
	ratio *prometheus.Desc
}

// WatchBudgets exports junction_budget_spent_ratio, spent over limit for
// each budget that list describes, read at each scrape so that requests
// pay nothing for it. Two budgets of one scope and period (one from the
// config, one from the API) show the higher ratio; a budget without a
// positive limit is left out.
func (m *Metrics) WatchBudgets(list func() []BudgetSpend) {
	m.reg.MustRegister(&budgetCollector{list: list,
		ratio: prometheus.NewDesc("junction_budget_spent_ratio",
			"A budget's spending in its current period over its limit (1 means the limit is reached).", []string{"scope", "period"}, nil)})
}

func (b *budgetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- b.ratio }

func (b *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	ratios := map[[2]string]float64{}
	for _, s := range b.list() {
		if s.LimitUSD <= 0 {
			continue
		}
		k := [2]string{s.Scope, s.Period}
		if r, ok := ratios[k]; !ok || s.SpentUSD/s.LimitUSD > r {
			ratios[k] = s.SpentUSD / s.LimitUSD
		}
	}
	for k, r := range ratios {
		ch <- prometheus.MustNewConstMetric(b.ratio, prometheus.GaugeValue, r, k[0], k[1])
	}
}
