package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/junctionhq/junction/internal/guardrail"
)

func guardrailsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "guardrails", Short: "Work with guardrail policies"}
	cmd.AddCommand(guardrailsTestCmd())
	return cmd
}

func guardrailsTestCmd() *cobra.Command {
	var policyArg, source, version string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Apply a guardrail policy to text read from stdin, offline",
		Long: `Applies a policy to the text on stdin and prints the action, the text to pass on
(masked, or the blocked message) and the findings. --policy is a file (YAML with
the config's snake_case names, or .json with Bedrock's names; a config file's
first guardrail is taken) or the id or name of a guardrail on the server, which
is fetched and then applied here. Content filters that need a classifier model
fail offline.`,
		Example: `  echo "mail me at jane@example.com" | junction guardrails test --policy policy.yaml
  junction guardrails test --policy support --version 2 --source OUTPUT < answer.txt`,
		Args: cobra.NoArgs,
	}
	c := addClientFlags(cmd)
	cmd.Flags().StringVar(&policyArg, "policy", "", "policy file, or the id or name of a stored guardrail (required)")
	cmd.Flags().StringVar(&version, "version", guardrail.Draft, "version of a stored guardrail")
	cmd.Flags().StringVar(&source, "source", "INPUT", "INPUT (a prompt) or OUTPUT (an answer)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON, in ApplyGuardrail's shape")
	cmd.MarkFlagRequired("policy")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		src := guardrail.Source(strings.ToUpper(source))
		if src != guardrail.Input && src != guardrail.Output {
			return fmt.Errorf("--source %q: must be INPUT or OUTPUT", source)
		}
		p, err := loadPolicy(policyArg)
		if errors.Is(err, fs.ErrNotExist) {
			var rec guardrail.Record
			if err := c.do("GET", "/api/v1/guardrails/"+policyArg+"/versions/"+version, nil, &rec); err != nil {
				return fmt.Errorf("--policy %s is neither a file nor a guardrail on the server: %w", policyArg, err)
			}
			p = rec.Policy
		} else if err != nil {
			return err
		}
		g, err := guardrail.Compile(p, guardrail.Options{})
		if err != nil {
			return err
		}
		text, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return err
		}
		res, err := g.Apply(context.Background(), src, string(text))
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if asJSON {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]any{"action": res.Action, "actionReason": res.ActionReason,
				"outputs": []map[string]string{{"text": res.Output}}, "assessments": []guardrail.Assessment{res.Assessment}, "usage": res.Usage})
		}
		fmt.Fprintf(out, "action: %s (%s)\n", res.Action, res.ActionReason)
		fmt.Fprintf(out, "output: %s\n", strings.TrimRight(res.Output, "\n"))
		if len(res.Findings) > 0 {
			fmt.Fprintln(out, "findings:")
		}
		for _, f := range res.Findings {
			what := f.Type
			if f.Name != "" {
				what = f.Name
			}
			if what == "" {
				what = f.Policy
			}
			switch {
			case f.Match != "":
				fmt.Fprintf(out, "  %-12s %-28s %-9s %q at %d-%d\n", f.Policy, what, f.Action, f.Match, f.Start, f.End)
			default:
				fmt.Fprintf(out, "  %-12s %-28s %-9s confidence %s\n", f.Policy, what, f.Action, f.Confidence)
			}
		}
		return nil
	}
	return cmd
}

// loadPolicy reads a policy file: JSON (Bedrock's member names) when it
// ends in .json, otherwise YAML (the config's names), either one policy
// or a config file whose first guardrail is taken.
func loadPolicy(path string) (guardrail.Policy, error) {
	var p guardrail.Policy
	data, err := os.ReadFile(path)
	if err != nil {
		return p, err
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return p, fmt.Errorf("%s: %w", path, err)
		}
		return p, nil
	}
	var file struct {
		Guardrails []guardrail.Config `yaml:"guardrails"`
	}
	if yaml.Unmarshal(data, &file) == nil && len(file.Guardrails) > 0 {
		return file.Guardrails[0].Policy, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}
