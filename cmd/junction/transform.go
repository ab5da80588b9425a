package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	transformapi "github.com/junctionhq/junction/internal/api/transform"
)

// transformCmd makes, describes, lists and stops SageMaker batch
// transform jobs, through /api/v1/transform-jobs. "jobs watch NAME"
// follows one, as any job.
func transformCmd(c *client) *cobra.Command {
	cmd := &cobra.Command{Use: "transform", Short: "SageMaker batch transform jobs: create, describe, list, stop"}
	var file string
	create := &cobra.Command{
		Use:   "create --file JOB.json",
		Short: "Create a transform job from CreateTransformJob's JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("--file is required: CreateTransformJob's JSON (TransformJobName, ModelName, TransformInput, TransformOutput, TransformResources, ...)")
			}
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			var spec json.RawMessage
			if err := json.Unmarshal(b, &spec); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			var out struct{ TransformJobArn string }
			if err := c.do("POST", "/api/v1/transform-jobs", spec, &out); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.TransformJobArn)
			return nil
		},
	}
	create.Flags().StringVarP(&file, "file", "f", "", "CreateTransformJob's JSON")
	var asJSON bool
	describe := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a transform job: status, progress, inputs and outputs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var d transformapi.Description
			if err := c.do("GET", "/api/v1/transform-jobs/"+url.PathEscape(args[0]), nil, &d); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(d)
			}
			describeTransform(cmd.OutOrStdout(), &d)
			return nil
		},
	}
	describe.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var status, contains string
	list := &cobra.Command{
		Use:   "list",
		Short: "List transform jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"MaxResults": {"100"}}
			if status != "" {
				q.Set("StatusEquals", status)
			}
			if contains != "" {
				q.Set("NameContains", contains)
			}
			var out transformapi.ListResponse
			if err := c.do("GET", "/api/v1/transform-jobs?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATUS\tCREATED\tFAILURE")
			for _, s := range out.TransformJobSummaries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.TransformJobName, s.TransformJobStatus, s.CreationTime.Time().Local().Format("2006-01-02 15:04"), s.FailureReason)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&status, "status", "", "only jobs in this status: InProgress, Completed, Failed, Stopping or Stopped")
	list.Flags().StringVar(&contains, "name-contains", "", "only jobs whose name holds this")
	stop := &cobra.Command{
		Use:   "stop NAME",
		Short: "Stop a transform job: requests in flight finish, inputs done keep their .out",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.do("POST", "/api/v1/transform-jobs/"+url.PathEscape(args[0])+"/stop", nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Transform job %s is stopping\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, describe, list, stop)
	return cmd
}

func describeTransform(w io.Writer, d *transformapi.Description) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name\t%s\n", d.TransformJobName)
	fmt.Fprintf(tw, "ARN\t%s\n", d.TransformJobArn)
	fmt.Fprintf(tw, "Status\t%s\n", d.TransformJobStatus)
	if d.FailureReason != "" {
		fmt.Fprintf(tw, "Failure\t%s\n", d.FailureReason)
	}
	fmt.Fprintf(tw, "Model\t%s on %d × %s\n", d.ModelName, d.TransformResources.InstanceCount, d.TransformResources.InstanceType)
	src := d.TransformInput.DataSource.S3DataSource
	fmt.Fprintf(tw, "Input\t%s (%s, split %s, %s)\n", src.S3URI, src.S3DataType, d.TransformInput.SplitType, d.BatchStrategy)
	fmt.Fprintf(tw, "Output\t%s (assemble with %s)\n", d.TransformOutput.S3OutputPath, d.TransformOutput.AssembleWith)
	p := d.Progress
	fmt.Fprintf(tw, "Requests\t%d total, %d done, %d failed, %d pending, %d retries\n", p.Requests, p.Completed, p.Failed, p.Pending, p.Retries)
	if p.RatePerSecond > 0 {
		fmt.Fprintf(tw, "Rate\t%.1f requests/s\n", p.RatePerSecond)
	}
	fmt.Fprintf(tw, "Created\t%s\n", d.CreationTime.Time().Local().Format("2006-01-02 15:04:05"))
	if d.TransformEndTime != nil {
		fmt.Fprintf(tw, "Ended\t%s\n", d.TransformEndTime.Time().Local().Format("2006-01-02 15:04:05"))
	}
	for k, v := range p.Output {
		fmt.Fprintf(tw, "%s\t%s\n", k, v)
	}
	tw.Flush()
}
