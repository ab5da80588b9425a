package console

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/autoscale"
)

// The Endpoints page draws each endpoint's instances over the last six
// hours: bars of the instances each variant ran (its metered instance
// time over each ten minutes, so a bar is the average count), and a line
// of the instances asked for, from the scaling activities (every change
// of a desired count: a policy's, the API's, a cold start's).

const (
	capacityWindow = 6 * time.Hour
	capacityBucket = 10 * time.Minute
)

// capacityHistory is one endpoint's instances over time, for the chart
// and the table under it.
type capacityHistory struct {
	Chart *Chart
	// Rows are the periods, oldest first, with each variant's average
	// instances and the desired total at the period's end.
	Variants []string
	Rows     []capacityRow
}

type capacityRow struct {
	Label   string
	Actual  []float64
	Desired float64
}

// capacity builds ep's history up to now.
func (h *Handler) capacity(ctx context.Context, ep *hosting.Endpoint, now time.Time) (*capacityHistory, error) {
	end := now.Truncate(capacityBucket).Add(capacityBucket)
	start := end.Add(-capacityWindow)
	n := int(capacityWindow / capacityBucket)
	var variants []string
	index := map[string]int{}
	desiredNow := map[string]int{}
	for _, v := range ep.Variants {
		if v.Shadow {
			continue
		}
		index[v.Name] = len(variants)
		variants = append(variants, v.Name)
		desiredNow[v.Name] = v.DesiredInstanceCount
	}
	actual := make([][]float64, n)
	for i := range actual {
		actual[i] = make([]float64, len(variants))
	}
	rows, err := h.DB.QueryContext(ctx, `SELECT variant, start_ts, end_ts FROM hosting_usage WHERE endpoint = ? AND end_ts > ? AND start_ts < ?`,
		ep.Name, start.UnixMilli(), end.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	bucketMS := capacityBucket.Milliseconds()
	for rows.Next() {
		var variant string
		var from, to int64
		if err := rows.Scan(&variant, &from, &to); err != nil {
			return nil, err
		}
		j, ok := index[variant]
		if !ok {
			continue
		}
		// Spread the segment over the buckets it overlaps.
		for b := max(0, int((from-start.UnixMilli())/bucketMS)); b < n; b++ {
			lo := start.UnixMilli() + int64(b)*bucketMS
			hi := lo + bucketMS
			if lo >= to {
				break
			}
			if overlap := min(hi, to) - max(lo, from); overlap > 0 {
				actual[b][j] += float64(overlap) / float64(bucketMS)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var acts []autoscale.Activity
	if h.Activities != nil {
		if acts, err = h.Activities(ctx, ep.Name); err != nil {
			return nil, err
		}
	}
	out := &capacityHistory{Variants: variants}
	labels := make([]string, n)
	for i := range n {
		at := start.Add(time.Duration(i+1) * capacityBucket)
		labels[i] = start.Add(time.Duration(i) * capacityBucket).UTC().Format("15:04")
		desired := 0
		if !at.Before(ep.CreatedAt) { // nothing was asked for before the endpoint was
			for _, v := range variants {
				desired += desiredAt(acts, v, minTime(at, now), desiredNow[v])
			}
		}
		out.Rows = append(out.Rows, capacityRow{Label: labels[i], Actual: actual[i], Desired: float64(desired)})
	}
	format := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + " instances" }
	maxDesired := 0.0
	for _, r := range out.Rows {
		maxDesired = max(maxDesired, r.Desired)
	}
	c := stackTo("capacity-"+ep.Name, "Instances of "+ep.Name+" over the last 6 hours (UTC): bars, instances run (10-minute averages, by variant); line, instances asked for",
		labels, variants, actual, format, maxDesired)
	desired := make([]float64, n)
	for i, r := range out.Rows {
		desired[i] = r.Desired
	}
	c.overlay("asked for", desired)
	for i := range c.Ticks {
		c.Ticks[i].Text = strings.TrimPrefix(c.Ticks[i].Text, "$")
	}
	out.Chart = c
	return out, nil
}

// desiredAt is a variant's desired count at t: what the last activity
// before t asked for, else what the first after it started from, else
// now's.
func desiredAt(acts []autoscale.Activity, variant string, t time.Time, now int) int {
	// acts are newest first.
	after := -1
	for _, a := range acts {
		if a.Variant != variant {
			continue
		}
		if !a.StartTime.After(t) {
			return a.To
		}
		after = a.From
	}
	if after >= 0 {
		return after
	}
	return now
}
