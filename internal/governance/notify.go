package governance

import (
	"context"
	"time"

	"github.com/junctionhq/junction/internal/governance/budget"
)

// notice is a budget crossing waiting to be posted to its webhook.
type notice struct {
	n  *budget.Notifier
	st budget.Status
}

// crossed queues the webhook of the budget st crossed, if it has one. The
// budget package reports a crossing once per budget and period, across
// replicas, so each is posted once (retries aside).
func (g *Governor) crossed(a *Admission, st budget.Status) {
	for j, b := range a.budgets {
		r := &a.policy.budgets[a.rules[j]]
		if b != st.Budget || r.notify == nil {
			continue
		}
		sent := g.queue(func() bool {
			select {
			case g.notices <- notice{n: r.notify, st: st}:
				return true
			default:
				return false
			}
		})
		if !sent {
			g.log.Error("governance: budget webhook not sent: too many waiting, or shutting down",
				"scope", st.Budget.Scope, "period", st.Budget.Period.String())
		}
	}
}

func (g *Governor) notifyLoop() {
	defer g.workers.Done()
	for nt := range g.notices {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := nt.n.Notify(ctx, nt.st); err != nil {
			g.log.Warn("governance: budget webhook failed", "scope", nt.st.Budget.Scope, "err", err)
		}
		cancel()
	}
}
