// Command junction is Junction's single binary: the server and the CLI
// that manages it.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	root := &cobra.Command{
		Use:           "junction",
		Short:         "Junction: one gateway and ledger for managed model APIs and self-hosted models",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), keysCmd(), usageCmd(), adviseCmd(), guardrailsCmd(), versionCmd(),
		modelsCmd(), endpointConfigsCmd(), endpointsCmd(), demoCmd(), modelServerCmd(), benchCmd(),
		teamsCmd(), budgetsCmd(), auditCmd(), scalingCmd(), jobsCmd(), asyncCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "junction:", err)
		os.Exit(1)
	}
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), version) },
	}
}
