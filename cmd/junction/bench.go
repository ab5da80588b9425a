package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/capacity"
)

func benchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure what self-hosted endpoints can serve"}
	c := addClientFlags(cmd)
	cmd.AddCommand(benchEndpointCmd(c))
	return cmd
}

// defaultChatBody is what an openai endpoint is sent without --body: a
// short answer, so that the figure is about serving, not about writing
// long texts.
const defaultChatBody = `{"messages": [{"role": "user", "content": "Write one sentence about the sea."}], "max_tokens": 32}`

func benchEndpointCmd(c *client) *cobra.Command {
	var (
		target, step, timeout      time.Duration
		maxConc                    int
		maxErrorRate, minGain      float64
		body, bodyFile, contentTyp string
		variant                    string
		asJSON                     bool
	)
	cmd := &cobra.Command{
		Use:   "endpoint NAME [--latency-target 500ms]",
		Short: "Find the throughput an endpoint keeps within a latency target, and store it for the advisor",
		Long: `bench endpoint sends the body to a self-hosted endpoint through Junction with rising
concurrency (1, 2, 4, … up to --max-concurrency), each level for --step, and records
each level's throughput and p50/p95/p99 latency. It stops when p95 passes the latency
target, when more than --max-error-rate of the requests fail, or when throughput stops
rising. The best level within the target, divided by the endpoint's ready instances,
is the capacity per instance; it is stored with the endpoint, and
"junction advise --endpoint NAME" sizes a fleet with it.

A byoc endpoint is called as SageMaker's InvokeEndpoint (POST /endpoints/NAME/invocations)
and needs --body; an openai endpoint through /v1/chat/completions with its name as the
model (the body defaults to a short chat request). Requests carry the tag bench=capacity,
so the ledger tells them apart from real traffic.`,
		Example: `  junction bench endpoint intent --body '{"inputs": "my card was charged twice"}'
  junction bench endpoint demo-lm --latency-target 2s --step 10s --max-concurrency 32
  junction bench endpoint intent --variant candidate --body-file request.json --json`,
		Args: cobra.ExactArgs(1),
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		name := args[0]
		if target <= 0 || step <= 0 || maxConc < 1 {
			return fmt.Errorf("--latency-target and --step must be positive and --max-concurrency at least 1")
		}
		key := c.key
		if key == "" {
			key = os.Getenv("JUNCTION_ADMIN_KEY")
		}
		var ep hosting.Endpoint
		if err := c.do("GET", "/api/v1/endpoints/"+url.PathEscape(name), nil, &ep); err != nil {
			return err
		}
		t, err := capacity.TargetOf(&ep, variant)
		if err != nil {
			return err
		}
		serverType, err := benchServerType(c, t.Models)
		if err != nil {
			return err
		}

		b := []byte(body)
		if bodyFile != "" {
			if b, err = os.ReadFile(bodyFile); err != nil {
				return err
			}
		}
		j := &capacity.Junction{URL: c.url, Key: key, Client: capacity.HTTPClient(maxConc, timeout)}
		var invoke capacity.Invoke
		switch serverType {
		case hosting.ServerOpenAI:
			if variant != "" && productionVariants(&ep) > 1 {
				return fmt.Errorf("--variant: the gateway spreads an openai endpoint's traffic over all its variants and cannot be pointed at one")
			}
			if len(b) == 0 {
				b = []byte(defaultChatBody)
			}
			if b, err = chatBody(b, name); err != nil {
				return err
			}
			invoke = j.ChatCompletions()
		default:
			if len(b) == 0 {
				return fmt.Errorf("give --body or --body-file: a request as the endpoint's clients send it")
			}
			invoke = j.Invocations(name, variant, contentTyp)
		}

		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
		defer stop()
		// One request first, so that a wrong body or key is reported as
		// itself rather than as a step full of errors.
		if err := invoke(ctx, b); err != nil {
			return fmt.Errorf("the first request failed: %w", err)
		}

		w := cmd.OutOrStdout()
		if asJSON {
			w = cmd.ErrOrStderr()
		}
		fmt.Fprintf(w, "Measuring %s (%d ready %s, %s server) for p95 < %s: steps of %s, concurrency 1 to %d\n\n",
			benchSubject(t), t.Instances, t.InstanceType, serverType, target, step, maxConc)
		fmt.Fprintf(w, "%11s  %8s  %6s  %9s  %8s  %8s  %8s\n", "CONCURRENCY", "REQUESTS", "ERRORS", "REQ/S", "P50 MS", "P95 MS", "P99 MS")
		d := &capacity.Driver{Invoke: invoke, Body: b, LatencyTarget: target, StepDuration: step, MaxConcurrency: maxConc,
			MaxErrorRate: maxErrorRate, MinGain: minGain, Progress: func(s capacity.Step) { writeStep(w, s) }}
		res, err := d.Run(ctx)
		if err != nil {
			return fmt.Errorf("stopped before the end (%w): nothing stored", err)
		}
		fmt.Fprintf(w, "\nStopped: %s\n", res.Stopped)
		m, err := res.Measurement(t, time.Now())
		if err != nil {
			return err
		}
		// The figure per instance holds only if the fleet stayed as it
		// was counted.
		var after hosting.Endpoint
		if err := c.do("GET", "/api/v1/endpoints/"+url.PathEscape(name), nil, &after); err == nil {
			if t2, err := capacity.TargetOf(&after, variant); err != nil || t2.Instances != t.Instances {
				n := 0
				if t2 != nil {
					n = t2.Instances
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %d ready instances when the run started, %d at its end; the figure per instance assumes %d\n",
					t.Instances, n, t.Instances)
			}
		}

		var stored capacity.Measurement
		if err := c.do("POST", "/api/v1/endpoints/"+url.PathEscape(name)+"/capacity", m, &stored); err != nil {
			return fmt.Errorf("store the measurement: %w", err)
		}
		fmt.Fprintf(w, "Capacity: %s req/s at concurrency %d (p50 %s ms, p95 %s ms, p99 %s ms) on %d ready %s: %s req/s per instance\n",
			capacity.FormatRPS(stored.RPS), stored.Concurrency, msText(stored.P50MS), msText(stored.P95MS), msText(stored.P99MS),
			stored.InstanceCount, stored.InstanceType, capacity.FormatRPS(stored.RPSPerInstance))
		fmt.Fprintf(w, "Stored as measurement %d; junction advise --endpoint %s sizes fleets with it.\n", stored.ID, name)
		if asJSON {
			return printJSON(cmd.OutOrStdout(), stored)
		}
		return nil
	}
	f := cmd.Flags()
	f.DurationVar(&target, "latency-target", 500*time.Millisecond, "the p95 latency a level of load must keep")
	f.DurationVar(&step, "step", capacity.DefaultStepDuration, "how long each level of concurrency runs")
	f.IntVar(&maxConc, "max-concurrency", capacity.DefaultMaxConcurrency, "the highest concurrency tried")
	f.Float64Var(&maxErrorRate, "max-error-rate", 0.01, "the share of failed requests that ends the run (0 allows none)")
	f.Float64Var(&minGain, "min-gain", 0.05, "stop when doubling concurrency raises throughput by less than this share")
	f.DurationVar(&timeout, "timeout", 60*time.Second, "give up on one request after this long")
	f.StringVar(&body, "body", "", "request body")
	f.StringVar(&bodyFile, "body-file", "", "read the request body from a file")
	f.StringVar(&contentTyp, "content-type", "application/json", "Content-Type of a byoc endpoint's body")
	f.StringVar(&variant, "variant", "", "measure this production variant only (needed when the variants run different instance types)")
	f.BoolVar(&asJSON, "json", false, "print the stored measurement as JSON (the table goes to stderr)")
	return cmd
}

