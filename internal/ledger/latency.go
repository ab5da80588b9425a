package ledger

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/junctionhq/junction/internal/platform/store"
)

// Latency percentiles are read from roll-ups too: usage_latency_hourly
// and usage_latency_daily count answered requests (status below 400) per
// UTC hour or day, model, surface, route, tags and latency bucket.
// Buckets grow geometrically, bucketsPerDoubling to each doubling of the
// latency, so a percentile read from them is within 4.5% of the exact one
// (half a bucket's width, as a ratio) at any scale, and a day of traffic
// is at most a few thousand rows of the daily roll-up however many
// requests it held.

// bucketsPerDoubling is how many latency buckets span each doubling.
const bucketsPerDoubling = 8

// latencyBucket is the bucket of a latency in milliseconds: bucket b
// holds [2^(b/8), 2^((b+1)/8)) ms, and bucket -1 everything under 1 ms.
func latencyBucket(ms float64) int {
	if !(ms >= 1) { // NaN too
		return -1
	}
	return int(math.Floor(math.Log2(ms) * bucketsPerDoubling))
}

// bucketMS is the latency a bucket stands for: its geometric middle.
func bucketMS(b int) float64 {
	if b < 0 {
		return 0.5
	}
	return math.Exp2((float64(b) + 0.5) / bucketsPerDoubling)
}

// latencyGrains are the latency roll-ups, in the order of grains: the
// same periods, so a window is covered by them as by the usage roll-ups.
var latencyGrains = [len(grains)]grain{{"usage_latency_daily", "day", dayMS}, {"usage_latency_hourly", "hour", hourMS}}

// latencyKey is one latency roll-up row's dimensions.
type latencyKey struct {
	period                      int64
	model, surface, route, tags string
	bucket                      int
}

// compare orders keys as the roll-up's unique index does, so replicas
// lock rows in one order.
func (k latencyKey) compare(o latencyKey) int {
	return cmp.Or(cmp.Compare(k.period, o.period), strings.Compare(k.model, o.model), strings.Compare(k.surface, o.surface),
		strings.Compare(k.route, o.route), strings.Compare(k.tags, o.tags), cmp.Compare(k.bucket, o.bucket))
}

// latencyCounts counts a batch's answered records by latency row of one
// latency roll-up.
type latencyCounts map[latencyKey]int64

// add counts r, whose tags are already encoded as tags, in the period of
// length unit that holds it, when it was answered.
func (lc latencyCounts) add(r *Record, tags string, unit int64) {
	if r.Status >= 400 {
		return
	}
	lc[latencyKey{period: floorTo(r.Time.UnixMilli(), unit), model: r.Model, surface: r.Surface, route: r.Route,
		tags: tags, bucket: latencyBucket(r.LatencyMS)}]++
}

// latencyUpsert adds n rows' counts to the latency roll-up g.
func latencyUpsert(d store.Dialect, g grain, n int) string {
	tags := "tags"
	if d == store.Postgres {
		tags = "md5(tags)"
	}
	tuple := "(?,?,?,?,?,?,?)"
	return `INSERT INTO ` + g.table + `(` + strings.Join(latencyColumns(g), ", ") + `)
	VALUES ` + strings.TrimSuffix(strings.Repeat(tuple+",", n), ",") + `
	ON CONFLICT (` + g.period + `, model, surface, route, ` + tags + `, bucket)
	DO UPDATE SET requests = ` + g.table + `.requests + excluded.requests`
}

// latencyUpserts caches latencyUpsert by dialect, latency roll-up and row
// count: SQLite adds a row a statement, prepared once; PostgreSQL up to
// upsertRows a statement, a round trip each.
var latencyUpserts = func() (m [2][len(latencyGrains)][upsertRows + 1]string) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		for i, g := range latencyGrains {
			for n := 1; n <= upsertRows; n++ {
				m[d][i][n] = latencyUpsert(d, g, n)
			}
		}
	}
	return m
}()

// latencyColumns are the latency roll-up g's columns, in the order of
// latencyCounts.rows' values.
func latencyColumns(g grain) []string {
	return []string{g.period, "model", "surface", "route", "tags", "bucket", "requests"}
}

// rows returns the counts as roll-up rows, in index order.
func (lc latencyCounts) rows() [][]any {
	keys := make([]latencyKey, 0, len(lc))
	for k := range lc {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, latencyKey.compare)
	out := make([][]any, len(keys))
	for i, k := range keys {
		out[i] = []any{k.period, k.model, k.surface, k.route, k.tags, k.bucket, lc[k]}
	}
	return out
}

