package advisor

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText writes r as the tables `junction advise` prints.
func WriteText(w io.Writer, r *Result) error {
	t := r.Traffic
	if p := r.Profile; p != nil {
		fmt.Fprintf(w, "Ledger: %s requests from %s to %s (%.1f days)", thousands(fmt.Sprint(p.Requests)),
			p.Start.Format("2006-01-02 15:04"), p.To.Format("2006-01-02 15:04"), p.Days)
		if sel := selection(p.Model, p.Route, p.Tags); sel != "" {
			fmt.Fprintf(w, " for %s", sel)
		}
		fmt.Fprintf(w, ", $%.6f spent\n", p.CostUSD)
		if p.UnpricedRequests > 0 {
			fmt.Fprintf(w, "  %d requests had no known price; the observed spend leaves them out\n", p.UnpricedRequests)
		}
	}
	fmt.Fprintf(w, "Traffic: %s requests/day (%s in a %d-day month), %s input + %s output tokens on average, peak hour %s× the mean",
		thousands(t.RequestsPerDay.String()), thousands(t.RequestsPerMonth.String()), r.Days, t.AvgInputTokens, t.AvgOutputTokens, t.PeakToAverage)
	if t.LatencyTargetMS > 0 {
		fmt.Fprintf(w, ", latency target %d ms", t.LatencyTargetMS)
	}
	fmt.Fprintln(w)
	if len(t.Facts) > 0 {
		fmt.Fprintf(w, "Facts: %s\n", strings.Join(t.Facts, ", "))
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OPTION\tKIND\tUSD/MONTH\tUSD/1K REQ\tHOW")
	for _, o := range r.Options {
		how := o.Detail
		if o.InstanceHoursPerDay > 0 {
			how += fmt.Sprintf(" (%d instance-hours/day, peak %d)", o.InstanceHoursPerDay, maxOf(o.InstancesByHour))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Name, o.Kind, thousands(o.MonthlyUSD.String()), o.USDPer1KRequests, how)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, o := range r.Options {
		for _, n := range o.Notes {
			fmt.Fprintf(w, "  %s: %s\n", o.Name, n)
		}
		if o.OverCapacity != "" {
			fmt.Fprintf(w, "  %s: over capacity: %s\n", o.Name, o.OverCapacity)
		}
	}

	if len(r.Options) > 1 {
		fmt.Fprintln(w, "\nBreak-even:")
		for i, o := range r.Options {
			for _, be := range o.BreakEven {
				if indexOf(r.Options, be.Against) > i {
					fmt.Fprintf(w, "  %s vs %s: %s\n", o.Name, be.Against, be.Summary)
				}
			}
		}
	}

	rec := r.Recommendation
	fmt.Fprintln(w)
	if rec.Option != "" {
		fmt.Fprintf(w, "Recommendation: %s ($%s a month)\n", rec.Option, thousands(rec.MonthlyUSD.String()))
	} else {
		fmt.Fprintln(w, "Recommendation: none of the options given")
	}
	for _, why := range rec.Reasons {
		fmt.Fprintf(w, "  - %s\n", why)
	}

	fmt.Fprintln(w, "\nSensitivity:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TRAFFIC\tREQUESTS/DAY\tCHEAPEST\tRECOMMENDED")
	for _, s := range r.Sensitivity {
		label := map[string]string{"0.5": "-50%", "1": "as is", "1.5": "+50%"}[s.Factor.String()]
		if label == "" {
			label = "×" + s.Factor.String()
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", label, thousands(s.RequestsPerDay.String()), s.Cheapest, orNone(s.Recommended))
	}
	return tw.Flush()
}

func selection(model, route string, tags map[string]string) string {
	var parts []string
	if model != "" {
		parts = append(parts, "model "+model)
	}
	if route != "" {
		parts = append(parts, "route "+route)
	}
	for k, v := range tags {
		parts = append(parts, "tag "+k+"="+v)
	}
	return strings.Join(parts, ", ")
}

func maxOf(xs []int64) int64 {
	var m int64
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func indexOf(opts []OptionResult, name string) int {
	for i, o := range opts {
		if o.Name == name {
			return i
		}
	}
	return -1
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
