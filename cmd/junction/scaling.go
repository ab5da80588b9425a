package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/junctionhq/junction/internal/hosting/autoscale"
)

// scalingCmd manages endpoint variants' scaling policies
// (docs/autoscaling.md) through /api/v1/endpoints/{name}/.../scaling.
func scalingCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "scaling", Short: "Manage the autoscaling policies of endpoint variants"}
	c := addClientFlags(cmd)
	path := func(ep, variant string) string {
		return "/api/v1/endpoints/" + url.PathEscape(ep) + "/variants/" + url.PathEscape(variant) + "/scaling"
	}

	var min, max int
	var metric, file string
	var target float64
	var outCooldown, inCooldown time.Duration
	var noScaleIn bool
	set := &cobra.Command{
		Use:   "set ENDPOINT VARIANT --min N --max N [--metric M --target V]",
		Short: "Store a variant's scaling policy (replacing the one it has, scheduled actions included)",
		Long: `Store a variant's scaling policy: a scalable target (--min, --max; min may be 0)
and, with --metric and --target, target tracking on one of InvocationsPerInstance
(per minute), ConcurrentRequestsPerInstance, TokensPerSecondPerInstance or
BacklogPerInstance. --file reads the whole policy as JSON instead, which is how
step_scaling policies and scheduled_actions are given (docs/autoscaling.md).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := autoscale.Policy{MinCapacity: min, MaxCapacity: max}
			if file != "" {
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, &p); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
			} else if metric != "" {
				tt := &autoscale.TargetTracking{Metric: metric, TargetValue: target, DisableScaleIn: noScaleIn}
				if cmd.Flags().Changed("scale-out-cooldown") {
					s := outCooldown.Seconds()
					tt.ScaleOutCooldown = &s
				}
				if cmd.Flags().Changed("scale-in-cooldown") {
					s := inCooldown.Seconds()
					tt.ScaleInCooldown = &s
				}
				p.TargetTracking = tt
			}
			var out autoscale.Policy
			if err := c.do("PUT", path(args[0], args[1]), p, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	set.Flags().IntVar(&min, "min", 1, "min_capacity: fewest instances (0 allowed)")
	set.Flags().IntVar(&max, "max", 1, "max_capacity: most instances")
	set.Flags().StringVar(&metric, "metric", "", "target-tracking metric")
	set.Flags().Float64Var(&target, "target", 0, "target value of the metric per instance")
	set.Flags().DurationVar(&outCooldown, "scale-out-cooldown", 300*time.Second, "wait after a scaling activity before scaling out again")
	set.Flags().DurationVar(&inCooldown, "scale-in-cooldown", 300*time.Second, "wait after a scaling activity before scaling in")
	set.Flags().BoolVar(&noScaleIn, "disable-scale-in", false, "only ever add instances")
	set.Flags().StringVarP(&file, "file", "f", "", "read the policy from a JSON file")

	get := &cobra.Command{
		Use:   "get ENDPOINT [VARIANT]",
		Short: "Show a variant's scaling policy, or every policy of an endpoint",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := "/api/v1/endpoints/" + url.PathEscape(args[0]) + "/scaling"
			if len(args) == 2 {
				p = path(args[0], args[1])
			}
			var out json.RawMessage
			if err := c.do("GET", p, nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	del := &cobra.Command{
		Use:   "delete ENDPOINT VARIANT",
		Short: "Remove a variant's scaling policy (its instance count stays as it is)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.do("DELETE", path(args[0], args[1]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted the scaling policy of %s/%s\n", args[0], args[1])
			return nil
		},
	}
	cmd.AddCommand(set, get, del, scheduleCmd(c, path), unscheduleCmd(c, path), activitiesCmd(c))
	return cmd
}

// editPolicy reads a variant's policy, lets edit change it, and stores it.
func editPolicy(c *client, path string, edit func(p *autoscale.Policy) error) (*autoscale.Policy, error) {
	var p autoscale.Policy
	if err := c.do("GET", path, nil, &p); err != nil {
		return nil, err
	}
	if err := edit(&p); err != nil {
		return nil, err
	}
	var out autoscale.Policy
	return &out, c.do("PUT", path, p, &out)
}

func scheduleCmd(c *client, path func(ep, variant string) string) *cobra.Command {
	var expr, tz, start, end string
	var min, max int
	cmd := &cobra.Command{
		Use:   "schedule ENDPOINT VARIANT NAME --schedule EXPR [--min N] [--max N]",
		Short: "Add or replace a scheduled action of a variant's scaling policy",
		Long: `Add a scheduled action to a variant's scaling policy (it must have one), or replace
the action of that name. At each time the schedule names, min_capacity and max_capacity
become --min and --max (either may be left out). EXPR is at(yyyy-mm-ddThh:mm:ss),
rate(N minutes|hours|days) or cron(minutes hours day-of-month month day-of-week year),
in UTC unless --timezone names another zone; e.g. 'cron(0 8 ? * MON-FRI *)'.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			a := autoscale.ScheduledAction{Name: args[2], Schedule: expr, Timezone: tz}
			if cmd.Flags().Changed("min") {
				a.MinCapacity = &min
			}
			if cmd.Flags().Changed("max") {
				a.MaxCapacity = &max
			}
			for _, f := range []struct {
				v   string
				dst **time.Time
			}{{start, &a.StartTime}, {end, &a.EndTime}} {
				if f.v == "" {
					continue
				}
				t, err := time.Parse(time.RFC3339, f.v)
				if err != nil {
					return fmt.Errorf("--start and --end take RFC 3339 times (2025-06-01T08:00:00Z): %q", f.v)
				}
				*f.dst = &t
			}
			out, err := editPolicy(c, path(args[0], args[1]), func(p *autoscale.Policy) error {
				for i := range p.ScheduledActions {
					if p.ScheduledActions[i].Name == a.Name {
						p.ScheduledActions[i] = a
						return nil
					}
				}
				p.ScheduledActions = append(p.ScheduledActions, a)
				return nil
			})
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	cmd.Flags().StringVar(&expr, "schedule", "", "at(...), rate(...) or cron(...)")
	cmd.Flags().StringVar(&tz, "timezone", "", "IANA time zone of the schedule (default UTC)")
	cmd.Flags().StringVar(&start, "start", "", "run no earlier than this RFC 3339 time (a rate counts from it)")
	cmd.Flags().StringVar(&end, "end", "", "run no later than this RFC 3339 time")
	cmd.Flags().IntVar(&min, "min", 0, "the min_capacity to set")
	cmd.Flags().IntVar(&max, "max", 0, "the max_capacity to set")
	_ = cmd.MarkFlagRequired("schedule")
	return cmd
}

