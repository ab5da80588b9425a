package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/junctionhq/junction/internal/api/admin"
)

// awsCredentialsCmd manages the AWS access keys of a Junction key, with
// which AWS SDK clients (bedrockruntime) sign their requests to Junction.
func awsCredentialsCmd(c *client) *cobra.Command {
	cmd := &cobra.Command{Use: "aws-credentials", Short: "Issue, list and revoke AWS access keys for a key (for AWS SDK clients)"}
	var asJSON bool
	create := &cobra.Command{
		Use:   "create KEY_ID",
		Short: "Issue an AWS access-key pair for a key; its secret is shown once",
		Long: "Issue an AWS access-key pair for the Junction key KEY_ID. AWS SDK clients that sign with it\n" +
			"(for example a bedrockruntime client with its endpoint set to Junction) are attributed to\n" +
			"the key, and its tags apply. The secret access key is shown only now.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out admin.CreateAWSCredentialResponse
			if err := c.do("POST", "/api/v1/keys/"+url.PathEscape(args[0])+"/aws-credentials", nil, &out); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", out.AccessKeyID, out.SecretAccessKey)
			fmt.Fprintf(cmd.ErrOrStderr(), "\nIssued for key %s. The secret is shown only now.\n", out.KeyID)
			return nil
		},
	}
	create.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	list := &cobra.Command{
		Use:   "list KEY_ID",
		Short: "List a key's AWS access keys (never their secrets)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out admin.AWSCredentialList
			if err := c.do("GET", "/api/v1/keys/"+url.PathEscape(args[0])+"/aws-credentials", nil, &out); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ACCESS KEY ID\tKEY\tCREATED\tSTATUS")
			for _, k := range out.Credentials {
				status := "active"
				if k.RevokedAt != nil {
					status = "revoked " + k.RevokedAt.Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.AccessKeyID, k.KeyID, k.CreatedAt.Format("2006-01-02 15:04"), status)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	revoke := &cobra.Command{
		Use:   "revoke ACCESS_KEY_ID",
		Short: "Revoke an AWS access key; it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.do("DELETE", "/api/v1/aws-credentials/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
