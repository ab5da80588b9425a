package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/platform/store"
)

// ProfileQuery selects the records a traffic profile is built from: those
// between From (inclusive) and To (exclusive) whose model, route and tags
// all match. An empty Model or Route matches every record; every tag in
// Tags must be present with that value.
type ProfileQuery struct {
	Model string
	Route string
	Tags  map[string]string
	From  time.Time
	To    time.Time
}

// Profile is the shape of observed traffic: how much, how big, and when.
// It is what the cost advisor needs to price alternatives to the spend the
// ledger recorded.
type Profile struct {
	Model string            `json:"model,omitempty"`
	Route string            `json:"route,omitempty"`
	Tags  map[string]string `json:"tags,omitempty"`
	// From and To are the window asked for; Start is where the observed
	// span begins: the later of From and the start (UTC midnight) of the
	// day of the first matching record, so that a model in use for a week
	// is not averaged over a month.
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Start time.Time `json:"start"`
	// Days is the observed span (To − Start) in days.
	Days float64 `json:"days"`

	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// InputTokens and OutputTokens sum the successful requests (status
	// below 400), which are what the token averages describe.
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	// CostUSD sums the recorded cost; UnpricedRequests counts successful
	// requests with no known price, whose cost is not in it.
	CostUSD          float64 `json:"cost_usd"`
	UnpricedRequests int64   `json:"unpriced_requests"`

	// RequestsPerDay is Requests / Days.
	RequestsPerDay float64 `json:"requests_per_day"`
	// AvgInputTokens and AvgOutputTokens are per successful request.
	AvgInputTokens  float64 `json:"avg_input_tokens"`
	AvgOutputTokens float64 `json:"avg_output_tokens"`
	// ByHour counts requests by hour of the day (UTC, 0–23) over the
	// whole span: the daily shape of the traffic.
	ByHour [24]int64 `json:"by_hour"`
	// PeakHourRequests is the busiest single clock hour of the span, and
	// PeakToAverage that hour over the mean hour (Requests / (Days×24)).
	PeakHourRequests int64   `json:"peak_hour_requests"`
	PeakToAverage    float64 `json:"peak_to_average"`
}

// TrafficProfile builds the profile of the records q selects. A window
// with no matching record gives a Profile with Requests 0.
func TrafficProfile(ctx context.Context, db *sql.DB, q ProfileQuery) (*Profile, error) {
	if !q.From.Before(q.To) {
		return nil, fmt.Errorf("profile: from must be before to")
	}
	where, args := profileWhere(store.DialectOf(db), q)
	p := &Profile{Model: q.Model, Route: q.Route, Tags: q.Tags, From: q.From.UTC(), To: q.To.UTC(), Start: q.From.UTC()}
	var minTS sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN status < 400 THEN input_tokens END), 0),
		COALESCE(SUM(CASE WHEN status < 400 THEN output_tokens END), 0),
		COALESCE(SUM(cost_usd), 0), COALESCE(SUM(CASE WHEN cost_usd IS NULL AND status < 400 THEN 1 ELSE 0 END), 0), MIN(ts)
		FROM usage WHERE `+where, args...).Scan(&p.Requests, &p.Errors, &p.InputTokens, &p.OutputTokens,
		&p.CostUSD, &p.UnpricedRequests, &minTS)
	if err != nil {
		return nil, err
	}
	if p.Requests == 0 {
		p.Days = q.To.Sub(q.From).Hours() / 24
		return p, nil
	}
	const hourMS = int64(time.Hour / time.Millisecond)
	const dayMS = 24 * hourMS
	if first := time.UnixMilli(minTS.Int64 / dayMS * dayMS).UTC(); first.After(p.Start) {
		p.Start = first
	}
	p.Days = p.To.Sub(p.Start).Hours() / 24

	rows, err := db.QueryContext(ctx, `SELECT (ts / ?) % 24 AS h, COUNT(*) FROM usage WHERE `+where+` GROUP BY h`,
		append([]any{hourMS}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var h, n int64
		if err := rows.Scan(&h, &n); err != nil {
			return nil, err
		}
		if h >= 0 && h < 24 {
			p.ByHour[h] = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	err = db.QueryRowContext(ctx, `SELECT COUNT(*) AS n FROM usage WHERE `+where+` GROUP BY ts / ? ORDER BY n DESC LIMIT 1`,
		append(args, hourMS)...).Scan(&p.PeakHourRequests)
	if err != nil {
		return nil, err
	}

	p.RequestsPerDay = float64(p.Requests) / p.Days
	if ok := p.Requests - p.Errors; ok > 0 {
		p.AvgInputTokens = float64(p.InputTokens) / float64(ok)
		p.AvgOutputTokens = float64(p.OutputTokens) / float64(ok)
	}
	if hours := p.Days * 24; hours > 0 {
		p.PeakToAverage = float64(p.PeakHourRequests) / (float64(p.Requests) / hours)
	}
	return p, nil
}

// profileWhere returns the WHERE clause (without the keyword) and its
// arguments for q.
func profileWhere(d store.Dialect, q ProfileQuery) (string, []any) {
	conds := []string{"ts >= ?", "ts < ?"}
	args := []any{q.From.UnixMilli(), q.To.UnixMilli()}
	if q.Model != "" {
		conds = append(conds, "model = ?")
		args = append(args, q.Model)
	}
	if q.Route != "" {
		conds = append(conds, "route = ?")
		args = append(args, q.Route)
	}
	tc, targs := tagConds(d, q.Tags)
	return strings.Join(append(conds, tc...), " AND "), append(args, targs...)
}

// tagConds returns one condition per tag, in name order, that holds when
// a record's tags column has that tag with that value, and their
// arguments.
func tagConds(d store.Dialect, tags map[string]string) ([]string, []any) {
	names := make([]string, 0, len(tags))
	for k := range tags {
		names = append(names, k)
	}
	sort.Strings(names)
	var conds []string
	var args []any
	for _, k := range names {
		expr, arg := d.JSONText("tags", k)
		conds = append(conds, expr+" = ?")
		args = append(args, arg, tags[k])
	}
	return conds, args
}