func unscheduleCmd(c *client, path func(ep, variant string) string) *cobra.Command {
	return &cobra.Command{
		Use:   "unschedule ENDPOINT VARIANT NAME",
		Short: "Remove a scheduled action from a variant's scaling policy",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := editPolicy(c, path(args[0], args[1]), func(p *autoscale.Policy) error {
				for i := range p.ScheduledActions {
					if p.ScheduledActions[i].Name == args[2] {
						p.ScheduledActions = append(p.ScheduledActions[:i], p.ScheduledActions[i+1:]...)
						return nil
					}
				}
				return fmt.Errorf("variant %s of endpoint %s has no scheduled action %s", args[1], args[0], args[2])
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed scheduled action %s of %s/%s\n", args[2], args[0], args[1])
			return nil
		},
	}
}

func activitiesCmd(c *client) *cobra.Command {
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "activities ENDPOINT [VARIANT]",
		Short: "Show an endpoint's scaling activities, newest first",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			if len(args) == 2 {
				q.Set("variant", args[1])
			}
			var out struct {
				Activities []autoscale.Activity `json:"activities"`
			}
			if err := c.do("GET", "/api/v1/endpoints/"+url.PathEscape(args[0])+"/scaling/activities?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			writeActivities(cmd.OutOrStdout(), out.Activities)
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many to show (1 to 1000)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// writeActivities prints activities as a table.
func writeActivities(w io.Writer, as []autoscale.Activity) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED\tVARIANT\tCOUNT\tSTATUS\tTOOK\tCAUSE")
	for _, a := range as {
		took := "-"
		if a.EndTime != nil {
			took = a.EndTime.Sub(a.StartTime).Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d -> %d\t%s\t%s\t%s\n", a.StartTime.Local().Format("2006-01-02 15:04:05"), a.Variant, a.From, a.To, a.StatusCode, took, a.Cause)
	}
	tw.Flush()
}
