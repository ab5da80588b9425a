package ledger

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/platform/store"
)

// The roll-ups sum usage per UTC hour (table usage_hourly) and per UTC
// day (usage_daily), and per combination of the dimensions reports group
// and filter by. The writer adds each batch to both in the batch's own
// transaction, so they always agree with the raw records. A report reads
// the whole days of its window from the daily roll-up, the whole hours
// left at either end from the hourly one, and only the ragged edges, less
// than an hour each, from the raw records.

// hourMS and dayMS are an hour and a day in the ledger's unit of time,
// milliseconds since the Unix epoch. Periods are counted from the epoch:
// UTC hours and days.
const (
	hourMS = int64(time.Hour / time.Millisecond)
	dayMS  = 24 * hourMS
)

// A grain is one roll-up: its table, the column holding each row's
// period (its first millisecond), and the period's length.
type grain struct {
	table, period string
	ms            int64
}

// grains are the roll-ups, coarsest first; each period divides the one
// before it.
var grains = [...]grain{{"usage_daily", "day", dayMS}, {"usage_hourly", "hour", hourMS}}

// floorTo and ceilTo round a time in milliseconds down and up to a
// multiple of unit.
func floorTo(ms, unit int64) int64 { return ms / unit * unit }
func ceilTo(ms, unit int64) int64  { return (ms + unit - 1) / unit * unit }

// rollupKey is one roll-up row's dimensions.
type rollupKey struct {
	period                                                            int64
	model, provider, keyID, keyName, surface, route, deployment, tags string
	status                                                            int
}

// compare orders keys as the roll-ups' unique indexes do. Writers add to
// roll-up rows in this order, so two replicas that add to the same rows
// lock them in the same order and cannot deadlock.
func (k rollupKey) compare(o rollupKey) int {
	return cmp.Or(cmp.Compare(k.period, o.period), strings.Compare(k.model, o.model), strings.Compare(k.provider, o.provider),
		strings.Compare(k.keyID, o.keyID), strings.Compare(k.keyName, o.keyName), strings.Compare(k.surface, o.surface),
		cmp.Compare(k.status, o.status), strings.Compare(k.route, o.route), strings.Compare(k.deployment, o.deployment),
		strings.Compare(k.tags, o.tags))
}

// rollupSums is one roll-up row's measures.
type rollupSums struct {
	requests, errors, inputTokens, outputTokens, cachedTokens, unpriced int64
	costUSD, latencyMS, savedUSD, counterfactualUSD                     float64
}

// add counts one record, as Report's raw query would.
func (s *rollupSums) add(r *Record) {
	s.requests++
	if r.Status >= 400 {
		s.errors++
	}
	s.inputTokens += int64(r.InputTokens)
	s.outputTokens += int64(r.OutputTokens)
	s.cachedTokens += int64(r.CachedTokens)
	if r.CostUSD != nil {
		s.costUSD += *r.CostUSD
	} else if r.Status < 400 {
		s.unpriced++
	}
	s.latencyMS += r.LatencyMS
	if r.CounterfactualUSD != nil {
		s.counterfactualUSD += *r.CounterfactualUSD
		if r.CostUSD != nil {
			s.savedUSD += *r.CounterfactualUSD - *r.CostUSD
		}
	}
}

// rollup sums records by roll-up row, for each grain, and counts the
// answered ones by latency bucket, for each grain.
type rollup struct {
	sums    [len(grains)]map[rollupKey]*rollupSums
	latency [len(grains)]latencyCounts
}

func newRollup() *rollup {
	ru := &rollup{}
	for i := range ru.sums {
		ru.sums[i] = map[rollupKey]*rollupSums{}
		ru.latency[i] = latencyCounts{}
	}
	return ru
}

// add counts r, whose tags are already encoded as tags, in every grain.
func (ru *rollup) add(r *Record, tags string) {
	ts := r.Time.UnixMilli()
	for i, g := range grains {
		k := rollupKey{period: floorTo(ts, g.ms), model: r.Model, provider: r.Provider, keyID: r.KeyID, keyName: r.KeyName,
			surface: r.Surface, route: r.Route, deployment: r.Deployment, tags: tags, status: r.Status}
		s := ru.sums[i][k]
		if s == nil {
			s = &rollupSums{}
			ru.sums[i][k] = s
		}
		s.add(r)
		ru.latency[i].add(r, tags, g.ms)
	}
}

// rows returns grain i's rows, in index order, as values in the order of
// rollupColumns(grains[i]).
func (ru *rollup) rows(i int) [][]any {
	keys := make([]rollupKey, 0, len(ru.sums[i]))
	for k := range ru.sums[i] {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, rollupKey.compare)
	out := make([][]any, len(keys))
	for j, k := range keys {
		s := ru.sums[i][k]
		out[j] = []any{k.period, k.keyID, k.keyName, k.tags, k.surface, k.model, k.provider, k.route, k.deployment, k.status,
			s.requests, s.errors, s.inputTokens, s.outputTokens, s.cachedTokens, s.costUSD, s.unpriced, s.latencyMS, s.savedUSD,
			s.counterfactualUSD}
	}
	return out
}

// dimensions and measures are the roll-up columns after the period.
var (
	dimensions = []string{"key_id", "key_name", "tags", "surface", "model", "provider", "route", "deployment", "status"}
	measures   = []string{"requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "cost_usd", "unpriced",
		"latency_ms", "saved_usd", "counterfactual_usd"}
)

