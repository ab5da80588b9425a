package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/junctionhq/junction/internal/jobs/async"
)

// asyncCmd shows the queues of asynchronous endpoints.
func asyncCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "async", Short: "Show the queue of an asynchronous endpoint: its depth and its requests"}
	c := addClientFlags(cmd)
	var asJSON bool
	var state string
	var limit int
	list := &cobra.Command{
		Use:   "list ENDPOINT",
		Short: "List an endpoint's async requests, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Requests []async.Info `json:"requests"`
			}
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			if state != "" {
				q.Set("state", state)
			}
			if err := c.do("GET", "/api/v1/endpoints/"+url.PathEscape(args[0])+"/async/requests?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tINFERENCE ID\tSTATE\tATTEMPTS\tQUEUED\tRESULT")
			for _, r := range out.Requests {
				result := r.Output
				if r.State == async.StateFailed {
					result = r.Failure + "  " + r.Error
				} else if r.State != async.StateSucceeded {
					result = ""
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.InferenceID, r.State, r.Attempts, r.EnqueuedAt.Local().Format("2006-01-02 15:04:05"), result)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&state, "state", "", "only requests in this state: queued, running, succeeded or failed")
	list.Flags().IntVar(&limit, "limit", 100, "at most this many (1 to 1000)")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	describe := &cobra.Command{
		Use:   "describe ENDPOINT",
		Short: "Show an endpoint's queue: depth, oldest age, in flight, failed, notifications",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var s async.Stats
			if err := c.do("GET", "/api/v1/endpoints/"+url.PathEscape(args[0])+"/async", nil, &s); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(s)
			}
			describeQueue(cmd.OutOrStdout(), &s)
			return nil
		},
	}
	describe.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(list, describe)
	return cmd
}

func describeQueue(w io.Writer, s *async.Stats) {
	fmt.Fprintf(w, "Endpoint:       %s\n", s.Endpoint)
	fmt.Fprintf(w, "Queue depth:    %d\n", s.Queued)
	fmt.Fprintf(w, "Oldest queued:  %s\n", (time.Duration(s.OldestQueuedSeconds * float64(time.Second))).Round(time.Second))
	fmt.Fprintf(w, "In flight:      %d\n", s.Running)
	fmt.Fprintf(w, "Succeeded:      %d\n", s.Succeeded)
	fmt.Fprintf(w, "Failed:         %d\n", s.Failed)
	fmt.Fprintf(w, "Notifications:  %d pending, %d given up\n", s.NotificationsPending, s.NotificationsFailed)
}
