package console

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/ledger"
)

// pathSpend is one period's spending by path, with its traffic.
type pathSpend struct {
	Label                              string
	PerToken, Hosting, Reserved, Total float64
	Requests, Errors, UnpricedRequests int64
	AvgLatencyMS, SavedUSD             float64
	P50LatencyMS, P99LatencyMS         float64
}

func spendOf(label string, u *admin.UsageResponse) pathSpend {
	return pathSpend{Label: label, PerToken: u.Total.CostUSD, Hosting: u.HostingCostUSD, Reserved: u.ReservedCapacityCostUSD,
		Total: u.TotalCostUSD, Requests: u.Total.Requests, Errors: u.Total.Errors, UnpricedRequests: u.Total.UnpricedRequests,
		AvgLatencyMS: u.Total.AvgLatencyMS, SavedUSD: u.Total.SavedUSD, P50LatencyMS: u.Total.P50LatencyMS,
		P99LatencyMS: u.Total.P99LatencyMS}
}

type overviewData struct {
	Today, Month pathSpend
	Daily        *Chart
	DailyRows    []pathSpend
	TopModels    []ledger.Row
	TopTeams     []ledger.Row
	MaxModelCost float64
	MaxTeamCost  float64
}

// topN is how many models and teams the overview lists.
const topN = 8

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := h.now().UTC()
	end := now.Add(time.Second)
	day := now.Truncate(24 * time.Hour)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	// The page shows the percentiles of today's and this month's
	// totals, none of a model, team or day.
	today, err := h.usageTotals(ctx, day, end, "model")
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	m, err := h.usageTotals(ctx, month, end, "model")
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	d := overviewData{Today: spendOf("Today", today), Month: spendOf("This month", m)}
	d.TopModels = m.Rows[:min(topN, len(m.Rows))]
	for _, row := range d.TopModels {
		d.MaxModelCost = max(d.MaxModelCost, row.CostUSD)
	}
	if viewerFrom(ctx).Team() == "" {
		teams, err := h.usageCosts(ctx, month, end, "tag:team")
		if err != nil {
			h.fail(w, r, http.StatusInternalServerError, err.Error())
			return
		}
		d.TopTeams = teams.Rows[:min(topN, len(teams.Rows))]
		for _, row := range d.TopTeams {
			d.MaxTeamCost = max(d.MaxTeamCost, row.CostUSD)
		}
	}
	bs, _ := buckets(day.Add(-13*24*time.Hour), end, 24*time.Hour)
	s, err := h.series(ctx, m, bs, "path")
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	labels := make([]string, len(bs))
	for i, b := range bs {
		labels[i] = b.Label(24 * time.Hour)
		d.DailyRows = append(d.DailyRows, spendOf(labels[i], s.Reports[i]))
	}
	d.Daily = stack("daily", "Cost per day by path, last 14 days (UTC)", labels, paths, s.Values, usd)
	h.render(w, r, "overview", page{Title: "Overview", Data: d})
}

type spendData struct {
	From, To         time.Time
	FromText, ToText string
	GroupBy, Bucket  string
	GroupByOptions   []string
	Chart            *Chart
	Whole            *admin.UsageResponse
	Periods          []periodRow
	CSVQuery         string
}

// periodRow is one bucket of the spend table.
type periodRow struct {
	Label  string
	Values []float64
	Total  float64
}

// spendQuery is the Spend page's parsed form.
type spendQuery struct {
	from, to        time.Time
	groupBy, bucket string
	size            time.Duration
}

func (h *Handler) parseSpend(r *http.Request) (spendQuery, error) {
	var q spendQuery
	var err error
	if q.from, q.to, err = h.window(r, 7*24*time.Hour); err != nil {
		return q, err
	}
	q.groupBy = r.URL.Query().Get("group_by")
	if q.groupBy == "" {
		q.groupBy = "model"
	}
	if q.groupBy != "path" {
		if err := ledger.ValidGroupBy(q.groupBy); err != nil {
			return q, err
		}
	}
	q.bucket = r.URL.Query().Get("bucket")
	switch q.bucket {
	case "":
		q.bucket = "day"
		if q.to.Sub(q.from) <= 48*time.Hour {
			q.bucket = "hour"
		}
	case "hour", "day":
	default:
		return q, fmt.Errorf("bucket %q: use hour or day", q.bucket)
	}
	q.size = 24 * time.Hour
	if q.bucket == "hour" {
		q.size = time.Hour
	}
	return q, nil
}