// benchServerType returns the server type of the models measured: byoc
// or openai, the same for all.
func benchServerType(c *client, models []string) (string, error) {
	typ := ""
	for _, name := range models {
		var m hosting.Model
		if err := c.do("GET", "/api/v1/models/"+url.PathEscape(name), nil, &m); err != nil {
			return "", fmt.Errorf("model %s: %w", name, err)
		}
		if typ != "" && m.Server.Type != typ {
			return "", fmt.Errorf("the variants serve both %s and %s models: pick one with --variant", typ, m.Server.Type)
		}
		typ = m.Server.Type
	}
	return typ, nil
}

func productionVariants(ep *hosting.Endpoint) int {
	n := 0
	for _, v := range ep.Variants {
		if !v.Shadow && v.Config == ep.Config {
			n++
		}
	}
	return n
}

// chatBody makes sure a chat request names the endpoint as its model.
func chatBody(b []byte, endpoint string) ([]byte, error) {
	var req map[string]json.RawMessage
	if err := json.Unmarshal(b, &req); err != nil {
		return nil, fmt.Errorf("the body of a chat request must be a JSON object: %w", err)
	}
	if raw, ok := req["model"]; ok {
		var model string
		if json.Unmarshal(raw, &model) != nil || model != endpoint {
			return nil, fmt.Errorf("the body's model is %s, not the endpoint %q: leave it out or name the endpoint", raw, endpoint)
		}
		return b, nil
	}
	req["model"], _ = json.Marshal(endpoint)
	return json.Marshal(req)
}

func benchSubject(t *capacity.Target) string {
	if t.Variant != "" {
		return fmt.Sprintf("endpoint %s, variant %s", t.Endpoint, t.Variant)
	}
	return "endpoint " + t.Endpoint
}

func writeStep(w io.Writer, s capacity.Step) {
	fmt.Fprintf(w, "%11d  %8d  %6d  %9s  %8s  %8s  %8s\n", s.Concurrency, s.Requests, s.Errors,
		capacity.FormatRPS(s.RPS), msText(s.P50MS), msText(s.P95MS), msText(s.P99MS))
}

// msText writes milliseconds to a tenth.
func msText(v float64) string { return fmt.Sprintf("%.1f", v) }
