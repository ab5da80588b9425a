package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/junctionhq/junction/internal/advisor"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/ledger"
)

func adviseCmd() *cobra.Command {
	var (
		scenarioFile, model, route, tags, since, until string
		instance                                       string
		capacityRPS                                    string
		minInstances, maxInstances, days, latencyMS    int
		savingsPlan, asJSON                            bool
		onDemand, batch, endpoints                     []string
	)
	cmd := &cobra.Command{
		Use:   "advise",
		Short: "Compare per-token and per-instance-hour costs and recommend one",
		Long: `advise prices a traffic profile under each way of serving it (on_demand, batch,
provisioned, instances, serverless), finds the break-even volumes and recommends one.

With --scenario alone the scenario file is evaluated here, with the built-in price
catalog; no server is needed. With --model, --route, --tag or --since the traffic
comes from the server's usage ledger, and what was actually spent is compared with
the options of the scenario file and of the option flags.

--endpoint NAME adds a fleet of a self-hosted endpoint's instance type, sized by the
capacity "junction bench endpoint NAME" measured (the latest measurement at the
scenario's latency target or a stricter one); the server looks it up.`,
		Example: `  junction advise --scenario chat.yaml
  junction advise --scenario chat.yaml --json
  junction advise --model gpt-4o-mini --since 30d --instance ml.g5.xlarge --capacity-rps 4
  junction advise --tag team=search --since 14d --scenario options.yaml
  junction advise --scenario chat.yaml --endpoint intent --max-instances 8`,
		Args: cobra.NoArgs,
	}
	c := addClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		s := &advisor.Scenario{}
		if scenarioFile != "" {
			data, err := os.ReadFile(scenarioFile)
			if err != nil {
				return err
			}
			if s, err = advisor.ParseScenario(data); err != nil {
				return fmt.Errorf("%s: %w", scenarioFile, err)
			}
		}
		if days > 0 {
			s.Days = days
		}
		if latencyMS > 0 {
			s.Traffic.LatencyTargetMS = latencyMS
		}
		for _, m := range onDemand {
			s.Options = append(s.Options, advisor.Option{Kind: advisor.OnDemand, Model: m})
		}
		for _, m := range batch {
			s.Options = append(s.Options, advisor.Option{Kind: advisor.Batch, Model: m})
		}
		if instance != "" {
			o := advisor.Option{Kind: advisor.Instances, InstanceType: instance, MaxInstances: maxInstances, SavingsPlan: savingsPlan}
			if capacityRPS == "" {
				return fmt.Errorf("--instance needs --capacity-rps: the requests per second one instance serves within the latency target")
			}
			capRPS, err := advisor.ParseDec(capacityRPS)
			if err != nil {
				return fmt.Errorf("--capacity-rps: %v", err)
			}
			o.CapacityRPSPerInstance = capRPS
			if cmd.Flags().Changed("min-instances") {
				o.MinInstances = &minInstances
			}
			s.Options = append(s.Options, o)
		}

		fromLedger := model != "" || route != "" || tags != "" || cmd.Flags().Changed("since") || until != ""
		var res *advisor.Result
		if fromLedger || len(endpoints) > 0 {
			if fromLedger {
				t, err := keys.ParseTags(tags)
				if err != nil {
					return fmt.Errorf("--tag: %v", err)
				}
				s.FromLedger = &advisor.LedgerSource{Model: model, Route: route, Tags: t, From: since, To: until}
			} else if scenarioFile == "" {
				return fmt.Errorf("--endpoint needs traffic to price: give --scenario FILE, or select ledger traffic with --model, --route, --tag or --since")
			}
			path := "/api/v1/advisor"
			if len(endpoints) > 0 {
				// The server looks up the measured capacity, where the
				// measurements are kept.
				q := url.Values{"endpoint": endpoints}
				if cmd.Flags().Changed("min-instances") {
					q.Set("min_instances", strconv.Itoa(minInstances))
				}
				if maxInstances > 0 {
					q.Set("max_instances", strconv.Itoa(maxInstances))
				}
				if savingsPlan {
					q.Set("savings_plan", "true")
				}
				path += "?" + q.Encode()
			}
			res = &advisor.Result{}
			if err := c.do("POST", path, s, res); err != nil {
				return err
			}
		} else {
			if scenarioFile == "" {
				return fmt.Errorf("give --scenario FILE, or select ledger traffic with --model, --route, --tag or --since")
			}
			var err error
			if res, err = advisor.Evaluate(s, ledger.Builtin()); err != nil {
				return fmt.Errorf("%s: %s", scenarioFile, strings.ReplaceAll(err.Error(), "; ", "\n  "))
			}
		}
		if asJSON {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		}
		return advisor.WriteText(cmd.OutOrStdout(), res)
	}
	f := cmd.Flags()
	f.StringVar(&scenarioFile, "scenario", "", "scenario file (YAML): traffic, facts and options")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.IntVar(&days, "days", 0, "days in the month (default: the scenario's, else 30)")
	f.IntVar(&latencyMS, "latency-ms", 0, "latency target in milliseconds")
	f.StringVar(&model, "model", "", "ledger traffic of this model (the name clients ask for)")
	f.StringVar(&route, "route", "", "ledger traffic of this route")
	f.StringVar(&tags, "tag", "", "ledger traffic with these tags (team=search,app=faq)")
	f.StringVar(&since, "since", "30d", "ledger window start: a duration back from now (30d), a date or RFC 3339 time")
	f.StringVar(&until, "until", "", "ledger window end (default now)")
	f.StringVar(&instance, "instance", "", "add an instances option of this type, sized from the load")
	f.StringVar(&capacityRPS, "capacity-rps", "", "requests per second one instance serves within the latency target")
	f.IntVar(&minInstances, "min-instances", 1, "autoscaling lower bound of --instance and --endpoint (0: scale to zero)")
	f.IntVar(&maxInstances, "max-instances", 0, "autoscaling upper bound of --instance and --endpoint (0: none)")
	f.BoolVar(&savingsPlan, "savings-plan", false, "apply the catalog's savings-plan discount to --instance and --endpoint")
	f.StringArrayVar(&endpoints, "endpoint", nil, "add a fleet of this self-hosted endpoint's instance type, sized by its measured capacity (repeatable; see junction bench endpoint)")
	f.StringArrayVar(&onDemand, "on-demand", nil, "add an on_demand option for this catalog model (repeatable)")
	f.StringArrayVar(&batch, "batch", nil, "add a batch option for this catalog model (repeatable)")
	return cmd
}
