package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/governance"
	"github.com/junctionhq/junction/internal/governance/audit"
)

// teamsCmd manages teams and their projects.
func teamsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "teams", Short: "Create, list and delete teams and their projects"}
	c := addClientFlags(cmd)
	var description string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a team",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t keys.Team
			if err := c.do("POST", "/api/v1/teams", admin.CreateTeamRequest{Name: args[0], Description: description}, &t); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created team %s\n", t.Name)
			return nil
		},
	}
	create.Flags().StringVar(&description, "description", "", "what the team is")
	list := &cobra.Command{
		Use:   "list",
		Short: "List teams",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Teams []keys.Team `json:"teams"`
			}
			if err := c.do("GET", "/api/v1/teams", nil, &out); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TEAM\tCREATED\tDESCRIPTION")
			for _, t := range out.Teams {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, t.CreatedAt.Format("2006-01-02 15:04"), t.Description)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	del := deleteCmd(c, "/api/v1/teams/", "team", "Delete a team that has no projects and no live keys", "Deleted")
	cmd.AddCommand(create, list, del, projectsCmd(c))
	return cmd
}

func projectsCmd(c *client) *cobra.Command {
	cmd := &cobra.Command{Use: "projects", Short: "Create, list and delete a team's projects"}
	var description string
	create := &cobra.Command{
		Use:   "create TEAM NAME",
		Short: "Create a project in a team",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p keys.Project
			if err := c.do("POST", "/api/v1/teams/"+url.PathEscape(args[0])+"/projects", admin.CreateTeamRequest{Name: args[1], Description: description}, &p); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created project %s of team %s\n", p.Name, p.Team)
			return nil
		},
	}
	create.Flags().StringVar(&description, "description", "", "what the project is")
	list := &cobra.Command{
		Use:   "list TEAM",
		Short: "List a team's projects",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Projects []keys.Project `json:"projects"`
			}
			if err := c.do("GET", "/api/v1/teams/"+url.PathEscape(args[0])+"/projects", nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROJECT\tCREATED\tDESCRIPTION")
			for _, p := range out.Projects {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.CreatedAt.Format("2006-01-02 15:04"), p.Description)
			}
			return tw.Flush()
		},
	}
	del := &cobra.Command{
		Use:   "delete TEAM NAME",
		Short: "Delete a project no live key belongs to",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.do("DELETE", "/api/v1/teams/"+url.PathEscape(args[0])+"/projects/"+url.PathEscape(args[1]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted project %s of team %s\n", args[1], args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

// budgetsCmd manages budgets made through the API and shows every
// budget's current period.
func budgetsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "budgets", Short: "Create, list, change and delete spending budgets"}
	c := addClientFlags(cmd)
	var req admin.BudgetRequest
	var asJSON bool
	flags := func(f *cobra.Command) {
		f.Flags().StringVar(&req.Scope, "scope", "", `what the budget covers: global, key:ID, team:NAME, project:TEAM/NAME, model:NAME, tag:NAME=VALUE, joined by "|"`)
		f.Flags().StringVar(&req.Period, "period", "monthly", "daily or monthly (UTC)")
		f.Flags().Float64Var(&req.LimitUSD, "limit-usd", 0, "most the scope may spend in a period")
		f.Flags().StringVar(&req.Mode, "mode", "hard", "hard (refuse what it cannot cover) or soft (alert only)")
		f.Flags().StringVar(&req.Webhook, "webhook", "", "URL that receives a POST when spend reaches the limit")
		f.MarkFlagRequired("scope")
		f.MarkFlagRequired("limit-usd")
	}
	create := &cobra.Command{
		Use:     "create",
		Short:   "Create a budget",
		Example: `  junction budgets create --scope team:ml --period monthly --limit-usd 500`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v governance.BudgetView
			if err := c.do("POST", "/api/v1/budgets", req, &v); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created budget %s: %s %s %s $%s\n", v.ID, v.Mode, v.Period, v.Scope, strconv.FormatFloat(v.LimitUSD, 'f', -1, 64))
			return nil
		},
	}
	flags(create)
	update := &cobra.Command{
		Use:   "update ID",
		Short: "Replace a budget's definition",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v governance.BudgetView
			if err := c.do("PUT", "/api/v1/budgets/"+url.PathEscape(args[0]), req, &v); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Updated budget %s\n", v.ID)
			return nil
		},
	}
	flags(update)
	list := &cobra.Command{
		Use:   "list",
		Short: "List budgets with what their current period has spent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out admin.BudgetList
			if err := c.do("GET", "/api/v1/budgets", nil, &out); err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSOURCE\tSCOPE\tPERIOD\tMODE\tLIMIT USD\tSPENT USD\tRESERVED USD\tRESETS AT")
			for _, b := range out.Budgets {
				spent, reserved, resets := "(each apart)", "-", "-"
				if st := b.Status; st != nil {
					spent, reserved, resets = st.SpentUSD, st.ReservedUSD, st.ResetsAt.Format("2006-01-02 15:04Z")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.Source, b.Scope, b.Period, b.Mode,
					strconv.FormatFloat(b.LimitUSD, 'f', -1, 64), spent, reserved, resets)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	del := deleteCmd(c, "/api/v1/budgets/", "budget", "Delete a budget made through the API", "Deleted")
	del.Use = "delete ID"
	cmd.AddCommand(create, update, list, del)
	return cmd
}

// auditCmd prints the audit log of admin actions.
func auditCmd() *cobra.Command {
	var since string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "audit",
		Short:   "Show who changed what through the admin API, newest first",
		Example: `  junction audit --since 24h`,
		Args:    cobra.NoArgs,
	}
	c := addClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		q := url.Values{"since": {since}, "limit": {strconv.Itoa(limit)}}
		var out admin.AuditList
		if err := c.do("GET", "/api/v1/audit?"+q.Encode(), nil, &out); err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tKEY\tACTION\tRESOURCE\tSTATUS\tREQUEST")
		for _, e := range out.Entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", e.Time.Format("2006-01-02 15:04:05Z"), e.KeyName, e.Method, e.Resource, e.Status, brief(e))
		}
		return tw.Flush()
	}
	cmd.Flags().StringVar(&since, "since", "24h", "start: a duration back from now (24h, 7d), a date or RFC 3339 time")
	cmd.Flags().IntVar(&limit, "limit", 100, "most entries shown")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON, with the before and after of each change")
	return cmd
}

// brief shortens an entry's request body for a table.
func brief(e audit.Entry) string {
	s := strings.Join(strings.Fields(string(e.Request)), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	if s == "" {
		return "-"
	}
	return s
}
