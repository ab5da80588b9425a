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
	"github.com/junctionhq/junction/internal/keys"
)

func keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Create, list and revoke API keys"}
	c := addClientFlags(cmd)

	var name string
	var tags []string
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
			if err := c.do("POST", "/api/v1/keys", admin.CreateKeyRequest{Name: name, Tags: tm, Admin: isAdmin}, &out); err != nil {
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
			fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tTAGS\tADMIN\tCREATED\tSTATUS")
			for _, k := range out.Keys {
				status := "active"
				if k.RevokedAt != nil {
					status = "revoked " + k.RevokedAt.Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s…\t%s\t%v\t%s\t%s\n", k.ID, k.Name, k.Prefix, formatTags(k.Tags), k.Admin,
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
	cmd.AddCommand(create, list, revoke, awsCredentialsCmd(c))
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