// rollupColumns are g's columns: the period, the dimensions, the
// measures.
func rollupColumns(g grain) []string {
	return slices.Concat([]string{g.period}, dimensions, measures)
}

// upsertRows is the most roll-up rows one statement adds on PostgreSQL:
// 500 arguments. SQLite adds one row a statement, prepared once (see
// insertRows).
const upsertRows = 25

// upsertSQL adds n rows' sums to g's table. The conflict target is the
// unique index, whose PostgreSQL form holds md5(tags).
func upsertSQL(d store.Dialect, g grain, n int) string {
	tags := "tags"
	if d == store.Postgres {
		tags = "md5(tags)"
	}
	set := make([]string, len(measures))
	for i, c := range measures {
		set[i] = c + " = " + g.table + "." + c + " + excluded." + c
	}
	cols := rollupColumns(g)
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	return `INSERT INTO ` + g.table + `(` + strings.Join(cols, ", ") + `)
	VALUES ` + strings.TrimSuffix(strings.Repeat(tuple+",", n), ",") + `
	ON CONFLICT (` + g.period + `, model, provider, key_id, key_name, surface, status, route, deployment, ` + tags + `)
	DO UPDATE SET ` + strings.Join(set, ", ")
}

// upserts caches upsertSQL by dialect, grain and row count.
var upserts = func() (m [2][len(grains)][upsertRows + 1]string) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		for i, g := range grains {
			for n := 1; n <= upsertRows; n++ {
				m[d][i][n] = upsertSQL(d, g, n)
			}
		}
	}
	return m
}()

// addTo adds the sums to the roll-up tables inside tx, in index order.
func (ru *rollup) addTo(ctx context.Context, tx *sql.Tx, d store.Dialect) error {
	for i := range grains {
		rows := ru.rows(i)
		if len(rows) == 0 {
			continue
		}
		if d == store.SQLite {
			st, err := tx.PrepareContext(ctx, upserts[d][i][1])
			if err != nil {
				return err
			}
			defer st.Close()
			for _, r := range rows {
				if _, err := st.ExecContext(ctx, r...); err != nil {
					return err
				}
			}
			continue
		}
		args := make([]any, 0, upsertRows*len(rows[0]))
		for len(rows) > 0 {
			n := min(len(rows), upsertRows)
			args = args[:0]
			for _, r := range rows[:n] {
				args = append(args, r...)
			}
			if _, err := tx.ExecContext(ctx, upserts[d][i][n], args...); err != nil {
				return err
			}
			rows = rows[n:]
		}
	}
	for i, lc := range ru.latency {
		if err := lc.addTo(ctx, tx, d, i); err != nil {
			return err
		}
	}
	return nil
}

// rawAsRollup selects raw usage rows shaped as roll-up rows (less the
// period) of one request each, so that the two can be read as one.
const rawAsRollup = `SELECT key_id, key_name, tags, surface, model, provider, route, deployment, status,
	1 AS requests, CASE WHEN status >= 400 THEN 1 ELSE 0 END AS errors, input_tokens, output_tokens, cached_tokens, cost_usd,
	CASE WHEN cost_usd IS NULL AND status < 400 THEN 1 ELSE 0 END AS unpriced, latency_ms,
	CASE WHEN counterfactual_cost_usd IS NOT NULL AND cost_usd IS NOT NULL THEN counterfactual_cost_usd - cost_usd END AS saved_usd,
	counterfactual_cost_usd AS counterfactual_usd
	FROM usage WHERE ts >= ? AND ts < ?`

// A segment is a part of a window read from one source: roll-up
// grains[level], or the raw records when level is len(grains).
type segment struct {
	level    int
	from, to int64
}

// cover splits [f, t) into the segments a report reads, in time order:
// the whole days from the daily roll-up, the whole hours left from the
// hourly one, the rest, under an hour at each end, from the raw records.
// An empty window has no segments.
func cover(f, t int64) []segment {
	var out []segment
	var split func(f, t int64, level int)
	split = func(f, t int64, level int) {
		if f >= t {
			return
		}
		if level == len(grains) {
			out = append(out, segment{level, f, t})
			return
		}
		g := grains[level]
		a, b := ceilTo(f, g.ms), floorTo(t, g.ms)
		if a >= b {
			split(f, t, level+1)
			return
		}
		split(f, a, level+1)
		out = append(out, segment{level, a, b})
		split(b, t, level+1)
	}
	split(f, t, 0)
	return out
}

// usageSource returns a subquery, with its arguments, of the usage in
// [from, to) shaped as roll-up rows without their period, read from the
// segments cover gives. Summing its measures gives what summing the raw
// records would.
func usageSource(from, to time.Time) (string, []any) {
	var parts []string
	var args []any
	f, t := from.UnixMilli(), to.UnixMilli()
	for _, s := range cover(f, t) {
		if s.level == len(grains) {
			parts = append(parts, rawAsRollup)
		} else {
			g := grains[s.level]
			parts = append(parts, `SELECT `+strings.Join(slices.Concat(dimensions, measures), ", ")+` FROM `+g.table+
				` WHERE `+g.period+` >= ? AND `+g.period+` < ?`)
		}
		args = append(args, s.from, s.to)
	}
	if len(parts) == 0 { // an empty window still needs a query
		return rawAsRollup, []any{f, t}
	}
	return strings.Join(parts, "\nUNION ALL\n"), args
}
