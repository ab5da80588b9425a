// Package hosting runs a team's own models the way SageMaker's real-time
// endpoints do, on the team's own machines: models (an artifact and the
// model server that serves it), endpoint configs (production and shadow
// variants with instance types and counts), and endpoints, whose instances
// are model-server processes started by a runtime. The Controller keeps
// each endpoint's fleet at its desired shape, routes invocations across
// variants and instances, shifts traffic to a new fleet on update and rolls
// back when alarms trip, and meters instance time for the ledger.
//
// It is not the wire format: the SageMaker-runtime surface (api/sagemaker)
// and the REST resources (api/hosting) translate to and from these types.
package hosting

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/hostrt"
)

// Server types: how Junction talks to a model server.
const (
	// ServerBYOC is SageMaker's container contract: GET /ping and POST
	// /invocations on $SAGEMAKER_BIND_TO_PORT.
	ServerBYOC = "byoc"
	// ServerOpenAI is any OpenAI-compatible server (vLLM, llama.cpp,
	// Ollama): ready when GET /v1/models answers, and routable by the
	// gateway as a model.
	ServerOpenAI = "openai"
)

// Model is an artifact and the server that serves it.
type Model struct {
	Name string `json:"name"`
	// Artifact is a directory or a .tar.gz: file:///path or an absolute
	// path.
	Artifact string `json:"artifact"`
	Server   Server `json:"server"`
	// CreatedAt is set by the store.
	CreatedAt time.Time `json:"created_at"`
}

