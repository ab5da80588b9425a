package governance

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/junctionhq/junction/internal/governance/budget"
)

// Seeding: a budget's counters start from what the ledger says the scope
// already spent in the period, so that a restart (or a budget made in the
// middle of a month) does not start it over.
//
// The budget package counts a counter's first Seed only and adds spend
// from admissions on top, so a counter must be seeded before anything is
// admitted into it, by whichever replica comes first. Every replica seeds
// a counter before its own first admission into it (and a budget that
// names one counter at once, when it is loaded). Then the ledger spend a
// seed reads can only come from before the counter existed: it is counted
// once. Seeds read a snapshot of the ledger taken when the budgets were
// loaded; in a period that began after the snapshot, nothing was spent
// before the counters, and the seed is 0.

// snapshot is the ledger's spend this day and this month, per key, tags
// and model: enough to match any scope.
type snapshot struct {
	day, month time.Time // the starts of the periods it covers
	groups     []spendGroup
}

type spendGroup struct {
	subj       Subject
	day, month budget.Nanos
}

// takeSnapshot sums the ledger's keyed spend since the start of the
// month. Records without a key are Junction's own calls, which are not
// governed. It reads the ledger's daily roll-up, which is kept when raw
// records are not (ledger.retention) and is small; a database without
// the roll-up is read from the raw records.
func (g *Governor) takeSnapshot(ctx context.Context) (*snapshot, error) {
	now := time.Now()
	s := &snapshot{day: budget.Daily.Start(now), month: budget.Monthly.Start(now)}
	if g.db == nil {
		return s, nil
	}
	org, err := g.keyOrgs(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := g.db.QueryContext(ctx, `SELECT key_id, tags, model, SUM(cost_usd), SUM(CASE WHEN day >= ? THEN cost_usd ELSE 0 END)
		FROM usage_daily WHERE day >= ? AND key_id <> '' GROUP BY key_id, tags, model`, s.day.UnixMilli(), s.month.UnixMilli())
	if err != nil {
		rows, err = g.db.QueryContext(ctx, `SELECT key_id, tags, model, SUM(cost_usd), SUM(CASE WHEN ts >= ? THEN cost_usd ELSE 0 END)
			FROM usage WHERE ts >= ? AND key_id <> '' AND cost_usd IS NOT NULL GROUP BY key_id, tags, model`,
			s.day.UnixMilli(), s.month.UnixMilli())
	}
	if err != nil {
		return nil, fmt.Errorf("governance: read the ledger to seed budgets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sg spendGroup
		var tags string
		var month, day float64
		if err := rows.Scan(&sg.subj.Key, &tags, &sg.subj.Model, &month, &day); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(tags), &sg.subj.Tags); err != nil {
			continue // a record whose tags cannot be read matches no tag scope
		}
		// Whose spend it is comes from the key, as at admission, never
		// from the record's tags: records written before requests were
		// kept from setting team and project may carry forged ones.
		o := org[sg.subj.Key]
		sg.subj.Team, sg.subj.Project = o.team, o.project
		sg.subj.Tags = maps.Clone(sg.subj.Tags)
		if sg.subj.Tags == nil {
			sg.subj.Tags = map[string]string{}
		}
		for name, v := range map[string]string{"team": o.team, "project": o.project} {
			if v == "" {
				delete(sg.subj.Tags, name)
			} else {
				sg.subj.Tags[name] = v
			}
		}
		sg.month, sg.day = budget.USD(month), budget.USD(day)
		s.groups = append(s.groups, sg)
	}
	return s, rows.Err()
}

// keyOrg is a key's team and project.
type keyOrg struct{ team, project string }

// keyOrgs reads every key's team and project (revoked keys too: their
// spend this period still counts): the key's team and project columns,
// or else the team and project tags an admin gave it.
func (g *Governor) keyOrgs(ctx context.Context) (map[string]keyOrg, error) {
	rows, err := g.db.QueryContext(ctx, `SELECT id, tags, team, project FROM keys`)
	if err != nil {
		return nil, fmt.Errorf("governance: read the keys to seed budgets: %w", err)
	}
	defer rows.Close()
	out := map[string]keyOrg{}
	for rows.Next() {
		var id, tagsJSON string
		var o keyOrg
		if err := rows.Scan(&id, &tagsJSON, &o.team, &o.project); err != nil {
			return nil, err
		}
		var tags map[string]string
		json.Unmarshal([]byte(tagsJSON), &tags)
		if o.team == "" {
			o.team = tags["team"]
		}
		if o.project == "" {
			o.project = tags["project"]
		}
		out[id] = o
	}
	return out, rows.Err()
}

// spent returns what the snapshot holds for counter scope of rule r in
// the period starting at start.
func (s *snapshot) spent(r *budgetRule, scope string, start time.Time) budget.Nanos {
	if s == nil {
		return 0
	}
	daily := r.period == budget.Daily
	if daily && !start.Equal(s.day) || !daily && !start.Equal(s.month) {
		return 0
	}
	var sum budget.Nanos
	for i := range s.groups {
		sg := &s.groups[i]
		if got, ok := r.scope.Match(&sg.subj); ok && got == scope {
			if daily {
				sum += sg.day
			} else {
				sum += sg.month
			}
		}
	}
	return sum
}

// seedKey names one counter: a scope in one period.
type seedKey struct {
	scope  string
	period budget.Period
	start  int64
}

// ensureSeeded seeds the counters of bs (matched from rules) that this
// process has not seeded yet in their current period.
func (g *Governor) ensureSeeded(ctx context.Context, p *policy, bs []budget.Budget, rules []int, now time.Time) error {
	for i, b := range bs {
		start := b.Period.Start(now)
		k := seedKey{scope: b.Scope, period: b.Period, start: start.Unix()}
		if _, ok := g.seeded.Load(k); ok {
			continue
		}
		amount := g.snap.Load().spent(&p.budgets[rules[i]], b.Scope, start)
		if _, err := g.budgets.Seed(ctx, b.Scope, b.Period, start, amount); err != nil {
			return err
		}
		g.seeded.Store(k, struct{}{})
	}
	return nil
}

// seedAll seeds, in their current period, the budgets whose scope names
// one counter; wildcard budgets are seeded counter by counter as requests
// first reach them.
func (g *Governor) seedAll(ctx context.Context, p *policy) error {
	now := time.Now()
	for i := range p.budgets {
		r := &p.budgets[i]
		if r.scope.Wildcard() {
			continue
		}
		b := budget.Budget{Scope: r.scope.String(), Period: r.period, Limit: r.limit, Soft: r.soft}
		if err := g.ensureSeeded(ctx, p, []budget.Budget{b}, []int{i}, now); err != nil {
			return fmt.Errorf("governance: seed budget %s: %w", r.id, err)
		}
	}
	return nil
}

// sweepSeeded forgets counters of periods that ended.
func (g *Governor) sweepSeeded(now time.Time) {
	g.seeded.Range(func(k, _ any) bool {
		sk := k.(seedKey)
		if !sk.period.End(time.Unix(sk.start, 0)).After(now) {
			g.seeded.Delete(k)
		}
		return true
	})
}
