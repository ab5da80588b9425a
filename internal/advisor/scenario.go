package advisor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// Option kinds.
const (
	OnDemand    = "on_demand"   // per-token API at list price
	Batch       = "batch"       // per-token API, batch discount, 24-hour window
	Provisioned = "provisioned" // reserved model units per month
	Instances   = "instances"   // self-hosted fleet billed per instance-hour
	Serverless  = "serverless"  // self-hosted, billed per GB-second of compute
	Observed    = "observed"    // what the ledger says was spent, per request
)

var kinds = []string{OnDemand, Batch, Provisioned, Instances, Serverless, Observed}

// Scenario is one cost question: the traffic, and the ways to serve it.
type Scenario struct {
	// Days is the length of the month costs are given for (default 30).
	Days    int      `json:"days,omitempty" yaml:"days,omitempty"`
	Traffic Traffic  `json:"traffic" yaml:"traffic"`
	Options []Option `json:"options" yaml:"options"`
	// FromLedger, on the server, builds Traffic's volume and shape from
	// the usage ledger and adds the observed spend as an option.
	FromLedger *LedgerSource `json:"from_ledger,omitempty" yaml:"from_ledger,omitempty"`
}

// LedgerSource selects ledger records (see ledger.ProfileQuery). From and
// To take what the usage API takes: RFC 3339, a date, unix seconds or a
// duration back from now ("30d"); the defaults are 30d and now.
type LedgerSource struct {
	Model string            `json:"model,omitempty" yaml:"model,omitempty"`
	Route string            `json:"route,omitempty" yaml:"route,omitempty"`
	Tags  map[string]string `json:"tags,omitempty" yaml:"tags,omitempty"`
	From  string            `json:"from,omitempty" yaml:"from,omitempty"`
	To    string            `json:"to,omitempty" yaml:"to,omitempty"`
}

// Traffic is the load and the facts the recommendation turns on.
type Traffic struct {
	// RequestsPerDay and the token averages are filled from the ledger
	// when the scenario has FromLedger.
	RequestsPerDay  Dec `json:"requests_per_day,omitzero" yaml:"requests_per_day,omitempty"`
	AvgInputTokens  Dec `json:"avg_input_tokens,omitzero" yaml:"avg_input_tokens,omitempty"`
	AvgOutputTokens Dec `json:"avg_output_tokens,omitzero" yaml:"avg_output_tokens,omitempty"`
	// PeakHours is how many hours a day run at the peak rate, which is
	// PeakToAverage × the day's mean rate (default 1: flat). Instance
	// fleets derived from the load follow this shape.
	PeakHours     Dec `json:"peak_hours,omitzero" yaml:"peak_hours,omitempty"`
	PeakToAverage Dec `json:"peak_to_average,omitzero" yaml:"peak_to_average,omitempty"`
	// HourlyShare, when given (24 numbers, hour 0–23), is the share of a
	// day's requests in each hour and replaces PeakHours; a ledger
	// profile fills it. The shares are normalised to sum to 1.
	HourlyShare []Dec `json:"hourly_share,omitempty" yaml:"hourly_share,omitempty"`
	// LatencyTargetMS is the latency the service must keep (0: none).
	// At or below StrictLatencyMS it is strict.
	LatencyTargetMS int `json:"latency_target_ms,omitempty" yaml:"latency_target_ms,omitempty"`

	CustomModel      bool `json:"custom_model,omitempty" yaml:"custom_model,omitempty"`
	NetworkIsolation bool `json:"network_isolation,omitempty" yaml:"network_isolation,omitempty"`
	EdgeDeployment   bool `json:"edge_deployment,omitempty" yaml:"edge_deployment,omitempty"`
	SpikyTraffic     bool `json:"spiky_traffic,omitempty" yaml:"spiky_traffic,omitempty"`
	GuardrailsNeeded bool `json:"guardrails_needed,omitempty" yaml:"guardrails_needed,omitempty"`
	ManyModels       bool `json:"many_models,omitempty" yaml:"many_models,omitempty"`
}

