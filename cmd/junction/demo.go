package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	hostingapi "github.com/junctionhq/junction/internal/api/hosting"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/refmodel"
)

// demoCmd deploys the reference model as an endpoint on a running
// Junction: the quick start's one command.
func demoCmd() *cobra.Command {
	var dir, instanceType string
	var count int
	var openai bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Deploy the reference model as a self-hosted endpoint and invoke it",
		Long: `demo builds the reference model's artifact (a small intent classifier and
language model trained from data shipped in Junction), creates a model, an endpoint
config and an endpoint named "demo" on the running Junction, waits until it is
InService and invokes it once. Run it again to reuse what exists.`,
		Args: cobra.NoArgs,
	}
	c := addClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		w := cmd.OutOrStdout()
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		start := time.Now()
		if err := refmodel.WriteDemoArtifact(abs); err != nil {
			return fmt.Errorf("build the demo artifact: %w", err)
		}
		fmt.Fprintf(w, "Built the reference model's artifact in %s\n", abs)
		name, serverType := "demo", hosting.ServerBYOC
		if openai {
			name, serverType = "demo-lm", hosting.ServerOpenAI
		}
		m := hosting.Model{Name: name, Artifact: "file://" + abs, Server: hosting.Server{Type: serverType, Command: "junction", Args: []string{"model-server"}}}
		if err := ignoreExists(c.do("POST", "/api/v1/models", m, nil)); err != nil {
			return err
		}
		cfg := hosting.EndpointConfig{Name: name + "-v1", Variants: []hosting.Variant{{Name: "primary", Model: name, InstanceType: instanceType, InstanceCount: count}}}
		if err := ignoreExists(c.do("POST", "/api/v1/endpoint-configs", cfg, nil)); err != nil {
			return err
		}
		if err := ignoreExists(c.do("POST", "/api/v1/endpoints", hostingapi.CreateEndpointRequest{Name: name, Config: cfg.Name}, nil)); err != nil {
			return err
		}
		fmt.Fprintf(w, "Endpoint %s on %d x %s:\n", name, count, instanceType)
		if err := waitInService(w, c, name, 5*time.Minute); err != nil {
			return err
		}
		if openai {
			fmt.Fprintf(w, "\nReady in %s. It serves chat completions under the model name %q:\n\n", time.Since(start).Round(time.Millisecond), name)
			fmt.Fprintf(w, "  curl %s/v1/chat/completions -H \"Authorization: Bearer $JUNCTION_ADMIN_KEY\" \\\n    -d '{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"the harbour at night\"}]}'\n", strings.TrimRight(c.url, "/"), name)
			return nil
		}
		body := `{"inputs": "I was charged twice for my subscription this month"}`
		data, hdr, err := c.raw(http.MethodPost, "/endpoints/"+name+"/invocations", "application/json", []byte(body))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\nReady in %s. Invoked it (variant %s):\n  %s\n  -> %s\n", time.Since(start).Round(time.Millisecond),
			hdr.Get("X-Amzn-Invoked-Production-Variant"), body, strings.TrimSpace(string(data)))
		fmt.Fprintf(w, "\nInvoke it yourself:\n\n  curl %s/endpoints/%s/invocations -H \"Authorization: Bearer $JUNCTION_ADMIN_KEY\" \\\n    -H 'Content-Type: application/json' -d '{\"inputs\": \"the site is down again\"}'\n",
			strings.TrimRight(c.url, "/"), name)
		fmt.Fprintf(w, "\nor with the AWS SDK's SageMaker runtime client (see docs/hosting.md). Its cost: junction usage\n")
		return nil
	}
	cmd.Flags().StringVar(&dir, "dir", filepath.Join(".junction", "demo-model"), "where to write the model artifact")
	cmd.Flags().StringVar(&instanceType, "instance-type", "ml.g6.xlarge", "instance type (its price goes to the ledger)")
	cmd.Flags().IntVar(&count, "instances", 1, "instance count")
	cmd.Flags().BoolVar(&openai, "openai", false, "deploy the language model as an OpenAI-compatible endpoint (demo-lm) instead")
	return cmd
}

// ignoreExists treats "already exists" as success, so demo can rerun.
func ignoreExists(err error) error {
	if err != nil && strings.Contains(err.Error(), "already exists") {
		return nil
	}
	return err
}
