package batch

import "github.com/junctionhq/junction/internal/ledger"

// Ledger is where the gateway's usage records go.
type Ledger interface {
	Add(ledger.Record) error
}

// Priced is the ledger batch calls are recorded through: it prices a
// batch record at the batch price, the on-demand price less the model's
// discount, before passing it on. Interactive records pass unchanged.
type Priced struct {
	Next Ledger
	// Discount returns the share taken off the on-demand price for the
	// model (the deployment's name) that served a record, 0 to 1.
	Discount func(model string) float64
}

// Add implements the gateway's ledger.
func (p Priced) Add(r ledger.Record) error {
	if r.Surface == Surface {
		f := 1 - p.Discount(r.Deployment)
		if r.CostUSD != nil {
			c := *r.CostUSD * f
			r.CostUSD = &c
		}
		if r.CounterfactualUSD != nil {
			c := *r.CounterfactualUSD * f
			r.CounterfactualUSD = &c
		}
	}
	return p.Next.Add(r)
}
