package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	hostingapi "github.com/junctionhq/junction/internal/api/hosting"
	"github.com/junctionhq/junction/internal/hosting"
)

// raw sends a request with the admin key and returns the answer's body.
func (c *client) raw(method, path, contentType string, body []byte) ([]byte, http.Header, error) {
	key := c.key
	if key == "" {
		key = os.Getenv("JUNCTION_ADMIN_KEY")
	}
	if key == "" {
		return nil, nil, fmt.Errorf("no admin key: pass --key or set JUNCTION_ADMIN_KEY")
	}
	req, err := http.NewRequest(method, strings.TrimRight(c.url, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach Junction at %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		var e struct {
			Message string `json:"message"`
			Error   struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		json.Unmarshal(data, &e)
		msg := e.Error.Message
		if msg == "" {
			msg = e.Message
		}
		if msg == "" {
			msg = strings.TrimSpace(string(data))
		}
		if t := resp.Header.Get("X-Amzn-ErrorType"); t != "" {
			msg = strings.SplitN(t, ":", 2)[0] + ": " + msg
		}
		return nil, resp.Header, fmt.Errorf("%s (HTTP %d)", msg, resp.StatusCode)
	}
	return data, resp.Header, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func modelsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "models", Short: "Manage self-hosted models (an artifact and the server that serves it)"}
	c := addClientFlags(cmd)
	create, update := modelWriteCmd(c, "create"), modelWriteCmd(c, "update")
	cmd.AddCommand(create, update, listCmd(c, "/api/v1/models", "models", func(w io.Writer, raw json.RawMessage) {
		var list []hosting.Model
		json.Unmarshal(raw, &list)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSERVER\tCOMMAND\tARTIFACT")
		for _, m := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Name, m.Server.Type, strings.TrimSpace(m.Server.Command+" "+strings.Join(m.Server.Args, " ")), m.Artifact)
		}
		tw.Flush()
	}), describeCmd(c, "/api/v1/models/"), deleteCmd(c, "/api/v1/models/", "model", "Delete a model no endpoint serves", "Deleted"))
	return cmd
}

// modelWriteCmd is "models create" or "models update" (which replaces
// the whole model, and only while no endpoint serves it).
func modelWriteCmd(c *client, verb string) *cobra.Command {
	var m hosting.Model
	var env []string
	cmd := &cobra.Command{
		Use:   verb + " NAME --artifact PATH --command CMD [--arg A]...",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a model",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m.Name = args[0]
			if !strings.Contains(m.Artifact, "://") && m.Artifact != "" {
				abs, err := filepath.Abs(m.Artifact)
				if err != nil {
					return err
				}
				m.Artifact = "file://" + abs
			}
			m.Server.Env = map[string]string{}
			for _, kv := range env {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--env %q: use NAME=VALUE", kv)
				}
				m.Server.Env[k] = v
			}
			method, path, done := "POST", "/api/v1/models", "Created"
			if verb == "update" {
				method, path, done = "PUT", "/api/v1/models/"+url.PathEscape(m.Name), "Updated"
			}
			var out hosting.Model
			if err := c.do(method, path, m, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s model %s (%s server, artifact %s)\n", done, out.Name, out.Server.Type, out.Artifact)
			return nil
		},
	}
	cmd.Flags().StringVar(&m.Artifact, "artifact", "", "model artifact: a directory or .tar.gz (path or file:// URI)")
	cmd.Flags().StringVar(&m.Server.Type, "server-type", "byoc", "byoc (GET /ping, POST /invocations) or openai (an OpenAI-compatible server)")
	cmd.Flags().StringVar(&m.Server.Command, "command", "junction", `the model server's executable ("junction" runs the reference server)`)
	cmd.Flags().StringArrayVar(&m.Server.Args, "arg", nil, "an argument to the command (repeatable)")
	cmd.Flags().StringArrayVar(&env, "env", nil, "NAME=VALUE for the server's environment (repeatable)")
	cmd.Flags().StringVar(&m.Server.ServedModel, "served-model", "", "model id an openai server answers to (default: what it lists)")
	cmd.Flags().IntVar(&m.Server.StartupTimeoutSeconds, "startup-timeout", 0, "seconds the server may take to become ready (default 240)")
	cmd.MarkFlagRequired("artifact")
	return cmd
}

