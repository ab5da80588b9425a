package governance

import (
	"context"
	"database/sql"
	"sort"
	"time"
)

// Reserved capacity is paid for whether it is used or not. Each UTC day a
// reservation is configured, one row of reserved_capacity records a day's
// share of its monthly price (monthly_usd / days in that month),
// attributed to its team. Every replica tries to write the row; the
// table's key keeps one.

const day = 24 * time.Hour

// accrue records today's cost of every priced reservation, once a day per
// process.
func (g *Governor) accrue(ctx context.Context, now time.Time) {
	if g.db == nil || len(g.cfg.Reservations) == 0 {
		return
	}
	today := now.UTC().Truncate(day)
	if g.accrued.Load() == today.UnixMilli() {
		return
	}
	days := float64(time.Date(today.Year(), today.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day())
	for _, r := range g.cfg.Reservations {
		if r.MonthlyUSD <= 0 {
			continue
		}
		_, err := g.db.ExecContext(ctx, `INSERT INTO reserved_capacity(day, team, model, tpm, cost_usd) VALUES (?,?,?,?,?)
			ON CONFLICT (day, team, model) DO NOTHING`, today.UnixMilli(), r.Team, r.Model, r.TPM, r.MonthlyUSD/days)
		if err != nil {
			g.log.Warn("governance: could not record reserved capacity's cost; retrying later", "team", r.Team, "model", r.Model, "err", err)
			return
		}
	}
	g.accrued.Store(today.UnixMilli())
}

// ReservedRow is one reservation's cost over a report's window.
type ReservedRow struct {
	Team  string `json:"team"`
	Model string `json:"model"`
	// TPM is the reserved share (the latest day's, if it changed).
	TPM int64 `json:"tpm"`
	// Days is how many days of the reservation fall in the window,
	// partial days counted by their overlap.
	Days    float64 `json:"days"`
	CostUSD float64 `json:"cost_usd"`
}

// ReservedReport sums the recorded cost of reserved capacity that
// overlaps [from, to), by team and model, dearest first; each day's cost
// counts in proportion to its overlap with the window, as instance time
// does in the hosting report.
func ReservedReport(ctx context.Context, db *sql.DB, from, to time.Time) ([]ReservedRow, error) {
	f, t := from.UnixMilli(), to.UnixMilli()
	const dayMS = int64(day / time.Millisecond)
	rows, err := db.QueryContext(ctx, `SELECT day, team, model, tpm, cost_usd FROM reserved_capacity
		WHERE day < ? AND day > ? ORDER BY day`, t, f-dayMS)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type key struct{ team, model string }
	sums := map[key]*ReservedRow{}
	for rows.Next() {
		var d, tpm int64
		var k key
		var cost float64
		if err := rows.Scan(&d, &k.team, &k.model, &tpm, &cost); err != nil {
			return nil, err
		}
		overlap := float64(min(d+dayMS, t)-max(d, f)) / float64(dayMS)
		if overlap <= 0 {
			continue
		}
		r := sums[k]
		if r == nil {
			r = &ReservedRow{Team: k.team, Model: k.model}
			sums[k] = r
		}
		r.TPM = tpm
		r.Days += overlap
		r.CostUSD += cost * overlap
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]ReservedRow, 0, len(sums))
	for _, r := range sums {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].CostUSD != out[j].CostUSD {
			return out[i].CostUSD > out[j].CostUSD
		}
		if out[i].Team != out[j].Team {
			return out[i].Team < out[j].Team
		}
		return out[i].Model < out[j].Model
	})
	return out, nil
}