// addTo adds the counts to latency roll-up i inside tx, in index order.
func (lc latencyCounts) addTo(ctx context.Context, tx *sql.Tx, d store.Dialect, i int) error {
	if len(lc) == 0 {
		return nil
	}
	rows := lc.rows()
	if d == store.SQLite {
		st, err := tx.PrepareContext(ctx, latencyUpserts[d][i][1])
		if err != nil {
			return err
		}
		defer st.Close()
		for _, row := range rows {
			if _, err := st.ExecContext(ctx, row...); err != nil {
				return err
			}
		}
		return nil
	}
	args := make([]any, 0, upsertRows*len(rows[0]))
	for len(rows) > 0 {
		n := min(len(rows), upsertRows)
		args = args[:0]
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, latencyUpserts[d][i][n], args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// Percentiles are latency percentiles of answered requests, in
// milliseconds, with how many requests they were read from.
type Percentiles struct {
	Requests int64   `json:"requests"`
	P50MS    float64 `json:"p50_ms"`
	P90MS    float64 `json:"p90_ms"`
	P99MS    float64 `json:"p99_ms"`
}

// histogram counts requests per latency bucket.
type histogram map[int]int64

// percentiles reads p50, p90 and p99 off h by nearest rank.
func (h histogram) percentiles() Percentiles {
	buckets := make([]int, 0, len(h))
	var n int64
	for b, c := range h {
		buckets = append(buckets, b)
		n += c
	}
	if n == 0 {
		return Percentiles{}
	}
	slices.Sort(buckets)
	at := func(p float64) float64 {
		rank := int64(math.Ceil(p * float64(n)))
		var seen int64
		for _, b := range buckets {
			if seen += h[b]; seen >= rank {
				return bucketMS(b)
			}
		}
		return bucketMS(buckets[len(buckets)-1])
	}
	return Percentiles{Requests: n, P50MS: at(0.50), P90MS: at(0.90), P99MS: at(0.99)}
}

// latencyGroupColumn is the column a latency report groups by; only the
// dimensions the latency roll-up keeps can be grouped.
func latencyGroupColumn(d store.Dialect, groupBy string) (string, []any, bool) {
	switch groupBy {
	case "model", "surface", "route":
		return groupBy, nil, true
	case "":
		return "''", nil, true
	}
	if name, ok := strings.CutPrefix(groupBy, "tag:"); ok && name != "" {
		expr, arg := d.JSONText("tags", name)
		return "COALESCE(" + expr + ", '(untagged)')", []any{arg}, true
	}
	return "", nil, false
}

// Latency returns the latency percentiles of the answered requests that q
// selects, by q.GroupBy's group and in all. It reads the window as
// Report does: whole days from the daily latency roll-up, whole hours
// left from the hourly one, and the ragged edges, under an hour each,
// from the raw records. Groups by provider, key, deployment or status
// have no per-group percentiles (the roll-ups do not keep them): byGroup
// is nil and total is still given; so it is when q.Percentiles is not
// PercentilesByGroup.
func Latency(ctx context.Context, db *sql.DB, q Query) (byGroup map[string]Percentiles, total Percentiles, err error) {
	d := store.DialectOf(db)
	col, colArgs, grouped := latencyGroupColumn(d, q.GroupBy)
	if grouped = grouped && q.Percentiles == PercentilesByGroup; !grouped {
		col, colArgs = "''", nil
	}
	conds, condArgs := tagConds(d, q.Tags)
	where, and := "", ""
	if len(conds) > 0 {
		where, and = " WHERE "+strings.Join(conds, " AND "), " AND "+strings.Join(conds, " AND ")
	}
	hists := map[string]histogram{}
	count := func(g string, b int, n int64) {
		h := hists[g]
		if h == nil {
			h = histogram{}
			hists[g] = h
		}
		h[b] += n
	}
	var parts []string
	var partArgs []any
	var edges []segment
	for _, s := range cover(q.From.UnixMilli(), q.To.UnixMilli()) {
		if s.level == len(grains) {
			edges = append(edges, s)
			continue
		}
		g := latencyGrains[s.level]
		parts = append(parts, `SELECT model, surface, route, tags, bucket, requests FROM `+g.table+
			` WHERE `+g.period+` >= ? AND `+g.period+` < ?`)
		partArgs = append(partArgs, s.from, s.to)
	}
	if len(parts) > 0 {
		union := `(` + strings.Join(parts, " UNION ALL ") + `) u` + where
		query := `SELECT ` + col + ` AS g, bucket, SUM(requests) FROM ` + union + ` GROUP BY g, bucket`
		args := slices.Concat(colArgs, partArgs, condArgs)
		switch {
		case !grouped:
			// One group: sorting by a constant too costs time.
			query = `SELECT '' AS g, bucket, SUM(requests) FROM ` + union + ` GROUP BY bucket`
			args = slices.Concat(partArgs, condArgs)
		case d == store.Postgres && strings.HasPrefix(q.GroupBy, "tag:"):
			// PostgreSQL parses the tags as JSON for each row it reads a
			// tag from: sum by tag set first, then read the tag from each
			// of the few sets.
			query = `SELECT ` + col + ` AS g, bucket, SUM(requests) FROM (SELECT tags, bucket, SUM(requests) AS requests FROM ` + union +
				` GROUP BY tags, bucket) v GROUP BY g, bucket`
		}
		rows, err := db.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, Percentiles{}, fmt.Errorf("latency roll-up: %w", err)
		}
		for rows.Next() {
			var g string
			var bucket int
			var n int64
			if err := rows.Scan(&g, &bucket, &n); err != nil {
				rows.Close()
				return nil, Percentiles{}, err
			}
			count(g, bucket, n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, Percentiles{}, err
		}
	}
	for _, edge := range edges {
		rows, err := db.QueryContext(ctx, `SELECT `+col+` AS g, latency_ms FROM usage
			WHERE ts >= ? AND ts < ? AND status < 400`+and, slices.Concat(colArgs, []any{edge.from, edge.to}, condArgs)...)
		if err != nil {
			return nil, Percentiles{}, fmt.Errorf("latency records: %w", err)
		}
		for rows.Next() {
			var g string
			var ms float64
			if err := rows.Scan(&g, &ms); err != nil {
				rows.Close()
				return nil, Percentiles{}, err
			}
			count(g, latencyBucket(ms), 1)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, Percentiles{}, err
		}
	}
	all := histogram{}
	if grouped {
		byGroup = make(map[string]Percentiles, len(hists))
	}
	for g, h := range hists {
		for bucket, n := range h {
			all[bucket] += n
		}
		if grouped {
			byGroup[g] = h.percentiles()
		}
	}
	return byGroup, all.percentiles(), nil
}