// configWriteCmd is "endpoint-configs create" or "update" (which replaces
// the whole config, and only while no endpoint uses it).
func configWriteCmd(c *client, verb string) *cobra.Command {
	var variants, shadows []string
	var routing, file string
	cmd := &cobra.Command{
		Use:   verb + " NAME --variant name=V,model=M,instance-type=T[,count=N][,weight=W]...",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " an endpoint config",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := hosting.EndpointConfig{Name: args[0], Routing: routing}
			if file != "" {
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, &cfg); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
				cfg.Name = args[0]
			}
			for _, s := range variants {
				v, err := parseVariant(s)
				if err != nil {
					return fmt.Errorf("--variant %w", err)
				}
				cfg.Variants = append(cfg.Variants, v)
			}
			for _, s := range shadows {
				v, err := parseVariant(s)
				if err != nil {
					return fmt.Errorf("--shadow %w", err)
				}
				cfg.Shadow = append(cfg.Shadow, v)
			}
			method, path, done := "POST", "/api/v1/endpoint-configs", "Created"
			if verb == "update" {
				method, path, done = "PUT", "/api/v1/endpoint-configs/"+url.PathEscape(cfg.Name), "Updated"
			}
			var out hosting.EndpointConfig
			if err := c.do(method, path, cfg, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s endpoint config %s with %d variant(s)\n", done, out.Name, len(out.Variants))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&variants, "variant", nil, "a production variant: name=V,model=M,instance-type=T,count=N,weight=W (repeatable)")
	cmd.Flags().StringArrayVar(&shadows, "shadow", nil, "a shadow variant, same form (gets a copy of live traffic)")
	cmd.Flags().StringVar(&routing, "routing", "", "least_outstanding (default) or random")
	cmd.Flags().StringVar(&file, "file", "", "read the config from a JSON file")
	return cmd
}

// listCmd lists a collection as a table or JSON.
func listCmd(c *client, path, field string, table func(io.Writer, json.RawMessage)) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out map[string]json.RawMessage
			if err := c.do("GET", path, nil, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out[field])
			}
			table(cmd.OutOrStdout(), out[field])
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func describeCmd(c *client, path string) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Describe one (JSON)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out json.RawMessage
			if err := c.do("GET", path+url.PathEscape(args[0]), nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
}

// deleteCmd deletes the resource at path + NAME; done says what the
// server did ("Deleted", or "Deleting" for what it removes in the
// background).
func deleteCmd(c *client, path, what, short, done string) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.do("DELETE", path+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s\n", done, what, args[0])
			return nil
		},
	}
}

// parseVariant reads "name=primary,model=m,instance-type=ml.g6.xlarge,count=2,weight=1".
func parseVariant(s string) (hosting.Variant, error) {
	var v hosting.Variant
	for _, part := range strings.Split(s, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return v, fmt.Errorf("%q: use key=value pairs separated by commas", part)
		}
		var err error
		switch k {
		case "name":
			v.Name = val
		case "model":
			v.Model = val
		case "instance-type", "instance_type", "type":
			v.InstanceType = val
		case "count", "instance-count", "instance_count":
			v.InstanceCount, err = strconv.Atoi(val)
		case "weight":
			v.Weight, err = strconv.ParseFloat(val, 64)
		default:
			return v, fmt.Errorf("%q: unknown key (use name, model, instance-type, count, weight)", k)
		}
		if err != nil {
			return v, fmt.Errorf("%s: %w", k, err)
		}
	}
	return v, nil
}

func endpointConfigsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "endpoint-configs", Short: "Manage endpoint configs (variants, instance types and counts)"}
	c := addClientFlags(cmd)
	create, update := configWriteCmd(c, "create"), configWriteCmd(c, "update")
	cmd.AddCommand(create, update, listCmd(c, "/api/v1/endpoint-configs", "endpoint_configs", func(w io.Writer, raw json.RawMessage) {
		var list []hosting.EndpointConfig
		json.Unmarshal(raw, &list)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tVARIANTS\tROUTING")
		for _, c := range list {
			var vs []string
			for _, v := range c.Variants {
				vs = append(vs, fmt.Sprintf("%s(%s %dx%s w=%g)", v.Name, v.Model, v.InstanceCount, v.InstanceType, v.Weight))
			}
			for _, v := range c.Shadow {
				vs = append(vs, fmt.Sprintf("shadow %s(%s %dx%s)", v.Name, v.Model, v.InstanceCount, v.InstanceType))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, strings.Join(vs, " "), c.Routing)
		}
		tw.Flush()
	}), describeCmd(c, "/api/v1/endpoint-configs/"), deleteCmd(c, "/api/v1/endpoint-configs/", "endpoint config", "Delete an endpoint config no endpoint uses", "Deleted"))
	return cmd
}

func endpointsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "endpoints", Short: "Manage self-hosted endpoints and invoke them"}
	c := addClientFlags(cmd)

	var config string
	var wait time.Duration
	create := &cobra.Command{
		Use:   "create NAME --config CONFIG",
		Short: "Create an endpoint; with --wait, wait until it is InService",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ep hosting.Endpoint
			if err := c.do("POST", "/api/v1/endpoints", hostingapi.CreateEndpointRequest{Name: args[0], Config: config}, &ep); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Endpoint %s is %s\n", ep.Name, ep.Status)
			if wait > 0 {
				return waitInService(cmd.OutOrStdout(), c, args[0], wait)
			}
			return nil
		},
	}
	create.Flags().StringVar(&config, "config", "", "endpoint config to run (required)")
	create.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for InService (e.g. 5m)")
	create.MarkFlagRequired("config")

	var dep hosting.Deployment
	var uwait time.Duration
	update := &cobra.Command{
		Use:   "update NAME --config CONFIG [--policy all_at_once|canary|linear]",
		Short: "Move an endpoint to another config, shifting traffic safely",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ep hosting.Endpoint
			if err := c.do("PUT", "/api/v1/endpoints/"+url.PathEscape(args[0]), hostingapi.UpdateEndpointRequest{Config: config, Deployment: dep}, &ep); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Endpoint %s is %s (to config %s)\n", ep.Name, ep.Status, config)
			if uwait > 0 {
				return waitInService(cmd.OutOrStdout(), c, args[0], uwait)
			}
			return nil
		},
	}
	update.Flags().StringVar(&config, "config", "", "endpoint config to move to (required)")
	update.Flags().StringVar(&dep.Type, "policy", "all_at_once", "all_at_once, canary or linear")
	update.Flags().Float64Var(&dep.CanaryPercent, "canary-percent", 0, "canary: share of traffic for the bake (default 10)")
	update.Flags().Float64Var(&dep.LinearStepPercent, "linear-step-percent", 0, "linear: share added at each step (default 25)")
	update.Flags().Float64Var(&dep.WaitSeconds, "wait-seconds", 0, "bake time of each step, in seconds")
	update.Flags().Float64Var(&dep.TerminationWaitSeconds, "termination-wait-seconds", 0, "keep the old fleet this long after the shift")
	update.Flags().Float64Var(&dep.Alarms.MaxErrorRate, "max-error-rate", 0, "roll back when the new fleet's error rate passes this (0-1)")
	update.Flags().Float64Var(&dep.Alarms.MaxP99MS, "max-p99-ms", 0, "roll back when the new fleet's p99 latency passes this")
	update.Flags().IntVar(&dep.Alarms.MinInvocations, "min-invocations", 0, "invocations before alarms judge (default 10)")
	update.Flags().DurationVar(&uwait, "wait", 0, "wait up to this long for the update to finish")
	update.MarkFlagRequired("config")

	var scaleVariant string
	var scaleCount int
	var scaleWeight float64
	var scaleWait time.Duration
	scale := &cobra.Command{
		Use:   "scale NAME --variant V [--instances N] [--weight W]",
		Short: "Change a running variant's instance count or weight, without a new config",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vc := hosting.VariantCapacity{Variant: scaleVariant}
			if cmd.Flags().Changed("instances") {
				vc.InstanceCount = &scaleCount
			}
			if cmd.Flags().Changed("weight") {
				vc.Weight = &scaleWeight
			}
			var ep hosting.Endpoint
			if err := c.do("PUT", "/api/v1/endpoints/"+url.PathEscape(args[0])+"/variants", hostingapi.UpdateCapacitiesRequest{Variants: []hosting.VariantCapacity{vc}}, &ep); err != nil {
				return err
			}
			if scaleWait > 0 {
				if err := waitInService(cmd.OutOrStdout(), c, args[0], scaleWait); err != nil {
					return err
				}
				if err := c.do("GET", "/api/v1/endpoints/"+url.PathEscape(args[0]), nil, &ep); err != nil {
					return err
				}
			}
			for _, v := range ep.Variants {
				if v.Name == scaleVariant && v.Config == ep.Config {
					fmt.Fprintf(cmd.OutOrStdout(), "Variant %s of %s: %d/%d instances ready, weight %g (%.0f%% of traffic)\n",
						v.Name, ep.Name, v.CurrentInstanceCount, v.DesiredInstanceCount, v.Weight, v.TrafficShare*100)
				}
			}
			return nil
		},
	}
	scale.Flags().StringVar(&scaleVariant, "variant", "", "variant to change (required)")
	scale.Flags().IntVar(&scaleCount, "instances", 0, "instance count (0-64; 0 scales to zero, calls are held while one starts)")
	scale.Flags().Float64Var(&scaleWeight, "weight", 0, "traffic weight")
	scale.Flags().DurationVar(&scaleWait, "wait", 0, "wait up to this long for the change to be applied (e.g. 5m)")
	scale.MarkFlagRequired("variant")

	var instance string
	var tail int
	logs := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print the model servers' logs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"bytes": {strconv.Itoa(tail)}}
			if instance != "" {
				q.Set("instance", instance)
			}
			data, _, err := c.raw("GET", "/api/v1/endpoints/"+url.PathEscape(args[0])+"/logs?"+q.Encode(), "", nil)
			if err != nil {
				return err
			}
			cmd.OutOrStdout().Write(data)
			return nil
		},
	}
	logs.Flags().StringVar(&instance, "instance", "", "only instances whose id contains this")
	logs.Flags().IntVar(&tail, "bytes", 16384, "bytes from the end of each log")

	events := &cobra.Command{
		Use:   "events NAME",
		Short: "Print an endpoint's history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Events []hosting.Event `json:"events"`
			}
			if err := c.do("GET", "/api/v1/endpoints/"+url.PathEscape(args[0])+"/events", nil, &out); err != nil {
				return err
			}
			for _, e := range out.Events {
				fmt.Fprintf(cmd.OutOrStdout(), "%s  %s\n", e.Time.Local().Format("2006-01-02 15:04:05.000"), e.Message)
			}
			return nil
		},
	}

	var body, bodyFile, contentType, accept, variant, attrs string
	invoke := &cobra.Command{
		Use:   "invoke NAME --body JSON",
		Short: "Invoke an endpoint as SageMaker's InvokeEndpoint does",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b := []byte(body)
			if bodyFile != "" {
				var err error
				if b, err = os.ReadFile(bodyFile); err != nil {
					return err
				}
			}
			req, err := http.NewRequest("POST", strings.TrimRight(c.url, "/")+"/endpoints/"+url.PathEscape(args[0])+"/invocations", bytes.NewReader(b))
			if err != nil {
				return err
			}
			key := c.key
			if key == "" {
				key = os.Getenv("JUNCTION_ADMIN_KEY")
			}
			h := http.Header{"Content-Type": {contentType}, "Accept": {accept}, "Authorization": {"Bearer " + key}}
			if variant != "" {
				h.Set("X-Amzn-SageMaker-Target-Variant", variant)
			}
			if attrs != "" {
				h.Set("X-Amzn-SageMaker-Custom-Attributes", attrs)
			}
			req.Header = h
			resp, err := c.http.Do(req)
			if err != nil {
				return fmt.Errorf("cannot reach Junction at %s: %w", c.url, err)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			if resp.StatusCode >= 400 {
				return fmt.Errorf("%s: %s (HTTP %d)", resp.Header.Get("X-Amzn-ErrorType"), strings.TrimSpace(string(data)), resp.StatusCode)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "variant %s\n", resp.Header.Get("X-Amzn-Invoked-Production-Variant"))
			cmd.OutOrStdout().Write(data)
			if len(data) > 0 && data[len(data)-1] != '\n' {
				fmt.Fprintln(cmd.OutOrStdout())
			}
			return nil
		},
	}
	invoke.Flags().StringVar(&body, "body", "", "request body")
	invoke.Flags().StringVar(&bodyFile, "body-file", "", "read the body from a file")
	invoke.Flags().StringVar(&contentType, "content-type", "application/json", "Content-Type")
	invoke.Flags().StringVar(&accept, "accept", "application/json", "Accept")
	invoke.Flags().StringVar(&variant, "variant", "", "target variant")
	invoke.Flags().StringVar(&attrs, "custom-attributes", "", "X-Amzn-SageMaker-Custom-Attributes")

	cmd.AddCommand(create, update, scale, listCmd(c, "/api/v1/endpoints", "endpoints", func(w io.Writer, raw json.RawMessage) {
		var list []hosting.Endpoint
		json.Unmarshal(raw, &list)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATUS\tCONFIG\tVARIANTS\tREASON")
		for _, e := range list {
			var vs []string
			for _, v := range e.Variants {
				vs = append(vs, fmt.Sprintf("%s %d/%d ready %.0f%%", v.Name, v.CurrentInstanceCount, v.DesiredInstanceCount, v.TrafficShare*100))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Name, e.Status, e.Config, strings.Join(vs, "; "), e.FailureReason)
		}
		tw.Flush()
	}), describeCmd(c, "/api/v1/endpoints/"), deleteCmd(c, "/api/v1/endpoints/", "endpoint", "Delete an endpoint and stop its instances", "Deleting"), logs, events, invoke)
	return cmd
}

// waitInService polls an endpoint until it is InService (or Failed),
// printing each status change.
func waitInService(w io.Writer, c *client, name string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	start := time.Now()
	last := ""
	for {
		var ep hosting.Endpoint
		if err := c.do("GET", "/api/v1/endpoints/"+url.PathEscape(name), nil, &ep); err != nil {
			return err
		}
		ready, want := 0, 0
		for _, v := range ep.Variants {
			ready += v.CurrentInstanceCount
			want += v.DesiredInstanceCount
		}
		line := fmt.Sprintf("%s (%d/%d instances ready)", ep.Status, ready, want)
		if line != last {
			fmt.Fprintf(w, "  %6.1fs  %s\n", time.Since(start).Seconds(), line)
			last = line
		}
		switch {
		case ep.Status == hosting.StatusFailed:
			return fmt.Errorf("endpoint %s failed: %s", name, ep.FailureReason)
		case ep.Status == hosting.StatusInService && ep.PendingConfig == "":
			if ep.FailureReason != "" {
				return fmt.Errorf("endpoint %s: %s", name, ep.FailureReason)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("endpoint %s is still %s after %s", name, ep.Status, limit)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
