package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/junctionhq/junction/internal/autoscale"
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
		Short: "Store a variant's scaling policy (replacing the one it has)",
		Long: `Store a variant's scaling policy: a scalable target (--min, --max; min may be 0)
and, with --metric and --target, target tracking on one of InvocationsPerInstance
(per minute), ConcurrentRequestsPerInstance, TokensPerSecondPerInstance or
BacklogPerInstance. --file reads the whole policy as JSON instead.`,
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
	cmd.AddCommand(set, get, del)
	return cmd
}