// Server says how to start a model server.
type Server struct {
	// Type is byoc or openai.
	Type string `json:"type"`
	// Command is the executable; "junction" means this Junction binary
	// (whose model-server subcommand is the reference server).
	Command string            `json:"command"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// ServedModel is the model id an openai server answers to; empty
	// means the endpoint's name.
	ServedModel string `json:"served_model,omitempty"`
	// StartupTimeoutSeconds bounds the wait for readiness (default 240,
	// SageMaker's four minutes).
	StartupTimeoutSeconds int `json:"startup_timeout_seconds,omitempty"`
	// Batching gathers concurrent invocations into batches (batch.go).
	Batching *Batching `json:"batching,omitempty"`
	// Container (image, image_pull_policy, service_account,
	// node_selector, tolerations) is for the kubernetes runtime; see
	// docs/kubernetes.md.
	hostrt.Container
}

// Variant is a production (or shadow) variant of an endpoint config.
type Variant struct {
	Name          string  `json:"name"`
	Model         string  `json:"model"`
	InstanceType  string  `json:"instance_type"`
	InstanceCount int     `json:"instance_count"`
	Weight        float64 `json:"weight"`
	// Serverless, in place of an instance type and count, makes the
	// variant serverless (see serverless.go).
	Serverless *ServerlessConfig `json:"serverless,omitempty"`
	// Mode is SingleModel (default) or MultiModel; a multi-model variant
	// serves the artifacts under ModelDataPrefix, shaped by ModelCache
	// (mme.go).
	Mode            string      `json:"mode,omitempty"`
	ModelDataPrefix string      `json:"model_data_prefix,omitempty"`
	ModelCache      *ModelCache `json:"model_cache,omitempty"`
}

// Routing strategies across a variant's instances.
const (
	RoutingLeastOutstanding = "least_outstanding"
	RoutingRandom           = "random"
)

// EndpointConfig is the shape of an endpoint's fleet.
type EndpointConfig struct {
	Name     string    `json:"name"`
	Variants []Variant `json:"production_variants"`
	// Shadow variants receive a copy of live traffic; their answers are
	// discarded, their latency and errors recorded.
	Shadow []Variant `json:"shadow_variants,omitempty"`
	// Routing is least_outstanding (default) or random.
	Routing string `json:"routing,omitempty"`
	// AsyncInference, when set, makes endpoints of this config serve
	// asynchronous invocations (see docs/async.md).
	AsyncInference *AsyncInference `json:"async_inference,omitempty"`
	// DataCapture, when set, records a sampled share of the endpoint's
	// invocations in object storage (see docs/hosting.md).
	DataCapture *DataCapture `json:"data_capture,omitempty"`
	CreatedAt   time.Time    `json:"created_at"`
}

// Update policies: how traffic moves to a new fleet.
const (
	PolicyAllAtOnce = "all_at_once"
	PolicyCanary    = "canary"
	PolicyLinear    = "linear"
)

// Deployment says how an update shifts traffic and when it rolls back.
type Deployment struct {
	// Type is all_at_once (default), canary or linear.
	Type string `json:"type,omitempty"`
	// CanaryPercent is the share the new fleet takes during a canary's
	// bake (default 10).
	CanaryPercent float64 `json:"canary_percent,omitempty"`
	// LinearStepPercent is the share added at each linear step (default 25).
	LinearStepPercent float64 `json:"linear_step_percent,omitempty"`
	// WaitSeconds is the bake time of a canary and after the last shift,
	// and the interval between linear steps.
	WaitSeconds float64 `json:"wait_seconds,omitempty"`
	// TerminationWaitSeconds keeps the old fleet up (and ready to take
	// traffic back) after the shift completes.
	TerminationWaitSeconds float64 `json:"termination_wait_seconds,omitempty"`
	// Alarms roll the update back while it bakes.
	Alarms Alarms `json:"alarms,omitempty"`
}

// Alarms are thresholds on the new fleet's invocations during an update.
type Alarms struct {
	// MaxErrorRate is the largest tolerated share of failed invocations
	// (0 to 1); 0 means no error-rate alarm.
	MaxErrorRate float64 `json:"max_error_rate,omitempty"`
	// MaxP99MS is the largest tolerated 99th-percentile latency; 0 means
	// none.
	MaxP99MS float64 `json:"max_p99_ms,omitempty"`
	// MinInvocations is how many invocations the new fleet must have
	// served before the alarms judge it (default 10).
	MinInvocations int `json:"min_invocations,omitempty"`
}

// Endpoint statuses, as SageMaker names them.
const (
	StatusCreating    = "Creating"
	StatusInService   = "InService"
	StatusUpdating    = "Updating"
	StatusRollingBack = "RollingBack"
	StatusFailed      = "Failed"
	StatusDeleting    = "Deleting"
)

// Endpoint is a running endpoint as described to clients.
type Endpoint struct {
	Name   string `json:"name"`
	Config string `json:"config"`
	Status string `json:"status"`
	// FailureReason says why the endpoint failed or its last update
	// rolled back.
	FailureReason string `json:"failure_reason,omitempty"`
	// PendingConfig is the config an update in progress moves to.
	PendingConfig string `json:"pending_config,omitempty"`
	// Generation numbers the endpoint's spec: every change asked for
	// (update, capacities, delete) raises it. ObservedGeneration is the
	// one the endpoint last converged on (or rolled back from); while
	// they differ, the change is in progress.
	Generation         int64            `json:"generation"`
	ObservedGeneration int64            `json:"observed_generation"`
	LastDeployment     *Deployment      `json:"last_deployment,omitempty"`
	Variants           []VariantSummary `json:"variants"`
	CreatedAt          time.Time        `json:"created_at"`
	UpdatedAt          time.Time        `json:"updated_at"`
}

// VariantSummary is a variant's live state.
type VariantSummary struct {
	Name         string  `json:"name"`
	Config       string  `json:"config"`
	Model        string  `json:"model"`
	InstanceType string  `json:"instance_type"`
	Shadow       bool    `json:"shadow,omitempty"`
	Weight       float64 `json:"weight"`
	// TrafficShare is the share of invocations it receives now (0 to 1).
	TrafficShare         float64           `json:"traffic_share"`
	DesiredInstanceCount int               `json:"desired_instance_count"`
	CurrentInstanceCount int               `json:"current_instance_count"`
	Invocations          int64             `json:"invocations"`
	Errors               int64             `json:"errors"`
	P99MS                float64           `json:"p99_ms"`
	Instances            []InstanceSummary `json:"instances"`
}

// InstanceSummary is an instance's live state.
type InstanceSummary struct {
	ID          string    `json:"id"`
	State       string    `json:"state"`
	Addr        string    `json:"addr,omitempty"`
	PID         int       `json:"pid,omitempty"`
	Restarts    int       `json:"restarts"`
	LastError   string    `json:"last_error,omitempty"`
	Outstanding int64     `json:"outstanding"`
	Since       time.Time `json:"since"`
	Adopted     bool      `json:"adopted,omitempty"`
}

// Event is one line of an endpoint's history.
type Event struct {
	Time     time.Time `json:"time"`
	Endpoint string    `json:"endpoint"`
	Message  string    `json:"message"`
}

var namePattern = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`)

// validName checks a resource name against SageMaker's pattern.
func validName(field, name string) string {
	if !namePattern.MatchString(name) {
		return fmt.Sprintf("%s: %q must be 1-63 letters, digits and hyphens, starting and ending with a letter or digit", field, name)
	}
	return ""
}

// ValidationErrors lists every problem with a resource.
type ValidationErrors []string

func (v ValidationErrors) Error() string { return strings.Join(v, "; ") }

func (v ValidationErrors) orNil() error {
	if len(v) == 0 {
		return nil
	}
	return v
}

// Validate checks a model.
func (m *Model) Validate() error {
	var errs ValidationErrors
	if e := validName("name", m.Name); e != "" {
		errs = append(errs, e)
	}
	if m.Artifact == "" {
		errs = append(errs, "artifact: required (file:///path/to/dir or a .tar.gz)")
	}
	switch m.Server.Type {
	case "":
		m.Server.Type = ServerBYOC
	case ServerBYOC, ServerOpenAI:
	default:
		errs = append(errs, fmt.Sprintf("server.type: %q must be byoc or openai", m.Server.Type))
	}
	if m.Server.Command == "" && m.Server.Image == "" {
		errs = append(errs, "server.command: required (the model server's executable; \"junction\" runs the reference server), unless server.image names a container image")
	}
	if err := m.Server.Container.Validate("server."); err != nil {
		errs = append(errs, strings.Split(err.Error(), "\n")...)
	}
	if m.Server.StartupTimeoutSeconds < 0 || m.Server.StartupTimeoutSeconds > 3600 {
		errs = append(errs, "server.startup_timeout_seconds: must be between 1 and 3600")
	}
	errs = append(errs, m.Server.Batching.validate()...)
	return errs.orNil()
}

