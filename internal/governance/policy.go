package governance

import (
	"context"
	"strings"

	"github.com/junctionhq/junction/internal/governance/budget"
	"github.com/junctionhq/junction/internal/governance/ratelimit"
)

// policy is the compiled form of the budgets, limits and reservations in
// force; a reload swaps in a new one whole.
type policy struct {
	budgets   []budgetRule
	limits    []limitRule
	capacity  map[string]*capacity
	maxTokens int64
	// ownLeased: a key's own limits (keys create --rpm/--tpm) are admitted
	// from slices, because "key:*" is a leased scope.
	ownLeased bool
}

// budgetRule is one budget, from the config or the database.
type budgetRule struct {
	id     string
	source string // "config" or "api"
	spec   BudgetConfig
	scope  Scope
	period budget.Period
	limit  budget.Nanos
	soft   bool
	notify *budget.Notifier // nil without a webhook
	leased bool             // admitted from slices (governance.leases)
}

type limitRule struct {
	scope    Scope
	rpm, tpm int64
	leased   bool
}

// capacity is a model's capacity divided into reserved team shares and
// the pool everyone else (and a team past its share) draws on.
type capacity struct {
	pool     ratelimit.Limit
	reserved map[string]ratelimit.Limit // by team
}

// build compiles the config's rules and the stored budgets.
func (g *Governor) build(stored []StoredBudget) *policy {
	p := &policy{capacity: map[string]*capacity{}, maxTokens: int64(g.cfg.DefaultMaxTokens)}
	leased := map[string]bool{}
	for _, sc := range g.cfg.Leases.Scopes {
		leased[MustParseScope(sc).String()] = true
	}
	p.ownLeased = leased[MustParseScope("key:*").String()]
	notifiers := map[string]*budget.Notifier{}
	add := func(id, source string, b BudgetConfig) {
		r := budgetRule{id: id, source: source, spec: b, scope: MustParseScope(b.Scope), limit: budget.USD(b.LimitUSD), soft: b.Mode == "soft"}
		r.leased = leased[r.scope.String()]
		r.period, _ = budget.ParsePeriod(b.Period)
		if b.Webhook != "" {
			if notifiers[b.Webhook] == nil {
				notifiers[b.Webhook] = &budget.Notifier{URL: b.Webhook}
			}
			r.notify = notifiers[b.Webhook]
		}
		p.budgets = append(p.budgets, r)
	}
	for i, b := range g.cfg.Budgets {
		add(configBudgetID(i), "config", b)
	}
	for _, b := range stored {
		add(b.ID, "api", b.BudgetConfig)
	}
	for _, l := range g.cfg.RateLimits {
		sc := MustParseScope(l.Scope)
		p.limits = append(p.limits, limitRule{scope: sc, rpm: l.RPM, tpm: l.TPM, leased: leased[sc.String()]})
	}
	for _, c := range g.cfg.Capacity {
		pool := c.CapacityTPM
		cp := &capacity{reserved: map[string]ratelimit.Limit{}}
		for _, r := range g.cfg.Reservations {
			if r.Model == c.Model {
				pool -= r.TPM
				cp.reserved[r.Team] = ratelimit.Limit{Scope: "capacity:" + c.Model + "|team:" + r.Team, TPM: r.TPM}
			}
		}
		cp.pool = ratelimit.Limit{Scope: "capacity:" + c.Model + "|shared", TPM: pool}
		p.capacity[c.Model] = cp
	}
	return p
}

// configBudgetID names the i-th budget of the config file.
func configBudgetID(i int) string { return "config-" + itoa(i) }

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for ; i > 0; i /= 10 {
		n--
		b[n] = byte('0' + i%10)
	}
	return string(b[n:])
}

// reload reads the stored budgets and, when they changed (or force),
// compiles a new policy, takes a new ledger snapshot and seeds the budgets
// whose scope names one counter.
func (g *Governor) reload(ctx context.Context, force bool) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	stored, err := g.storedBudgets(ctx)
	if err != nil {
		return err
	}
	var fp strings.Builder
	for _, b := range stored {
		fp.WriteString(b.ID)
		fp.WriteByte('@')
		fp.WriteString(itoa(int(b.UpdatedAt.UnixMilli())))
		fp.WriteByte(';')
	}
	if !force && fp.String() == g.dbBudgets {
		return nil
	}
	p := g.build(stored)
	if len(p.budgets) > 0 {
		snap, err := g.takeSnapshot(ctx)
		if err != nil {
			return err
		}
		g.snap.Store(snap)
	}
	g.policy.Store(p)
	g.dbBudgets = fp.String()
	return g.seedAll(ctx, p)
}
