package governance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/governance/budget"
)

// StoredBudget is a budget made through the admin API.
type StoredBudget struct {
	ID string
	BudgetConfig
	CreatedAt, UpdatedAt time.Time
}

// BudgetView is a budget as the admin API shows it: its definition and,
// for a budget whose scope names one counter, its current period.
type BudgetView struct {
	ID string `json:"id"`
	// Source is "config" (read-only here: edit the file) or "api".
	Source   string  `json:"source"`
	Scope    string  `json:"scope"`
	Period   string  `json:"period"`
	LimitUSD float64 `json:"limit_usd"`
	Mode     string  `json:"mode"`
	Webhook  string  `json:"webhook,omitempty"`
	// Status is nil for wildcard scopes ("key:*"), which count each value
	// apart.
	Status *BudgetStatus `json:"status,omitempty"`
}

// BudgetStatus is a budget's current period.
type BudgetStatus struct {
	SpentUSD    string    `json:"spent_usd"`
	ReservedUSD string    `json:"reserved_usd"`
	PeriodStart time.Time `json:"period_start"`
	ResetsAt    time.Time `json:"resets_at"`
}

// Errors of the budget store.
var (
	// ErrNotFound is returned for an unknown budget id.
	ErrNotFound = errors.New("budget not found")
	// ErrReadOnly is returned when an API call tries to change a budget
	// of the config file.
	ErrReadOnly = errors.New("budget is defined in the config file; change it there")
	// ErrNoDatabase is returned when the Governor has no database.
	ErrNoDatabase = errors.New("no database to store budgets in")
)

// InvalidError is a budget the API refused, with every problem found.
type InvalidError struct{ Problems []string }

func (e *InvalidError) Error() string { return strings.Join(e.Problems, "; ") }

func (g *Governor) storedBudgets(ctx context.Context) ([]StoredBudget, error) {
	if g.db == nil {
		return nil, nil
	}
	rows, err := g.db.QueryContext(ctx, `SELECT id, scope, period, limit_nanos, mode, webhook, created_at, updated_at FROM budgets ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("governance: read budgets: %w", err)
	}
	defer rows.Close()
	var out []StoredBudget
	for rows.Next() {
		b, err := scanBudget(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

type scanner interface{ Scan(...any) error }

func scanBudget(r scanner) (StoredBudget, error) {
	var b StoredBudget
	var limit, created, updated int64
	if err := r.Scan(&b.ID, &b.Scope, &b.Period, &limit, &b.Mode, &b.Webhook, &created, &updated); err != nil {
		return b, err
	}
	b.LimitUSD = budget.Nanos(limit).Dollars()
	b.CreatedAt, b.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return b, nil
}

// normalize validates b and puts it in canonical form.
func normalize(b BudgetConfig) (BudgetConfig, error) {
	if problems := CheckBudget(b); len(problems) > 0 {
		return b, &InvalidError{Problems: problems}
	}
	b.Scope = MustParseScope(b.Scope).String()
	if b.Mode == "" {
		b.Mode = "hard"
	}
	return b, nil
}

// CreateBudget stores a budget and puts it in force on this replica at
// once (on others within governance.refresh_interval).
func (g *Governor) CreateBudget(ctx context.Context, b BudgetConfig) (BudgetView, error) {
	if g.db == nil {
		return BudgetView{}, ErrNoDatabase
	}
	b, err := normalize(b)
	if err != nil {
		return BudgetView{}, err
	}
	var raw [8]byte
	rand.Read(raw[:])
	id := "bud_" + hex.EncodeToString(raw[:])
	now := time.Now().UnixMilli()
	if _, err := g.db.ExecContext(ctx, `INSERT INTO budgets(id, scope, period, limit_nanos, mode, webhook, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)`,
		id, b.Scope, b.Period, int64(budget.USD(b.LimitUSD)), b.Mode, b.Webhook, now, now); err != nil {
		return BudgetView{}, err
	}
	if err := g.reload(ctx, true); err != nil {
		return BudgetView{}, err
	}
	return g.Budget(ctx, id)
}

// UpdateBudget replaces a stored budget's definition and returns it as it
// was and as it is.
func (g *Governor) UpdateBudget(ctx context.Context, id string, b BudgetConfig) (before, after BudgetView, err error) {
	if before, err = g.Budget(ctx, id); err != nil {
		return before, after, err
	}
	if before.Source == "config" {
		return before, after, ErrReadOnly
	}
	if b, err = normalize(b); err != nil {
		return before, after, err
	}
	if _, err = g.db.ExecContext(ctx, `UPDATE budgets SET scope = ?, period = ?, limit_nanos = ?, mode = ?, webhook = ?, updated_at = ? WHERE id = ?`,
		b.Scope, b.Period, int64(budget.USD(b.LimitUSD)), b.Mode, b.Webhook, time.Now().UnixMilli(), id); err != nil {
		return before, after, err
	}
	if err = g.reload(ctx, true); err != nil {
		return before, after, err
	}
	after, err = g.Budget(ctx, id)
	return before, after, err
}

// DeleteBudget removes a stored budget and returns it as it was.
func (g *Governor) DeleteBudget(ctx context.Context, id string) (BudgetView, error) {
	before, err := g.Budget(ctx, id)
	if err != nil {
		return before, err
	}
	if before.Source == "config" {
		return before, ErrReadOnly
	}
	if _, err := g.db.ExecContext(ctx, `DELETE FROM budgets WHERE id = ?`, id); err != nil {
		return before, err
	}
	return before, g.reload(ctx, true)
}

// Budget returns one budget in force, with its status.
func (g *Governor) Budget(ctx context.Context, id string) (BudgetView, error) {
	p := g.policy.Load()
	for i := range p.budgets {
		if p.budgets[i].id == id {
			return g.view(ctx, &p.budgets[i])
		}
	}
	return BudgetView{}, ErrNotFound
}

// Budgets returns every budget in force, config ones first, with status.
func (g *Governor) Budgets(ctx context.Context) ([]BudgetView, error) {
	p := g.policy.Load()
	out := make([]BudgetView, 0, len(p.budgets))
	for i := range p.budgets {
		v, err := g.view(ctx, &p.budgets[i])
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (g *Governor) view(ctx context.Context, r *budgetRule) (BudgetView, error) {
	mode := r.spec.Mode
	if mode == "" {
		mode = "hard"
	}
	v := BudgetView{ID: r.id, Source: r.source, Scope: r.scope.String(), Period: r.spec.Period, LimitUSD: r.spec.LimitUSD,
		Mode: mode, Webhook: r.spec.Webhook}
	if r.scope.Wildcard() {
		return v, nil
	}
	st, err := g.budgets.Status(ctx, budget.Budget{Scope: v.Scope, Period: r.period, Limit: r.limit, Soft: r.soft})
	if err != nil {
		return v, fmt.Errorf("governance: budget %s: %w", r.id, err)
	}
	v.Status = &BudgetStatus{SpentUSD: st.Spent.Decimal(), ReservedUSD: st.Reserved.Decimal(), PeriodStart: st.PeriodStart, ResetsAt: st.ResetsAt}
	return v, nil
}
