package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/ledger"
)

func usageCmd() *cobra.Command {
	var since, until, groupBy string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Report usage and cost from the ledger",
		Example: `  junction usage --since 24h --group-by tag:team
  junction usage --since 2026-11-01 --until 2026-12-01 --group-by model --json`,
		Args: cobra.NoArgs,
	}
	c := addClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		q := url.Values{"from": {since}, "group_by": {groupBy}}
		if until != "" {
			q.Set("to", until)
		}
		var out admin.UsageResponse
		if err := c.do("GET", "/api/v1/usage?"+q.Encode(), nil, &out); err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "Usage from %s to %s by %s\n\n", out.From.Format("2006-01-02 15:04"), out.To.Format("2006-01-02 15:04"), out.GroupBy)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "GROUP\tREQUESTS\tERRORS\tINPUT\tOUTPUT\tCACHED\tCOST USD\tUNPRICED\tAVG MS\tP50 MS\tP99 MS\t")
		row := func(r ledger.Row) {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%.1f\t%s\t%s\t\n", r.Group, r.Requests, r.Errors, r.InputTokens,
				r.OutputTokens, r.CachedTokens, strconv.FormatFloat(r.CostUSD, 'f', 6, 64), r.UnpricedRequests, r.AvgLatencyMS,
				percentileCell(r.P50LatencyMS), percentileCell(r.P99LatencyMS))
		}
		for _, r := range out.Rows {
			row(r)
		}
		row(out.Total)
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(out.Hosting) > 0 {
			fmt.Fprintf(w, "\nSelf-hosted endpoints (instance time)\n\n")
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "ENDPOINT\tVARIANT\tINSTANCE TYPE\tINSTANCE HOURS\tCOST USD\t")
			for _, h := range out.Hosting {
				cost := strconv.FormatFloat(h.CostUSD, 'f', 6, 64)
				if h.Unpriced {
					cost += " (part unpriced)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.4f\t%s\t\n", h.Endpoint, h.Variant, h.InstanceType, h.InstanceHours, cost)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if len(out.ReservedCapacity) > 0 {
			fmt.Fprintf(w, "\nReserved capacity (attributed to teams)\n\n")
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "TEAM\tMODEL\tTPM\tDAYS\tCOST USD\t")
			for _, r := range out.ReservedCapacity {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%s\t\n", r.Team, r.Model, r.TPM, r.Days, strconv.FormatFloat(r.CostUSD, 'f', 6, 64))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if len(out.Hosting) > 0 || len(out.ReservedCapacity) > 0 {
			fmt.Fprintf(w, "\nPer-token $%.6f + hosting $%.6f + reserved capacity $%.6f = $%.6f\n",
				out.Total.CostUSD, out.HostingCostUSD, out.ReservedCapacityCostUSD, out.TotalCostUSD)
		}
		if cf := out.Total.RoutedCounterfactualUSD; cf > 0 {
			fmt.Fprintf(w, "\nPrompt routing and the response cache saved $%.6f: %.1f%% of the $%.6f those requests would have cost on the strongest candidates or from the model.\n",
				out.Total.SavedUSD, 100*out.Total.SavedUSD/cf, cf)
		}
		if out.Total.UnpricedRequests > 0 {
			fmt.Fprintf(w, "\n%d requests used models with no known price; their cost is not included. Add a price in the config's models section.\n", out.Total.UnpricedRequests)
		}
		return nil
	}
	cmd.Flags().StringVar(&since, "since", "24h", "start: a duration back from now (24h, 7d), a date or RFC 3339 time")
	cmd.Flags().StringVar(&until, "until", "", "end (default now)")
	cmd.Flags().StringVar(&groupBy, "group-by", "model", "model, provider, key, surface, status, route, deployment or tag:NAME")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// percentileCell shows a latency percentile, or "-" where the report has
// none (no answered requests, or a grouping the latency roll-up lacks).
func percentileCell(ms float64) string {
	if ms == 0 {
		return "-"
	}
	return strconv.FormatFloat(ms, 'f', 1, 64)
}
