package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/auth/keys"
)

func keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Create, list and revoke API keys"}
	c := addClientFlags(cmd)

	var name, team, project string
	var tags []string
	var rpm, tpm int64
	var isAdmin, asJSON bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API key; its secret is shown once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tm := map[string]string{}
			for _, t := range tags {
				parsed, err := keys.ParseTags(t)
				if err != nil {
					return fmt.Errorf("--tag: %w", err)
				}
				for k, v := range parsed {
					tm[k] = v
				}
			}
			var out admin.CreateKeyResponse
			if err := c.do("POST", "/api/v1/keys", admin.CreateKeyRequest{Name: name, Tags: tm, Admin: isAdmin,
				Team: team, Project: project, RPM: rpm, TPM: tpm}, &out); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(out)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Created key %s (%s). Its secret is shown only now:\n\n    %s\n\n", out.ID, out.Name, out.Secret)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "key name (required)")
	create.Flags().StringArrayVar(&tags, "tag", nil, "default tag name=value (repeatable)")
	create.Flags().BoolVar(&isAdmin, "admin", false, "make an admin key")
	create.Flags().StringVar(&team, "team", "", "team the key belongs to (its requests are tagged team=TEAM)")
	create.Flags().StringVar(&project, "project", "", "project of the team the key belongs to (tag project=PROJECT)")
	create.Flags().Int64Var(&rpm, "rpm", 0, "the key's own requests per minute (default: the configured limits)")
	create.Flags().Int64Var(&tpm, "tpm", 0, "the key's own tokens per minute (default: the configured limits)")
	create.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	create.MarkFlagRequired("name")

	list := &cobra.Command{
		Use:   "list",
		Short: "List keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Keys []*keys.Key `json:"keys"`
			}
			if err := c.do("GET", "/api/v1/keys", nil, &out); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tTEAM\tTAGS\tLIMITS\tADMIN\tCREATED\tSTATUS")
			for _, k := range out.Keys {
				status := "active"
				if k.RevokedAt != nil {
					status = "revoked " + k.RevokedAt.Format("2006-01-02 15:04")
				}
				team := "-"
				if k.Team != "" {
					team = strings.TrimSuffix(k.Team+"/"+k.Project, "/")
				}
				limits := "-"
				if k.RPM > 0 || k.TPM > 0 {
					limits = fmt.Sprintf("rpm=%d tpm=%d", k.RPM, k.TPM)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s…\t%s\t%s\t%s\t%v\t%s\t%s\n", k.ID, k.Name, k.Prefix, team, formatTags(k.Tags), limits, k.Admin,
					k.CreatedAt.Format("2006-01-02 15:04"), status)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	revoke := &cobra.Command{
		Use:   "revoke KEY_ID",
		Short: "Revoke a key; it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.do("DELETE", "/api/v1/keys/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked %s\n", args[0])
			return nil
		},
	}
	var lim admin.KeyLimitsRequest
	limitsCmd := &cobra.Command{
		Use:   "limits KEY_ID",
		Short: "Set a key's own rate limits (0 returns a dimension to the configured limits)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var k keys.Key
			if err := c.do("PUT", "/api/v1/keys/"+url.PathEscape(args[0])+"/limits", lim, &k); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Key %s: rpm %d, tpm %d\n", k.ID, k.RPM, k.TPM)
			return nil
		},
	}
	limitsCmd.Flags().Int64Var(&lim.RPM, "rpm", 0, "requests per minute")
	limitsCmd.Flags().Int64Var(&lim.TPM, "tpm", 0, "tokens per minute")
	cmd.AddCommand(create, list, revoke, limitsCmd, awsCredentialsCmd(c))
	return cmd
}

func formatTags(t map[string]string) string {
	if len(t) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(t))
	for k, v := range t {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
