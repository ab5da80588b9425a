package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/junctionhq/junction/internal/hosting/modelserver"
	"github.com/junctionhq/junction/internal/hosting/refmodel"
)

func modelServerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model-server [flags]",
		Short: "Run the reference model server (the demo self-hosted model)",
		Long: `Runs Junction's reference model server: a real, small model (an intent
classifier and a trigram text generator) loaded from an artifact directory,
serving the SageMaker container contract (--mode byoc: GET /ping, POST
/invocations) or the OpenAI chat API (--mode openai). Junction starts it as
the child process of a self-hosted endpoint; it has fault knobs for tests.
Flags are parsed by the server itself: run "junction model-server -h".
"junction model-server build" writes the demo artifact it loads.`,
		Example: `  junction model-server build --out ./model --tar model.tar.gz
  SM_MODEL_DIR=./model junction model-server --port 8080
  junction model-server --mode openai --model-dir ./model --port 8000`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := modelserver.Main(args, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				os.Exit(code)
			}
			return nil
		},
	}
	cmd.AddCommand(modelServerBuildCmd())
	return cmd
}

func modelServerBuildCmd() *cobra.Command {
	var out, tarFile string
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Train the demo model from the built-in corpora and write its artifact",
		Long: `Trains the demo model from the corpora built into Junction and writes the
artifact: --out DIR writes DIR/model.json, the directory to pass as
--model-dir or SM_MODEL_DIR; --tar FILE writes the same artifact as a
.tar.gz with model.json at its root, the shape of a SageMaker ModelDataUrl.
The bytes are the same on every run, so the archive's SHA-256 is stable.`,
		Example: `  junction model-server build --out ./model
  junction model-server build --tar model.tar.gz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" && tarFile == "" {
				return errors.New("nothing to write: pass --out DIR, --tar FILE or both")
			}
			w := cmd.OutOrStdout()
			if out != "" {
				if err := refmodel.WriteDemoArtifact(out); err != nil {
					return err
				}
				fmt.Fprintf(w, "wrote %s/%s\n", out, refmodel.FileName)
			}
			if tarFile != "" {
				if err := refmodel.WriteDemoTarGz(tarFile); err != nil {
					return err
				}
				data, err := os.ReadFile(tarFile)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "wrote %s (sha256 %x)\n", tarFile, sha256.Sum256(data))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write model.json into (created if needed)")
	cmd.Flags().StringVar(&tarFile, "tar", "", "file to write the artifact to as a .tar.gz")
	return cmd
}
