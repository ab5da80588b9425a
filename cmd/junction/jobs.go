package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	jobsapi "github.com/junctionhq/junction/internal/api/jobs"
)

// jobsCmd lists, describes, cancels and watches batch jobs of every kind.
func jobsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "jobs", Short: "List, describe, cancel and watch batch jobs (OpenAI batches, Bedrock model invocation jobs, SageMaker transform jobs)"}
	c := addClientFlags(cmd)
	var asJSON bool
	var kind string
	list := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out jobsapi.List
			path := "/api/v1/jobs?limit=100"
			if kind != "" {
				path += "&kind=" + kind
			}
			if err := c.do("GET", path, nil, &out); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tSTATUS\tMODEL\tDONE\tFAILED\tTOTAL\tCREATED")
			for _, j := range out.Jobs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", j.ID, j.Kind, j.Status, j.Model, j.Completed, j.Failed, j.Total,
					j.CreatedAt.Local().Format("2006-01-02 15:04"))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	list.Flags().StringVar(&kind, "kind", "", "only jobs of this kind: openai, bedrock or transform")
	describe := &cobra.Command{
		Use:   "describe ID",
		Short: "Show a job: counts done, failed and pending, rate, ETA, outputs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var j jobsapi.Job
			if err := c.do("GET", "/api/v1/jobs/"+args[0], nil, &j); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(j)
			}
			describeJob(cmd.OutOrStdout(), &j)
			return nil
		},
	}
	describe.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cancel := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a job: records in flight finish, the rest are not run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var j jobsapi.Job
			if err := c.do("POST", "/api/v1/jobs/"+args[0]+"/cancel", nil, &j); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Job %s is %s\n", j.ID, j.Status)
			return nil
		},
	}
	var every time.Duration
	watch := &cobra.Command{
		Use:   "watch ID",
		Short: "Draw a job's progress bar with its rate and ETA until it ends",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			for {
				var j jobsapi.Job
				if err := c.do("GET", "/api/v1/jobs/"+args[0], nil, &j); err != nil {
					return err
				}
				fmt.Fprint(w, "\r"+progressLine(&j, 30))
				if j.Status.Terminal() {
					fmt.Fprintln(w)
					return nil
				}
				time.Sleep(every)
			}
		},
	}
	watch.Flags().DurationVar(&every, "every", time.Second, "time between updates")
	cmd.AddCommand(list, describe, cancel, watch, transformCmd(c))
	return cmd
}

// progressLine draws a job's progress: a bar of width cells, the records
// done of the total, the rate and the ETA.
func progressLine(j *jobsapi.Job, width int) string {
	done := j.Completed + j.Failed
	filled := 0
	if j.Total > 0 {
		filled = int(done * int64(width) / j.Total)
	}
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	pct := 0.0
	if j.Total > 0 {
		pct = float64(done) * 100 / float64(j.Total)
	}
	s := fmt.Sprintf("%s %5.1f%% %d/%d  %s", bar, pct, done, j.Total, j.Status)
	if j.Failed > 0 {
		s += fmt.Sprintf("  %d failed", j.Failed)
	}
	if j.RatePerSecond > 0 {
		s += fmt.Sprintf("  %.1f rec/s", j.RatePerSecond)
	}
	if j.ETASeconds > 0 {
		s += "  ETA " + (time.Duration(j.ETASeconds) * time.Second).Round(time.Second).String()
	}
	return s + "   " // clears what a longer line left
}

func describeJob(w io.Writer, j *jobsapi.Job) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\t%s\n", j.ID)
	fmt.Fprintf(tw, "Kind\t%s\n", j.Kind)
	fmt.Fprintf(tw, "Status\t%s\n", j.Status)
	fmt.Fprintf(tw, "Model\t%s\n", j.Model)
	fmt.Fprintf(tw, "Key\t%s (%s)\n", j.KeyName, j.KeyID)
	fmt.Fprintf(tw, "Records\t%d total, %d done, %d failed, %d pending\n", j.Total, j.Completed, j.Failed, j.Pending)
	fmt.Fprintf(tw, "Retries\t%d\n", j.Retries)
	fmt.Fprintf(tw, "Tokens\t%d in, %d out\n", j.InputTokens, j.OutputTokens)
	if j.RatePerSecond > 0 {
		fmt.Fprintf(tw, "Rate\t%.1f records/s\n", j.RatePerSecond)
	}
	if j.ETASeconds > 0 {
		fmt.Fprintf(tw, "ETA\t%s\n", (time.Duration(j.ETASeconds) * time.Second).Round(time.Second))
	}
	fmt.Fprintf(tw, "Created\t%s\n", j.CreatedAt.Local().Format(time.RFC3339))
	fmt.Fprintf(tw, "Expires\t%s\n", j.ExpiresAt.Local().Format(time.RFC3339))
	for k, v := range j.Output {
		fmt.Fprintf(tw, "%s\t%s\n", k, v)
	}
	for _, e := range j.Errors {
		fmt.Fprintf(tw, "Error\t%s\n", e.Message)
	}
	tw.Flush()
}
