package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/platform/store"
)

// Row is one group of a usage report.
type Row struct {
	Group        string  `json:"group"`
	Requests     int64   `json:"requests"`
	Errors       int64   `json:"errors"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	CachedTokens int64   `json:"cached_tokens"`
	CostUSD      float64 `json:"cost_usd"`
	// UnpricedRequests counts requests whose model had no known price;
	// their cost is not in CostUSD.
	UnpricedRequests int64   `json:"unpriced_requests"`
	AvgLatencyMS     float64 `json:"avg_latency_ms"`
	// P50LatencyMS and P99LatencyMS are the median and 99th percentile
	// latency of the group's answered requests, read from the latency
	// roll-up (within 4.5%); zero where the group has none, or groups by
	// a dimension that roll-up does not keep.
	P50LatencyMS float64 `json:"p50_latency_ms,omitempty"`
	P99LatencyMS float64 `json:"p99_latency_ms,omitempty"`
	// SavedUSD is what routing and the response cache saved: the
	// counterfactual cost (the strongest candidates', or what a cached
	// answer cost when made) minus the actual cost, over the requests
	// that have one.
	SavedUSD float64 `json:"saved_usd"`
	// RoutedCounterfactualUSD is what those requests would have cost on
	// the strongest candidates, or from the model.
	RoutedCounterfactualUSD float64 `json:"routed_counterfactual_usd"`
}

// Query selects records for a report.
type Query struct {
	From, To time.Time
	// GroupBy is model, provider, key, surface, status, route, deployment
	// or tag:NAME.
	GroupBy string
	// Tags keeps only the records that carry every one of these tags with
	// these values (a team's own usage, say); empty keeps all.
	Tags map[string]string
	// Percentiles says which latency percentiles the caller wants: those
	// of the total and of each group (the default), of the total only
	// (Latency reads the roll-ups without grouping them), or none (the
	// admin API's Usage then leaves Latency out), where the others are
	// not shown.
	Percentiles PercentileScope
}

// PercentileScope is which latency percentiles a report wants.
type PercentileScope int

// The scopes of a report's percentiles.
const (
	PercentilesByGroup PercentileScope = iota // the total's and each group's
	PercentilesTotal                          // the total's alone
	PercentilesNone                           // none
)

// groupColumn returns the SQL expression, and its arguments, for a
// group_by value. It reads the columns that raw records and roll-up rows
// share.
func groupColumn(d store.Dialect, groupBy string) (string, []any, error) {
	switch groupBy {
	case "", "model":
		return "model", nil, nil
	case "provider":
		return "provider", nil, nil
	case "key":
		return "key_name || ' (' || key_id || ')'", nil, nil
	case "surface":
		return "surface", nil, nil
	case "route":
		return "route", nil, nil
	case "deployment":
		return "deployment", nil, nil
	case "status":
		return "CAST(status AS TEXT)", nil, nil
	}
	if name, ok := strings.CutPrefix(groupBy, "tag:"); ok && name != "" {
		expr, arg := d.JSONText("tags", name)
		return "COALESCE(" + expr + ", '(untagged)')", []any{arg}, nil
	}
	return "", nil, fmt.Errorf("group_by %q: use model, provider, key, surface, status, route, deployment or tag:NAME", groupBy)
}

// ValidGroupBy reports whether groupBy is accepted by Report.
func ValidGroupBy(groupBy string) error {
	_, _, err := groupColumn(store.SQLite, groupBy)
	return err
}

// Report sums usage between q.From (inclusive) and q.To (exclusive) by
// group, most expensive first. The whole days of the window are read
// from the daily roll-up, the whole hours left from the hourly one and
// only the rest, under an hour at each end, from the raw records: the
// answer is what summing the raw records gives (but for the last bits of
// float sums added in another order), at a cost that grows with the
// number of days and groups rather than requests.
func Report(ctx context.Context, db *sql.DB, q Query) ([]Row, error) {
	d := store.DialectOf(db)
	col, args, err := groupColumn(d, q.GroupBy)
	if err != nil {
		return nil, err
	}
	src, srcArgs := usageSource(q.From, q.To)
	where, whereArgs := "", []any(nil)
	if conds, cargs := tagConds(d, q.Tags); len(conds) > 0 {
		where, whereArgs = " WHERE "+strings.Join(conds, " AND "), cargs
	}
	query := `SELECT ` + col + ` AS g, SUM(requests), SUM(errors), SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens),
		COALESCE(SUM(cost_usd), 0), SUM(unpriced), SUM(latency_ms) / SUM(requests),
		COALESCE(SUM(saved_usd), 0), COALESCE(SUM(counterfactual_usd), 0)
		FROM (` + src + `) u` + where + ` GROUP BY g ORDER BY 7 DESC, 2 DESC, g`
	return queryReport(ctx, db, query, slices.Concat(args, srcArgs, whereArgs))
}

// reportRaw is Report from the raw records alone: what the roll-up must
// agree with, and the baseline its benchmark is measured against.
func reportRaw(ctx context.Context, db *sql.DB, q Query) ([]Row, error) {
	col, args, err := groupColumn(store.DialectOf(db), q.GroupBy)
	if err != nil {
		return nil, err
	}
	where, whereArgs := profileWhere(store.DialectOf(db), ProfileQuery{From: q.From, To: q.To, Tags: q.Tags})
	query := `SELECT ` + col + ` AS g, COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), SUM(input_tokens), SUM(output_tokens),
		SUM(cached_tokens), COALESCE(SUM(cost_usd), 0), SUM(CASE WHEN cost_usd IS NULL AND status < 400 THEN 1 ELSE 0 END), AVG(latency_ms),
		COALESCE(SUM(CASE WHEN counterfactual_cost_usd IS NOT NULL AND cost_usd IS NOT NULL THEN counterfactual_cost_usd - cost_usd END), 0),
		COALESCE(SUM(counterfactual_cost_usd), 0)
		FROM usage WHERE ` + where + ` GROUP BY g ORDER BY 7 DESC, 2 DESC, g`
	return queryReport(ctx, db, query, slices.Concat(args, whereArgs))
}

func queryReport(ctx context.Context, db *sql.DB, query string, args []any) ([]Row, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Row{}
	for rows.Next() {
		var r Row
		if err := rows.Scan(&r.Group, &r.Requests, &r.Errors, &r.InputTokens, &r.OutputTokens, &r.CachedTokens,
			&r.CostUSD, &r.UnpricedRequests, &r.AvgLatencyMS, &r.SavedUSD, &r.RoutedCounterfactualUSD); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Records returns raw records between from and to, newest first, at most
// limit of them.
func Records(ctx context.Context, db *sql.DB, from, to time.Time, limit int) ([]Record, error) {
	rows, err := db.QueryContext(ctx, `SELECT ts, request_id, key_id, key_name, tags, surface, model, provider, upstream_model,
		stream, input_tokens, output_tokens, cached_tokens, status, error_type, latency_ms, ttft_ms, cost_usd,
		route, deployment, attempts, route_reason, counterfactual_cost_usd, guardrail, estimated
		FROM usage WHERE ts >= ? AND ts < ? ORDER BY ts DESC, id DESC LIMIT ?`, from.UnixMilli(), to.UnixMilli(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		var ts int64
		var tags string
		var stream, estimated int
		var ttft, cost, cf sql.NullFloat64
		if err := rows.Scan(&ts, &r.RequestID, &r.KeyID, &r.KeyName, &tags, &r.Surface, &r.Model, &r.Provider,
			&r.UpstreamModel, &stream, &r.InputTokens, &r.OutputTokens, &r.CachedTokens, &r.Status, &r.ErrorType,
			&r.LatencyMS, &ttft, &cost, &r.Route, &r.Deployment, &r.Attempts, &r.RouteReason, &cf, &r.Guardrail, &estimated); err != nil {
			return nil, err
		}
		r.Time = time.UnixMilli(ts).UTC()
		r.Stream, r.Estimated = stream == 1, estimated == 1
		if ttft.Valid {
			r.TTFTMS = &ttft.Float64
		}
		if cost.Valid {
			r.CostUSD = &cost.Float64
		}
		if cf.Valid {
			r.CounterfactualUSD = &cf.Float64
		}
		if err := jsonUnmarshalString(tags, &r.Tags); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