// Validate checks an endpoint config against the instance catalog; the
// models it names are checked when an endpoint uses it.
func (c *EndpointConfig) Validate(instanceKnown func(string) bool) error {
	var errs ValidationErrors
	if e := validName("name", c.Name); e != "" {
		errs = append(errs, e)
	}
	switch c.Routing {
	case "":
		c.Routing = RoutingLeastOutstanding
	case RoutingLeastOutstanding, RoutingRandom:
	default:
		errs = append(errs, fmt.Sprintf("routing: %q must be least_outstanding or random", c.Routing))
	}
	if len(c.Variants) == 0 || len(c.Variants) > 10 {
		errs = append(errs, "production_variants: give 1 to 10 variants")
	}
	if len(c.Shadow) > 0 && len(c.Variants) != 1 {
		errs = append(errs, "shadow_variants: an endpoint with shadow variants has exactly one production variant")
	}
	seen := map[string]bool{}
	var total float64
	check := func(field string, v *Variant) {
		if e := validName(field+".name", v.Name); e != "" {
			errs = append(errs, e)
		}
		if seen[v.Name] {
			errs = append(errs, fmt.Sprintf("%s.name: %q is used twice", field, v.Name))
		}
		seen[v.Name] = true
		if v.Model == "" {
			errs = append(errs, field+".model: required")
		}
		if v.Weight < 0 {
			errs = append(errs, fmt.Sprintf("%s.weight: %g must not be negative", field, v.Weight))
		}
		if v.Serverless != nil {
			errs = append(errs, checkServerless(field, v)...)
			return
		}
		if v.InstanceCount == 0 {
			v.InstanceCount = 1
		}
		if v.InstanceCount < 1 || v.InstanceCount > 64 {
			errs = append(errs, fmt.Sprintf("%s.instance_count: %d must be between 1 and 64", field, v.InstanceCount))
		}
		if v.Weight < 0 {
			errs = append(errs, fmt.Sprintf("%s.weight: %g must not be negative", field, v.Weight))
		}
		errs = append(errs, v.validateMode(field)...)
		if !instanceKnown(v.InstanceType) {
			errs = append(errs, fmt.Sprintf("%s.instance_type: %q is not in the instance catalog (GET /api/v1/instance-types lists them)", field, v.InstanceType))
		}
	}
	for i := range c.Variants {
		check(fmt.Sprintf("production_variants[%d]", i), &c.Variants[i])
		total += c.Variants[i].Weight
	}
	for i := range c.Shadow {
		check(fmt.Sprintf("shadow_variants[%d]", i), &c.Shadow[i])
	}
	errs = append(errs, c.AsyncInference.validate()...)
	errs = append(errs, c.DataCapture.validate()...)
	if len(c.Variants) > 0 && total == 0 {
		// SageMaker's default initial weight is 1.0 for each variant.
		for i := range c.Variants {
			c.Variants[i].Weight = 1
		}
	}
	return errs.orNil()
}

// Validate checks a deployment policy and fills its defaults.
func (d *Deployment) Validate() error {
	var errs ValidationErrors
	switch d.Type {
	case "":
		d.Type = PolicyAllAtOnce
	case PolicyAllAtOnce, PolicyCanary, PolicyLinear:
	default:
		errs = append(errs, fmt.Sprintf("deployment.type: %q must be all_at_once, canary or linear", d.Type))
	}
	if d.Type == PolicyCanary && d.CanaryPercent == 0 {
		d.CanaryPercent = 10
	}
	if d.Type == PolicyLinear && d.LinearStepPercent == 0 {
		d.LinearStepPercent = 25
	}
	if d.CanaryPercent < 0 || d.CanaryPercent >= 100 {
		errs = append(errs, "deployment.canary_percent: must be above 0 and below 100")
	}
	if d.LinearStepPercent < 0 || d.LinearStepPercent > 100 {
		errs = append(errs, "deployment.linear_step_percent: must be between 1 and 100")
	}
	if d.WaitSeconds < 0 || d.WaitSeconds > 3600 || d.TerminationWaitSeconds < 0 || d.TerminationWaitSeconds > 3600 {
		errs = append(errs, "deployment.wait_seconds and termination_wait_seconds: must be between 0 and 3600")
	}
	if d.Alarms.MaxErrorRate < 0 || d.Alarms.MaxErrorRate > 1 {
		errs = append(errs, "deployment.alarms.max_error_rate: must be between 0 and 1")
	}
	if d.Alarms.MinInvocations == 0 {
		d.Alarms.MinInvocations = 10
	}
	return errs.orNil()
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