// spendSeries runs a spend query: the whole window's report and one per
// bucket.
func (h *Handler) spendSeries(r *http.Request, q spendQuery) (*admin.UsageResponse, *series, error) {
	whole, err := h.usage(r.Context(), q.from, q.to, reportGroup(q.groupBy))
	if err != nil {
		return nil, nil, err
	}
	bs, err := buckets(q.from, q.to, q.size)
	if err != nil {
		return nil, nil, err
	}
	s, err := h.series(r.Context(), whole, bs, q.groupBy)
	return whole, s, err
}

func (h *Handler) spend(w http.ResponseWriter, r *http.Request) {
	d := spendData{GroupByOptions: []string{"model", "path", "tag:team", "provider", "key", "route", "deployment", "surface", "status"},
		FromText: r.URL.Query().Get("from"), ToText: r.URL.Query().Get("to")}
	if d.FromText == "" {
		d.FromText = "7d"
	}
	q, err := h.parseSpend(r)
	d.GroupBy, d.Bucket = q.groupBy, q.bucket
	if err != nil {
		h.renderStatus(w, r, http.StatusBadRequest, "spend", page{Title: "Spend", Error: err.Error(), Data: d})
		return
	}
	whole, s, err := h.spendSeries(r, q)
	if err != nil {
		h.renderStatus(w, r, http.StatusBadRequest, "spend", page{Title: "Spend", Error: err.Error(), Data: d})
		return
	}
	d.From, d.To, d.Whole = q.from, q.to, whole
	labels := make([]string, len(s.Buckets))
	for i, b := range s.Buckets {
		labels[i] = b.Label(q.size)
		row := periodRow{Label: labels[i], Values: s.Values[i]}
		for _, v := range s.Values[i] {
			row.Total += v
		}
		d.Periods = append(d.Periods, row)
	}
	d.Chart = stack("spend-chart", "Cost per "+q.bucket+" by "+q.groupBy+" (UTC)", labels, s.Groups, s.Values, usd)
	d.CSVQuery = r.URL.RawQuery
	h.render(w, r, "spend", page{Title: "Spend", Data: d})
}

// spendCSV exports the Spend page's query: one line per period and group,
// with the per-token measures, and the instance-hours and reserved
// capacity of each period as groups of their own.
func (h *Handler) spendCSV(w http.ResponseWriter, r *http.Request) {
	q, err := h.parseSpend(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	bs, err := buckets(q.from, q.to, q.size)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var lines [][]string
	for _, b := range bs {
		u, err := h.usageCosts(r.Context(), b.From, b.To, reportGroup(q.groupBy))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		at := []string{b.From.UTC().Format(time.RFC3339), b.To.UTC().Format(time.RFC3339)}
		for _, row := range u.Rows {
			lines = append(lines, append(at[:2:2], row.Group, itoa(row.Requests), itoa(row.Errors), itoa(row.InputTokens),
				itoa(row.OutputTokens), itoa(row.CachedTokens), ftoa(row.CostUSD), itoa(row.UnpricedRequests)))
		}
		if u.HostingCostUSD > 0 {
			lines = append(lines, append(at[:2:2], "instance-hours", "", "", "", "", "", ftoa(u.HostingCostUSD), ""))
		}
		if u.ReservedCapacityCostUSD > 0 {
			lines = append(lines, append(at[:2:2], "reserved", "", "", "", "", "", ftoa(u.ReservedCapacityCostUSD), ""))
		}
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="junction-spend.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"from", "to", reportGroup(q.groupBy), "requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "cost_usd", "unpriced_requests"})
	cw.WriteAll(lines)
}

func itoa(n int64) string   { return strconv.FormatInt(n, 10) }
func ftoa(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

type routingData struct {
	FromText        string
	Routes, Deploys *admin.UsageResponse
}

func (h *Handler) routing(w http.ResponseWriter, r *http.Request) {
	d := routingData{FromText: r.URL.Query().Get("from")}
	if d.FromText == "" {
		d.FromText = "24h"
	}
	from, to, err := h.window(r, 24*time.Hour)
	if err == nil {
		d.Routes, err = h.usage(r.Context(), from, to, "route")
	}
	if err == nil {
		d.Deploys, err = h.usage(r.Context(), from, to, "deployment")
	}
	if err != nil {
		h.renderStatus(w, r, http.StatusBadRequest, "routing", page{Title: "Routing", Error: err.Error(), Data: d})
		return
	}
	h.render(w, r, "routing", page{Title: "Routing", Data: d})
}