// Option is one way to serve the traffic. Which fields apply depends on
// Kind; prices not given come from the catalog.
type Option struct {
	// Name labels the option in output (default: the kind, numbered
	// when repeated).
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	Kind string `json:"kind" yaml:"kind"`

	// Per-token prices (on_demand, batch): Model names a catalog model;
	// InputPer1K and OutputPer1K (USD per 1,000 tokens) override it.
	Model       string `json:"model,omitempty" yaml:"model,omitempty"`
	InputPer1K  Dec    `json:"input_per_1k,omitzero" yaml:"input_per_1k,omitempty"`
	OutputPer1K Dec    `json:"output_per_1k,omitzero" yaml:"output_per_1k,omitempty"`
	// Discount is batch's fractional discount (default 0.5; 0 allowed).
	Discount Dec `json:"discount,omitzero" yaml:"discount,omitempty"`

	// Provisioned: a fixed ModelUnits, or enough units for the peak
	// minute's tokens when TokensPerMinutePerUnit is given.
	ModelUnits             int `json:"model_units,omitempty" yaml:"model_units,omitempty"`
	TokensPerMinutePerUnit Dec `json:"tokens_per_minute_per_unit,omitzero" yaml:"tokens_per_minute_per_unit,omitempty"`
	USDPerModelUnitMonth   Dec `json:"usd_per_model_unit_month,omitzero" yaml:"usd_per_model_unit_month,omitempty"`

	// Instances: a fixed Schedule, or a fleet derived from the load and
	// a measured CapacityRPSPerInstance (requests per second one
	// instance serves within the latency target), bounded by
	// MinInstances (default 1) and MaxInstances (0: unbounded).
	InstanceType           string  `json:"instance_type,omitempty" yaml:"instance_type,omitempty"`
	USDPerHour             Dec     `json:"usd_per_hour,omitzero" yaml:"usd_per_hour,omitempty"`
	Schedule               []Block `json:"schedule,omitempty" yaml:"schedule,omitempty"`
	CapacityRPSPerInstance Dec     `json:"capacity_rps_per_instance,omitzero" yaml:"capacity_rps_per_instance,omitempty"`
	MinInstances           *int    `json:"min_instances,omitempty" yaml:"min_instances,omitempty"`
	MaxInstances           int     `json:"max_instances,omitempty" yaml:"max_instances,omitempty"`
	// SavingsPlan applies the catalog's savings-plan discount;
	// SavingsPlanDiscount sets another rate (and implies SavingsPlan).
	SavingsPlan         bool `json:"savings_plan,omitempty" yaml:"savings_plan,omitempty"`
	SavingsPlanDiscount Dec  `json:"savings_plan_discount,omitzero" yaml:"savings_plan_discount,omitempty"`

	// Serverless: compute time per request × memory × price per
	// GB-second (the catalog has no serverless price: give it).
	ComputeMSPerRequest Dec `json:"compute_ms_per_request,omitzero" yaml:"compute_ms_per_request,omitempty"`
	MemoryGB            Dec `json:"memory_gb,omitzero" yaml:"memory_gb,omitempty"`
	USDPerGBSecond      Dec `json:"usd_per_gb_second,omitzero" yaml:"usd_per_gb_second,omitempty"`

	// Observed: what a request actually cost, from the ledger.
	USDPerRequest Dec `json:"usd_per_request,omitzero" yaml:"usd_per_request,omitempty"`
}

// Block is part of a fleet schedule: Instances more instances for
// HoursPerDay hours a day. Blocks add up, so "4 always on plus 4 more for
// 8 peak hours" is [{4, 24}, {4, 8}].
type Block struct {
	Instances   int `json:"instances" yaml:"instances"`
	HoursPerDay Dec `json:"hours_per_day" yaml:"hours_per_day"`
}

// ParseScenario reads a scenario from YAML (or JSON, which is YAML).
// Unknown fields are errors, so that a misspelt price is not silently
// ignored.
func ParseScenario(data []byte) (*Scenario, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("scenario is empty")
		}
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return &s, nil
}

// ParseScenarioJSON reads a scenario from JSON, rejecting unknown fields.
func ParseScenarioJSON(data []byte) (*Scenario, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return &s, nil
}

// Problem is one thing wrong with a scenario, at its field path.
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ScenarioError lists every problem found in a scenario.
type ScenarioError struct{ Problems []Problem }

func (e *ScenarioError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Message
	}
	return strings.Join(parts, "; ")
}

// Field returns the path of the first problem.
func (e *ScenarioError) Field() string {
	if len(e.Problems) == 0 {
		return ""
	}
	return e.Problems[0].Field
}

type problems []Problem

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &ScenarioError{Problems: ps}
}
