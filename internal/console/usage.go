package console

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/ledger"
)

// usage is the admin API's usage report (GET /api/v1/usage, what
// `junction usage` prints), confined to the viewer's team when it has one.
func (h *Handler) usage(ctx context.Context, from, to time.Time, groupBy string) (*admin.UsageResponse, error) {
	return h.report(ctx, ledger.Query{From: from, To: to, GroupBy: groupBy})
}

// usageTotals is usage with latency percentiles for the total only, not
// per group: for a page that shows the total's alone.
func (h *Handler) usageTotals(ctx context.Context, from, to time.Time, groupBy string) (*admin.UsageResponse, error) {
	return h.report(ctx, ledger.Query{From: from, To: to, GroupBy: groupBy, Percentiles: ledger.PercentilesTotal})
}

// usageCosts is usage without latency percentiles: a period of a chart,
// a line of the CSV export or a list, which show none.
func (h *Handler) usageCosts(ctx context.Context, from, to time.Time, groupBy string) (*admin.UsageResponse, error) {
	return h.report(ctx, ledger.Query{From: from, To: to, GroupBy: groupBy, Percentiles: ledger.PercentilesNone})
}

func (h *Handler) report(ctx context.Context, q ledger.Query) (*admin.UsageResponse, error) {
	if team := viewerFrom(ctx).Team(); team != "" {
		q.Tags = map[string]string{"team": team}
	}
	return admin.Usage(ctx, h.DB, q)
}

// bucket is one period of a series.
type bucket struct{ From, To time.Time }

// Label names the bucket on a chart's axis.
func (b bucket) Label(size time.Duration) string {
	if size >= 24*time.Hour {
		return b.From.UTC().Format("Jan 2")
	}
	return b.From.UTC().Format("Jan 2 15:04")
}

// maxBuckets bounds a series, so a page costs at most that many reports.
const maxBuckets = 200

// buckets splits [from, to) at whole UTC periods of size; the first and
// last may be partial.
func buckets(from, to time.Time, size time.Duration) ([]bucket, error) {
	start := from.UTC().Truncate(size)
	if n := int(to.Sub(start)/size) + 1; n > maxBuckets {
		return nil, fmt.Errorf("%d periods of %s is too many to draw (at most %d): choose a coarser period or a shorter window", n, size, maxBuckets)
	}
	var out []bucket
	for b := start; b.Before(to); b = b.Add(size) {
		out = append(out, bucket{From: maxTime(b, from), To: minTime(b.Add(size), to)})
	}
	return out, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// paths are the ways money is spent, as the usage report splits them.
var paths = []string{"per-token", "instance-hours", "reserved"}

// pathCosts is a usage report's cost by path.
func pathCosts(u *admin.UsageResponse) []float64 {
	return []float64{u.Total.CostUSD, u.HostingCostUSD, u.ReservedCapacityCostUSD}
}

// series is a usage report per bucket, for a chart by group: the groups
// are the costliest of the whole window (the rest summed as "other"), or
// the paths when groupBy is "path".
type series struct {
	Buckets []bucket
	Reports []*admin.UsageResponse
	Groups  []string
	// Values[i][j] is bucket i's cost for group j.
	Values [][]float64
}

// maxSeries bounds a chart's layers; smaller groups add up in "other".
const maxSeries = 7

// series reads each bucket's report without percentiles: no chart or
// table of periods shows them.
func (h *Handler) series(ctx context.Context, whole *admin.UsageResponse, bs []bucket, groupBy string) (*series, error) {
	s := &series{Buckets: bs}
	if groupBy == "path" {
		s.Groups = paths
	} else {
		for _, r := range whole.Rows {
			if len(s.Groups) == maxSeries {
				s.Groups = append(s.Groups, "other")
				break
			}
			s.Groups = append(s.Groups, r.Group)
		}
	}
	for _, b := range bs {
		u, err := h.usageCosts(ctx, b.From, b.To, reportGroup(groupBy))
		if err != nil {
			return nil, err
		}
		s.Reports = append(s.Reports, u)
		if groupBy == "path" {
			s.Values = append(s.Values, pathCosts(u))
			continue
		}
		row := make([]float64, len(s.Groups))
		for _, r := range u.Rows {
			j := slices.Index(s.Groups, r.Group)
			if j < 0 || j == maxSeries {
				j = len(s.Groups) - 1
			}
			row[j] += r.CostUSD
		}
		s.Values = append(s.Values, row)
	}
	return s, nil
}

// reportGroup is the report's group_by for a chart's: paths are split
// from the totals of any grouping.
func reportGroup(groupBy string) string {
	if groupBy == "path" {
		return "model"
	}
	return groupBy
}

// window reads from and to as the admin API does, with defaults.
func (h *Handler) window(r *http.Request, def time.Duration) (from, to time.Time, err error) {
	now := h.now()
	if from, err = admin.ParseTime(r.URL.Query().Get("from"), now, now.Add(-def)); err != nil {
		return from, to, fmt.Errorf("from: %w", err)
	}
	if to, err = admin.ParseTime(r.URL.Query().Get("to"), now, now.Add(time.Second)); err != nil {
		return from, to, fmt.Errorf("to: %w", err)
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("from must be before to")
	}
	return from, to, nil
}
