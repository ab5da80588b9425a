// Package config is Junction's one configuration loader: the struct tree,
// the YAML file with ${ENV} expansion, the defaults taken from the standard
// provider environment variables, and validation that reports every
// problem with its path before anything starts.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultAddr is where `junction serve` listens when nothing says otherwise.
// It avoids 8080 and 8000, which model servers commonly take.
const DefaultAddr = "127.0.0.1:9470"

// Provider types.
const (
	TypeOpenAI    = "openai"
	TypeAnthropic = "anthropic"
	TypeBedrock   = "bedrock"
	// TypeGemini is Google's Gemini API (generateContent).
	TypeGemini = "gemini"
	// TypeAzure is Azure OpenAI Service: OpenAI's format at deployment
	// URLs.
	TypeAzure = "azure"
)

// Config is the whole configuration.
type Config struct {
	Server    Server     `yaml:"server"`
	Auth      Auth       `yaml:"auth"`
	Log       Log        `yaml:"log"`
	Ledger    Ledger     `yaml:"ledger"`
	Providers []Provider `yaml:"providers"`
	Models    []Model    `yaml:"models"`
	Routes    []Route    `yaml:"routes"`
	Rules     []Rule     `yaml:"rules"`
	// Guardrails are policies requests and answers can be checked
	// against (see docs/guardrails.md): a list of guardrail.Config,
	// decoded and checked by package guardrail.
	Guardrails Section `yaml:"guardrails"`
	Router     Router  `yaml:"router"`
	// Hosting runs self-hosted endpoints (see docs/hosting.md).
	Hosting Hosting `yaml:"hosting"`
	// Governance holds budgets, rate limits and reserved capacity (see
	// docs/governance.md): a governance.Config, decoded and checked by
	// package governance.
	Governance Section `yaml:"governance"`
	// Tracing exports OpenTelemetry traces (see docs/observability.md).
	Tracing Tracing `yaml:"tracing"`
	// Responses configures the OpenAI Responses API's stored responses
	// (see docs/api.md).
	Responses Responses `yaml:"responses"`
	// Cache is the response cache (see docs/caching.md).
	Cache Cache `yaml:"cache"`
	// Batch runs batch jobs (see docs/batch.md).
	Batch Batch `yaml:"batch"`
	// S3 configures s3:// object storage (see docs/configuration.md).
	S3 S3 `yaml:"s3"`
	// Async tunes the queue of asynchronous invocations (see
	// docs/async.md).
	Async Async `yaml:"async"`
	// Capture tunes data capture (see docs/hosting.md).
	Capture Capture `yaml:"capture"`
}

// Tracing configures OpenTelemetry traces over OTLP/HTTP. They are off
// unless Endpoint (or the standard OTEL_EXPORTER_OTLP_ENDPOINT) is set.
type Tracing struct {
	// Endpoint is the collector's OTLP/HTTP base URL, such as
	// http://127.0.0.1:4318.
	Endpoint string `yaml:"endpoint"`
	// Headers are sent with every export.
	Headers map[string]string `yaml:"headers"`
	// ServiceName names Junction in traces; default junction.
	ServiceName string `yaml:"service_name"`
	// SampleRatio is the share of new traces recorded, 0 to 1; 0 means
	// all.
	SampleRatio float64 `yaml:"sample_ratio"`
}

// EndpointProvider is the built-in provider whose models are self-hosted
// endpoints: a model with provider "endpoint" and upstream_model NAME is
// served by endpoint NAME's OpenAI-compatible server.
const EndpointProvider = "endpoint"

// Hosting tunes self-hosted endpoints. A duration or size left zero takes
// the default of the part it tunes (hosting.Options, the runtime's
// hostrt.Spec, the SageMaker surface), defined there and only there.
type Hosting struct {
	// Disabled turns hosting off: no runtime, no endpoint APIs.
	Disabled bool `yaml:"disabled"`
	// GPUs are the GPU indices instances may be given; empty means those
	// the host reports (/proc/driver/nvidia/gpus).
	GPUs []int `yaml:"gpus"`
	// HealthInterval is the time between health checks of an instance.
	HealthInterval time.Duration `yaml:"health_interval"`
	// StopGrace is the time between SIGTERM and SIGKILL.
	StopGrace time.Duration `yaml:"stop_grace"`
	// MeterInterval is how often instance time is written to the ledger.
	MeterInterval time.Duration `yaml:"meter_interval"`
	// KeepInstancesOnShutdown leaves model servers running when Junction
	// stops, for the next start to adopt.
	KeepInstancesOnShutdown bool `yaml:"keep_instances_on_shutdown"`
	// MaxInvocationBytes caps an invocation body (SageMaker's 6 MB).
	MaxInvocationBytes int64 `yaml:"max_invocation_bytes"`
	// InvocationTimeout bounds one invocation (SageMaker's 60 s).
	InvocationTimeout time.Duration `yaml:"invocation_timeout"`
	// InstanceTypes add to (or override) the built-in instance catalog.
	InstanceTypes []InstanceType `yaml:"instance_types"`
	// ColdStart bounds the calls held while a variant has no ready
	// instance (docs/autoscaling.md).
	ColdStart ColdStart `yaml:"cold_start"`
	// Autoscale tunes the autoscaler (docs/autoscaling.md).
	Autoscale Autoscale `yaml:"autoscale"`
	// Runtime is where model servers run: process (default) or
	// kubernetes.
	Runtime string `yaml:"runtime"`
	// Kubernetes configures the kubernetes runtime.
	Kubernetes Kubernetes `yaml:"kubernetes"`
}

// ColdStart bounds the hold queue of each endpoint.
type ColdStart struct {
	// QueueSize is how many calls an endpoint holds at most (default
	// 1024); more get 429.
	QueueSize int `yaml:"queue_size"`
	// MaxWait is how long a held call waits for an instance (default
	// 30s); then it gets 503.
	MaxWait time.Duration `yaml:"max_wait"`
}

// Autoscale tunes the autoscaler.
type Autoscale struct {
	// Interval is how often variants are sampled (default 1s).
	Interval time.Duration `yaml:"interval"`
	// Window is the stretch a metric is averaged over (default 60s).
	Window time.Duration `yaml:"window"`
	// ServerlessIdle is how long a serverless variant stays warm with no
	// call (default 5m).
	ServerlessIdle time.Duration `yaml:"serverless_idle"`
}

// InstanceType is an instance type for self-hosted endpoints: its price
// and the resources an instance gets.
type InstanceType struct {
	Type       string  `yaml:"type"`
	USDPerHour float64 `yaml:"usd_per_hour"`
	GPUs       int     `yaml:"gpus"`
	CPUs       float64 `yaml:"cpus"`
	MemoryMB   int     `yaml:"memory_mb"`
}

// Rule sends requests that match When to Route. Rules are tried in order;
// the first match wins.
type Rule struct {
	Name  string    `yaml:"name"`
	When  RuleMatch `yaml:"when"`
	Route string    `yaml:"route"`
}

// RuleMatch is what a rule matches on; every field set must match.
type RuleMatch struct {
	// Model is the requested model or route name.
	Model string `yaml:"model"`
	// CostTier is economy, standard or premium (standard also matches
	// requests that name no tier).
	CostTier string `yaml:"cost_tier"`
	// Tags and Metadata must each hold these values.
	Tags     map[string]string `yaml:"tags"`
	Metadata map[string]string `yaml:"metadata"`
	// MinInputTokens and MaxInputTokens bound the estimated prompt size.
	MinInputTokens int `yaml:"min_input_tokens"`
	MaxInputTokens int `yaml:"max_input_tokens"`
	// MaxLatencyMsBelow matches requests whose latency budget is below
	// this many milliseconds.
	MaxLatencyMsBelow int `yaml:"max_latency_ms_below"`
}

// Route is a public model name served by a group of deployments.
type Route struct {
	Name        string            `yaml:"name"`
	Deployments []RouteDeployment `yaml:"deployments"`
	// Strategy is weighted (default), least_outstanding, lowest_latency
	// or lowest_cost.
	Strategy string `yaml:"strategy"`
	// Fallbacks are routes or models tried, in order, when every
	// deployment of this route failed.
	Fallbacks []string `yaml:"fallbacks"`
	// ContextFallbacks are tried when a request is too long for this
	// route's models (models with larger context windows).
	ContextFallbacks []string `yaml:"context_fallbacks"`
	// PolicyFallbacks are tried when this route's model refuses a request
	// on content policy (another provider).
	PolicyFallbacks []string `yaml:"policy_fallbacks"`
	// Spill is a model that answers in place of the route's self-hosted
	// endpoint while it has no ready instance, or while a call's predicted
	// wait on it exceeds SpillWait or the call's latency budget
	// (docs/autoscaling.md).
	Spill string `yaml:"spill"`
	// SpillWait is the longest predicted wait on the endpoint before a
	// call spills; 0 means only a call's own latency budget bounds it.
	SpillWait time.Duration `yaml:"spill_wait"`
	// Guardrail and GuardrailMode attach a guardrail to the route, as on a
	// model; GuardrailEnforced keeps a request from replacing it.
	Guardrail         string `yaml:"guardrail"`
	GuardrailMode     string `yaml:"guardrail_mode"`
	GuardrailEnforced bool   `yaml:"guardrail_enforced"`
	// Type is balanced (default), cascade or prompt_router.
	Type string `yaml:"type"`
	// Checks are a cascade's tests of an answer: non_empty,
	// not_truncated, valid_json. A failed check escalates to the next
	// deployment.
	Checks []string `yaml:"checks"`
	// Judge, for a cascade, asks a model to score each answer.
	Judge *Judge `yaml:"judge"`
	// Threshold, for a prompt router, is the predicted probability of a
	// good answer a candidate needs (default 0.7).
	Threshold float64 `yaml:"threshold"`
	// Scorer, for a prompt router, is features (default) or knn.
	Scorer string `yaml:"scorer"`
	// EmbeddingModel, for the knn scorer, is the model that embeds
	// prompts.
	EmbeddingModel string `yaml:"embedding_model"`
	// RetriesPerDeployment is how many times a deployment that failed in
	// a way worth repeating (a 429 with Retry-After, a 5xx, a connection
	// reset) is retried before the route moves on; nil means the router's.
	RetriesPerDeployment *int `yaml:"retries_per_deployment"`
	// Streams holds the route's stream timeouts; unset fields fall back
	// to each model's, then the router's.
	Streams `yaml:",inline"`
}

// Streams are the timeouts that judge a streamed answer, set on a route,
// a model or the router.
type Streams struct {
	// FirstTokenTimeout abandons a stream attempt whose first content has
	// not arrived in this time, and fails over; zero means none.
	FirstTokenTimeout time.Duration `yaml:"first_token_timeout"`
	// StreamIdleTimeout treats a stream silent this long mid-answer as
	// broken; zero means none.
	StreamIdleTimeout time.Duration `yaml:"stream_idle_timeout"`
}

// Judge is a model that scores a cascade's answers from 0 to 10.
type Judge struct {
	Model string `yaml:"model"`
	// Threshold is the lowest acceptable score as a fraction (0.7 = 7/10).
	Threshold float64 `yaml:"threshold"`
}

// Route types.
const (
	RouteBalanced     = "balanced"
	RouteCascade      = "cascade"
	RoutePromptRouter = "prompt_router"
)

// Cascade checks.
var CascadeChecks = []string{"non_empty", "not_truncated", "valid_json"}

// RouteDeployment is one member of a route: a model from models (or
// PROVIDER/MODEL) and its weight.
type RouteDeployment struct {
	Model  string `yaml:"model"`
	Weight int    `yaml:"weight"`
	// Quality, for a prompt router, is the candidate's capability from 0
	// to 1.
	Quality float64 `yaml:"quality"`
}

// Router tunes retries and passive health.
type Router struct {
	// MaxAttempts bounds the upstream calls for one request, across
	// deployments and fallbacks.
	MaxAttempts int `yaml:"max_attempts"`
	// RetryBackoff is the base of the jittered backoff between attempts.
	RetryBackoff time.Duration `yaml:"retry_backoff"`
	// FailureThreshold consecutive failures put a deployment in cooldown.
	FailureThreshold int `yaml:"failure_threshold"`
	// Cooldown is the first cooldown; it doubles while the deployment
	// keeps failing, up to MaxCooldown.
	Cooldown    time.Duration `yaml:"cooldown"`
	MaxCooldown time.Duration `yaml:"max_cooldown"`
	// RetriesPerDeployment is the default of routes' field of that name.
	RetriesPerDeployment int `yaml:"retries_per_deployment"`
	// MaxRetryWait caps how long a Retry-After is waited for before the
	// same deployment is retried; a longer one moves on at once.
	MaxRetryWait time.Duration `yaml:"max_retry_wait"`
	// RetriesPerSecond bounds the retries of one deployment, across all
	// requests, so that retrying never hammers a failing upstream.
	RetriesPerSecond int `yaml:"retries_per_second"`
	// Streams are the default stream timeouts.
	Streams `yaml:",inline"`
	// StrictStreams ends a stream at an event the upstream sent malformed
	// (invalid JSON), instead of skipping it with a warning metric.
	StrictStreams bool `yaml:"strict_streams"`
}

// Balancing strategies.
var Strategies = []string{"weighted", "least_outstanding", "lowest_latency", "lowest_cost"}

// Server configures the listener and the data directory.
type Server struct {
	// Addr is host:port to listen on.
	Addr string `yaml:"addr"`
	// DataDir holds the SQLite database, logs and artifacts.
	DataDir string `yaml:"data_dir"`
	// Database, when set, is a PostgreSQL URL
	// (postgres://user:password@host:5432/junction) to keep Junction's
	// state in instead of SQLite in DataDir; replicas that name the same
	// database share keys, budgets and the ledger (see docs/postgres.md).
	Database string `yaml:"database"`
	// MaxBodyBytes caps request bodies; larger ones get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxInflightBodyBytes caps the bytes of request bodies held in
	// memory at once, across all requests; a body that does not fit is
	// answered 503 with Retry-After.
	MaxInflightBodyBytes int64 `yaml:"max_inflight_body_bytes"`
	// ReadHeaderTimeout bounds the wait for a request's headers.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// BodyReadTimeout bounds the wait for a whole request, headers and
	// body; past it the request gets 408 and its connection closes. It
	// does not limit responses: a stream may run for as long as it lasts.
	BodyReadTimeout time.Duration `yaml:"body_read_timeout"`
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// HTTP1 picks the server of cleartext HTTP/1.1: "lean" (the default),
	// Junction's own (internal/platform/h1srv), which hands HTTP/2 with
	// prior knowledge, Upgrade and CONNECT to net/http; or "std", net/http
	// for everything. With TLS, net/http serves everything either way.
	HTTP1 string `yaml:"http1"`
	// UpstreamTimeout bounds the wait for an upstream's response headers
	// (and a whole non-streamed response); past it the client gets 504.
	UpstreamTimeout time.Duration `yaml:"upstream_timeout"`
	// ShutdownTimeout bounds the drain of in-flight requests on shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TLS, when set, serves HTTPS (HTTP/1.1 and HTTP/2, chosen by ALPN)
	// instead of cleartext HTTP/1.1 and HTTP/2 with prior knowledge.
	TLS *TLS `yaml:"tls"`
}

// The servers server.http1 names.
const (
	HTTP1Lean = "lean"
	HTTP1Std  = "std"
)

// TLS names the certificate and key the server presents.
type TLS struct {
	// CertFile is a PEM certificate chain, the server's certificate first.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of the certificate.
	KeyFile string `yaml:"key_file"`
}

// Auth configures API keys.
type Auth struct {
	// AdminKey, when set, is the admin key. When empty, the first start
	// generates one, prints it once and stores only its hash.
	AdminKey string `yaml:"admin_key"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json (default) or text.
	Format string `yaml:"format"`
	// File, when set, receives the log as well as stderr; relative paths
	// are under the data directory.
	File string `yaml:"file"`
}

// Ledger configures the usage ledger writer.
type Ledger struct {
	// QueueSize bounds the records waiting to be written. It and the
	// next two, left zero, take the ledger writer's defaults
	// (ledger.Options).
	QueueSize int `yaml:"queue_size"`
	// BatchSize is the most records written in one transaction.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest a record waits before being written.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// Journal, on by default, appends each record to a local journal in
	// the data directory before the request completes, so a crash or
	// kill -9 of Junction loses no record (see docs/reliability.md).
	Journal *bool `yaml:"journal"`
	// Retention says how long usage is kept.
	Retention Retention `yaml:"retention"`
}

// Retention says how long the ledger keeps per-request usage records.
// The hourly and daily roll-ups that reports read are kept forever.
type Retention struct {
	// Raw is how long per-request records are kept (30d, 2w, 720h); older
	// whole hours are deleted in the background. 0, the default, keeps
	// them forever.
	Raw Age `yaml:"raw"`
}

// Age is a time.Duration that a config file may also give in days ("30d")
// or weeks ("2w").
type Age time.Duration

// UnmarshalYAML reads a Go duration ("720h"), or a whole number of days
// or weeks ("30d", "2w").
func (a *Age) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	s = strings.TrimSpace(s)
	for unit, d := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if num, ok := strings.CutSuffix(s, unit); ok {
			k, err := strconv.Atoi(num)
			if err != nil {
				return fmt.Errorf("line %d: %q: want a duration such as 30d, 2w or 720h", n.Line, s)
			}
			*a = Age(time.Duration(k) * d)
			return nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q: want a duration such as 30d, 2w or 720h", n.Line, s)
	}
	*a = Age(d)
	return nil
}

// Provider is an upstream API.
type Provider struct {
	Name string `yaml:"name"`
	// Type is openai, anthropic, bedrock, gemini or azure.
	Type    string `yaml:"type"`
	BaseURL string `yaml:"base_url"`
	APIKey  string `yaml:"api_key"`
	// Region and Endpoint are for bedrock; Endpoint overrides the AWS
	// endpoint (a VPC endpoint, or a fake in tests).
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"`
	// Timeout overrides server.upstream_timeout for this provider.
	Timeout time.Duration `yaml:"timeout"`
	// APIVersion is azure's api-version query parameter (default
	// 2024-10-21).
	APIVersion string `yaml:"api_version"`
	// Auth says how azure sends api_key: api-key (the header, default) or
	// bearer (an Entra ID token in Authorization).
	Auth string `yaml:"auth"`
	// PassThrough (openai only; nil means true) sends a request that came
	// in on the OpenAI surface as the client's own bytes, with model,
	// stream options and max_tokens patched, and reads answers with the
	// hand-written decoders; false re-encodes every request and decodes
	// every answer with encoding/json (the full path).
	PassThrough *bool `yaml:"pass_through"`
}

// PassesThrough reports whether the provider passes OpenAI bodies through
// (see PassThrough).
func (p Provider) PassesThrough() bool {
	return p.Type == TypeOpenAI && (p.PassThrough == nil || *p.PassThrough)
}

// Model maps a model name clients use to a provider's model.
type Model struct {
	Name          string `yaml:"name"`
	Provider      string `yaml:"provider"`
	UpstreamModel string `yaml:"upstream_model"`
	// Price overrides the catalog price of the upstream model.
	Price *Price `yaml:"price"`
	// Guardrail, "ID" or "ID:VERSION", checks every request to this model
	// and its answers; GuardrailMode is sync (default) or async for streams.
	// GuardrailEnforced keeps a request (X-Junction-Guardrail, a Converse
	// guardrailConfig) from replacing it: one that tries gets 403.
	Guardrail         string `yaml:"guardrail"`
	GuardrailMode     string `yaml:"guardrail_mode"`
	GuardrailEnforced bool   `yaml:"guardrail_enforced"`
	// Streams holds the model's stream timeouts.
	Streams `yaml:",inline"`
	// Prefill says whether the model continues an answer given as a
	// trailing assistant message, which mid-stream failover uses; nil
	// means by provider type (anthropic yes, others no). A model that
	// rejects a continuation is marked as not supporting it.
	Prefill *bool `yaml:"prefill"`
}

// Price is a per-token price in USD per 1,000 tokens.
type Price struct {
	InputPer1K       float64  `yaml:"input_per_1k"`
	OutputPer1K      float64  `yaml:"output_per_1k"`
	CachedInputPer1K *float64 `yaml:"cached_input_per_1k"`
	// CacheWritePer1K prices tokens written to a prompt cache; empty
	// means 1.25 × the input price.
	CacheWritePer1K *float64 `yaml:"cache_write_per_1k"`
	// MaxOutputTokens is the most output tokens the model allows in one
	// request; 0 keeps the catalog's limit, if it has one. A request
	// whose max_tokens is larger is refused with a 400.
	MaxOutputTokens int `yaml:"max_output_tokens"`
	// BatchDiscount is the share taken off this price for batch records,
	// 0 to 1; empty means batch.discount.
	BatchDiscount *float64 `yaml:"batch_discount"`
}

// Default returns the configuration used with no config file: embedded
// defaults plus providers from the standard environment variables.
func Default(getenv func(string) string) *Config {
	c := &Config{}
	c.applyDefaults()
	c.Auth.AdminKey = getenv("JUNCTION_ADMIN_KEY")
	if k := getenv("OPENAI_API_KEY"); k != "" || getenv("OPENAI_BASE_URL") != "" {
		base := getenv("OPENAI_BASE_URL")
		if base == "" {
			base = "https://api.openai.com/v1"
		}
		c.Providers = append(c.Providers, Provider{Name: "openai", Type: TypeOpenAI, BaseURL: base, APIKey: k})
	}
	if k := getenv("ANTHROPIC_API_KEY"); k != "" {
		base := getenv("ANTHROPIC_BASE_URL")
		if base == "" {
			base = "https://api.anthropic.com"
		}
		c.Providers = append(c.Providers, Provider{Name: "anthropic", Type: TypeAnthropic, BaseURL: base, APIKey: k})
	}
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	if region != "" {
		c.Providers = append(c.Providers, Provider{Name: "bedrock", Type: TypeBedrock, Region: region})
	}
	return c
}

func (c *Config) applyDefaults() {
	c.Cache.applyDefaults()
	c.Batch.applyDefaults()
	if c.Server.Addr == "" {
		c.Server.Addr = DefaultAddr
	}
	if c.Server.DataDir == "" {
		c.Server.DataDir = "./.junction"
	}
	if c.Server.MaxBodyBytes == 0 {
		c.Server.MaxBodyBytes = 8 << 20
	}
	if c.Server.MaxInflightBodyBytes == 0 {
		c.Server.MaxInflightBodyBytes = 256 << 20
	}
	if c.Server.ReadHeaderTimeout == 0 {
		c.Server.ReadHeaderTimeout = 10 * time.Second
	}
	if c.Server.BodyReadTimeout == 0 {
		c.Server.BodyReadTimeout = time.Minute
	}
	if c.Server.IdleTimeout == 0 {
		c.Server.IdleTimeout = 2 * time.Minute
	}
	if c.Server.HTTP1 == "" {
		c.Server.HTTP1 = HTTP1Lean
	}
	if c.Server.UpstreamTimeout == 0 {
		c.Server.UpstreamTimeout = 10 * time.Minute
	}
	if c.Server.ShutdownTimeout == 0 {
		c.Server.ShutdownTimeout = 30 * time.Second
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.File == "" {
		c.Log.File = "logs/junction.log"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Router.MaxAttempts == 0 {
		c.Router.MaxAttempts = 3
	}
	if c.Router.RetryBackoff == 0 {
		c.Router.RetryBackoff = 50 * time.Millisecond
	}
	if c.Router.FailureThreshold == 0 {
		c.Router.FailureThreshold = 3
	}
	if c.Router.Cooldown == 0 {
		c.Router.Cooldown = 5 * time.Second
	}
	if c.Router.MaxCooldown == 0 {
		c.Router.MaxCooldown = 5 * time.Minute
	}
	if c.Router.MaxRetryWait == 0 {
		c.Router.MaxRetryWait = 10 * time.Second
	}
	if c.Router.RetriesPerSecond == 0 {
		c.Router.RetriesPerSecond = 10
	}
	for i := range c.Routes {
		if c.Routes[i].Strategy == "" {
			c.Routes[i].Strategy = "weighted"
		}
		if c.Routes[i].Type == "" {
			c.Routes[i].Type = RouteBalanced
		}
		if c.Routes[i].Type == RoutePromptRouter && c.Routes[i].Threshold == 0 {
			c.Routes[i].Threshold = 0.7
		}
		if c.Routes[i].Type == RoutePromptRouter && c.Routes[i].Scorer == "" {
			c.Routes[i].Scorer = "features"
		}
		if j := c.Routes[i].Judge; j != nil && j.Threshold == 0 {
			j.Threshold = 0.7
		}
		for j := range c.Routes[i].Deployments {
			if c.Routes[i].Deployments[j].Weight == 0 {
				c.Routes[i].Deployments[j].Weight = 1
			}
		}
	}
	for i := range c.Providers {
		p := &c.Providers[i]
		if p.Type == TypeAnthropic && p.BaseURL == "" {
			p.BaseURL = "https://api.anthropic.com"
		}
		if p.Type == TypeOpenAI && p.BaseURL == "" {
			p.BaseURL = "https://api.openai.com/v1"
		}
		if p.Type == TypeGemini && p.BaseURL == "" {
			p.BaseURL = "https://generativelanguage.googleapis.com/v1beta"
		}
	}
}

// Load reads a YAML config file, expands ${VAR} and ${VAR:-default} in
// its values from getenv, applies defaults and validates it with checks
// (see Validate).
func Load(path string, getenv func(string) string, checks ...Check) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, getenv, checks...)
}

// Parse is Load on bytes.
func Parse(data []byte, getenv func(string) string, checks ...Check) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	expandNode(&root, getenv)
	expanded, err := yaml.Marshal(&root)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.sections(expanded)
	c.applyDefaults()
	if err := c.Validate(checks...); err != nil {
		return nil, err
	}
	return c, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

func expandNode(n *yaml.Node, getenv func(string) string) {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			g := envRef.FindStringSubmatch(m)
			if v := getenv(g[1]); v != "" {
				return v
			}
			return g[3]
		})
		// Quoted values stay strings; a plain value is typed by what it
		// expanded to, so "max_body_bytes: ${MAX}" can hold a number.
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			n.Style = yaml.DoubleQuotedStyle
		} else {
			n.Tag = ""
		}
	}
	for _, c := range n.Content {
		expandNode(c, getenv)
	}
}

// ValidationError lists every problem found in a config, each with its
// path.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return "invalid config:\n  " + strings.Join(e.Problems, "\n  ")
}

// Validate checks the config, and with checks the sections config leaves
// to the packages they configure, and returns a *ValidationError listing
// every problem, or nil.
func (c *Config) Validate(checks ...Check) error {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if _, _, err := splitHostPort(c.Server.Addr); err != nil {
		add("server.addr: %v", err)
	}
	if c.Server.MaxBodyBytes < 1024 {
		add("server.max_body_bytes: must be at least 1024")
	}
	if c.Server.UpstreamTimeout < 0 {
		add("server.upstream_timeout: must not be negative")
	}
	// max_invocation_bytes is compared only when set: left zero, it is
	// the SageMaker surface's default (6 MB).
	if c.Server.MaxInflightBodyBytes < c.Server.MaxBodyBytes || (!c.Hosting.Disabled && c.Server.MaxInflightBodyBytes < c.Hosting.MaxInvocationBytes) {
		add("server.max_inflight_body_bytes: must be at least server.max_body_bytes and hosting.max_invocation_bytes, or no body that large could ever be read")
	}
	if c.Server.ReadHeaderTimeout < 0 || c.Server.BodyReadTimeout < 0 || c.Server.IdleTimeout < 0 {
		add("server.read_header_timeout, body_read_timeout, idle_timeout: must not be negative")
	}
	if c.Server.HTTP1 != HTTP1Lean && c.Server.HTTP1 != HTTP1Std {
		add("server.http1: must be %q or %q, not %q", HTTP1Lean, HTTP1Std, c.Server.HTTP1)
	}
	p = append(p, c.Responses.validate()...)
	if t := c.Server.TLS; t != nil && (t.CertFile == "" || t.KeyFile == "") {
		add("server.tls: needs both cert_file and key_file (PEM files)")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		add("log.format: %q is not one of json, text", c.Log.Format)
	}
	if c.Ledger.QueueSize < 0 || c.Ledger.BatchSize < 0 || c.Ledger.FlushInterval < 0 {
		add("ledger: queue_size, batch_size and flush_interval must not be negative")
	}
	for i, it := range c.Hosting.InstanceTypes {
		if it.Type == "" || it.USDPerHour < 0 || it.GPUs < 0 || it.CPUs < 0 || it.MemoryMB < 0 {
			add("hosting.instance_types[%d]: type is required; usd_per_hour, gpus, cpus and memory_mb must not be negative", i)
		}
	}
	if c.Hosting.MaxInvocationBytes < 0 || c.Hosting.InvocationTimeout < 0 || c.Hosting.HealthInterval < 0 || c.Hosting.StopGrace < 0 || c.Hosting.MeterInterval < 0 {
		add("hosting: max_invocation_bytes, invocation_timeout, health_interval, stop_grace and meter_interval must not be negative")
	}
	if cs := c.Hosting.ColdStart; cs.QueueSize < 0 || cs.MaxWait < 0 {
		add("hosting.cold_start: queue_size and max_wait must not be negative")
	}
	if as := c.Hosting.Autoscale; as.Interval < 0 || as.Window < 0 || as.ServerlessIdle < 0 {
		add("hosting.autoscale: interval, window and serverless_idle must not be negative")
	}
	p = append(p, c.Hosting.validateRuntime()...)
	if raw := time.Duration(c.Ledger.Retention.Raw); raw < 0 || raw > 0 && raw < 24*time.Hour {
		add("ledger.retention.raw: must be at least 1d (or 0, to keep raw records forever)")
	}
	if c.Tracing.Endpoint != "" {
		if err := checkURL(c.Tracing.Endpoint); err != nil {
			add("tracing.endpoint: %v", err)
		}
	}
	if r := c.Tracing.SampleRatio; r < 0 || r > 1 {
		add("tracing.sample_ratio: %g must be from 0 to 1", r)
	}
	p = append(p, c.validateAsync()...)
	p = append(p, c.validateCapture()...)
	if db := c.Server.Database; db != "" {
		if u, err := url.Parse(db); err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
			add("server.database: must be a postgres:// URL, or empty for SQLite in server.data_dir")
		}
	}
	names := map[string]bool{}
	for i, pr := range c.Providers {
		at := fmt.Sprintf("providers[%d]", i)
		switch {
		case pr.Name == "":
			add("%s.name: required", at)
		case !validName(pr.Name):
			add("%s.name: %q may hold only letters, digits, '-', '_' and '.'", at, pr.Name)
		case names[pr.Name]:
			add("%s.name: %q is used by another provider", at, pr.Name)
		}
		names[pr.Name] = true
		switch pr.Type {
		case TypeOpenAI, TypeAnthropic, TypeGemini:
			if err := checkURL(pr.BaseURL); err != nil {
				add("%s.base_url: %v", at, err)
			}
		case TypeAzure:
			if err := checkURL(pr.BaseURL); err != nil {
				add("%s.base_url: %v (the resource endpoint, https://NAME.openai.azure.com)", at, err)
			}
			if pr.Auth != "" && pr.Auth != "api-key" && pr.Auth != "bearer" {
				add("%s.auth: %q is not one of api-key, bearer", at, pr.Auth)
			}
		case TypeBedrock:
			if pr.Endpoint != "" {
				if err := checkURL(pr.Endpoint); err != nil {
					add("%s.endpoint: %v", at, err)
				}
			}
		case "":
			add("%s.type: required (openai, anthropic, bedrock, gemini or azure)", at)
		default:
			add("%s.type: %q is not one of openai, anthropic, bedrock, gemini, azure", at, pr.Type)
		}
		if pr.PassThrough != nil && pr.Type != TypeOpenAI {
			add("%s.pass_through: only openai providers pass bodies through", at)
		}
		if pr.Timeout < 0 {
			add("%s.timeout: must not be negative", at)
		}
	}
	models := map[string]bool{}
	for i, m := range c.Models {
		at := fmt.Sprintf("models[%d]", i)
		switch {
		case m.Name == "":
			add("%s.name: required", at)
		case models[m.Name]:
			add("%s.name: %q is defined twice", at, m.Name)
		}
		models[m.Name] = true
		if m.Provider == "" {
			add("%s.provider: required", at)
		} else if !names[m.Provider] && m.Provider != EndpointProvider {
			add("%s.provider: %q is not a configured provider (%s, or %s for a self-hosted endpoint)", at, m.Provider, strings.Join(keys(names), ", "), EndpointProvider)
		}
		if m.Price != nil {
			if m.Price.InputPer1K < 0 || m.Price.OutputPer1K < 0 || m.Price.CachedInputPer1K != nil && *m.Price.CachedInputPer1K < 0 ||
				m.Price.CacheWritePer1K != nil && *m.Price.CacheWritePer1K < 0 {
				add("%s.price: prices must not be negative", at)
			}
		}
	}
	p = append(p, c.validateRoutes(names, models)...)
	for _, check := range checks {
		p = append(p, check(c)...)
	}
	p = append(p, c.Batch.validate()...)
	cacheable, configured := map[string]bool{}, map[string]bool{}
	for _, m := range c.Models {
		cacheable[m.Name], configured[m.Name] = true, true
	}
	for _, r := range c.Routes {
		cacheable[r.Name] = true
	}
	p = append(p, c.Cache.validate(cacheable, configured)...)
	for i, m := range c.Models {
		if m.Price != nil && m.Price.BatchDiscount != nil && (*m.Price.BatchDiscount < 0 || *m.Price.BatchDiscount > 1) {
			p = append(p, fmt.Sprintf("models[%d].price.batch_discount: must be between 0 and 1", i))
		}
	}
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

func (c *Config) validateRoutes(providers, models map[string]bool) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if c.Router.MaxAttempts < 1 || c.Router.MaxAttempts > 10 {
		add("router.max_attempts: must be from 1 to 10")
	}
	if c.Router.FailureThreshold < 1 || c.Router.Cooldown < 0 || c.Router.MaxCooldown < c.Router.Cooldown {
		add("router: failure_threshold must be positive and max_cooldown at least cooldown")
	}
	if c.Router.RetriesPerDeployment < 0 || c.Router.RetriesPerDeployment > 5 {
		add("router.retries_per_deployment: must be from 0 to 5")
	}
	if c.Router.MaxRetryWait < 0 {
		add("router.max_retry_wait: must not be negative")
	}
	if c.Router.RetriesPerSecond < 1 {
		add("router.retries_per_second: must be at least 1")
	}
	p = append(p, c.Router.Streams.validate("router")...)
	for i, m := range c.Models {
		p = append(p, m.Streams.validate(fmt.Sprintf("models[%d]", i))...)
	}
	// servable reports whether a name is a model or PROVIDER/MODEL.
	servable := func(name string) bool {
		if models[name] {
			return true
		}
		prov, up, ok := strings.Cut(name, "/")
		return ok && up != "" && providers[prov]
	}
	routes := map[string]bool{}
	for _, r := range c.Routes {
		routes[r.Name] = true
	}
	for i, r := range c.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		if r.Name == "" {
			add("%s.name: required", at)
		}
		if !routes[r.Route] && !servable(r.Route) {
			add("%s.route: %q is not a route or model", at, r.Route)
		}
		switch r.When.CostTier {
		case "", "economy", "standard", "premium":
		default:
			add("%s.when.cost_tier: %q is not one of economy, standard, premium", at, r.When.CostTier)
		}
		if r.When.MinInputTokens < 0 || r.When.MaxInputTokens < 0 || r.When.MaxInputTokens > 0 && r.When.MaxInputTokens < r.When.MinInputTokens {
			add("%s.when: min_input_tokens and max_input_tokens must be non-negative, max at least min", at)
		}
	}
	seen := map[string]bool{}
	knnEmbedding := ""
	for i, r := range c.Routes {
		at := fmt.Sprintf("routes[%d]", i)
		switch {
		case r.Name == "":
			add("%s.name: required", at)
		case seen[r.Name]:
			add("%s.name: %q is defined twice", at, r.Name)
		case models[r.Name]:
			add("%s.name: %q is also a model name; a route needs its own name", at, r.Name)
		}
		seen[r.Name] = true
		if n := r.RetriesPerDeployment; n != nil && (*n < 0 || *n > 5) {
			add("%s.retries_per_deployment: must be from 0 to 5", at)
		}
		p = append(p, r.Streams.validate(at)...)
		if len(r.Deployments) == 0 {
			add("%s.deployments: at least one is required", at)
		}
		for j, d := range r.Deployments {
			if !servable(d.Model) {
				add("%s.deployments[%d].model: %q is not a configured model or PROVIDER/MODEL", at, j, d.Model)
			}
			if d.Weight < 0 {
				add("%s.deployments[%d].weight: must not be negative", at, j)
			}
		}
		valid := false
		for _, s := range Strategies {
			valid = valid || r.Strategy == s
		}
		if !valid {
			add("%s.strategy: %q is not one of %s", at, r.Strategy, strings.Join(Strategies, ", "))
		}
		switch r.Type {
		case RouteBalanced:
		case RouteCascade:
			for j, ch := range r.Checks {
				ok := false
				for _, k := range CascadeChecks {
					ok = ok || ch == k
				}
				if !ok {
					add("%s.checks[%d]: %q is not one of %s", at, j, ch, strings.Join(CascadeChecks, ", "))
				}
			}
			if r.Judge != nil && !servable(r.Judge.Model) {
				add("%s.judge.model: %q is not a configured model", at, r.Judge.Model)
			}
			if len(r.Checks) == 0 && r.Judge == nil {
				add("%s: a cascade needs checks or a judge to decide when to escalate", at)
			}
		case RoutePromptRouter:
			if r.Threshold <= 0 || r.Threshold > 1 {
				add("%s.threshold: must be in (0, 1]", at)
			}
			for j, d := range r.Deployments {
				if d.Quality <= 0 || d.Quality > 1 {
					add("%s.deployments[%d].quality: a prompt router needs each candidate's quality in (0, 1]", at, j)
				}
			}
			switch r.Scorer {
			case "features":
			case "knn":
				if !servable(r.EmbeddingModel) {
					add("%s.embedding_model: the knn scorer needs a configured embeddings model", at)
				} else if knnEmbedding != "" && knnEmbedding != r.EmbeddingModel {
					add("%s.embedding_model: every knn prompt router must use the same embeddings model (%q)", at, knnEmbedding)
				}
				knnEmbedding = r.EmbeddingModel
			default:
				add("%s.scorer: %q is not one of features, knn", at, r.Scorer)
			}
		default:
			add("%s.type: %q is not one of balanced, cascade, prompt_router", at, r.Type)
		}
		for field, list := range map[string][]string{"context_fallbacks": r.ContextFallbacks, "policy_fallbacks": r.PolicyFallbacks} {
			for j, f := range list {
				if f == r.Name || !routes[f] && !servable(f) {
					add("%s.%s[%d]: %q is not another route or a model", at, field, j, f)
				}
			}
		}
		if r.Spill != "" && (routes[r.Spill] || !servable(r.Spill)) {
			add("%s.spill: %q is not a model", at, r.Spill)
		}
		if r.SpillWait < 0 || r.SpillWait > 0 && r.Spill == "" {
			add("%s.spill_wait: must be a positive duration, and needs spill (the model that answers instead)", at)
		}
		for j, f := range r.Fallbacks {
			switch {
			case f == r.Name:
				add("%s.fallbacks[%d]: a route cannot fall back to itself", at, j)
			case !routes[f] && !servable(f):
				add("%s.fallbacks[%d]: %q is not a route or model", at, j, f)
			}
		}
	}
	return p
}

// validate reports negative timeouts, naming them under at.
func (s Streams) validate(at string) []string {
	var p []string
	if s.FirstTokenTimeout < 0 {
		p = append(p, at+".first_token_timeout: must not be negative")
	}
	if s.StreamIdleTimeout < 0 {
		p = append(p, at+".stream_idle_timeout: must not be negative")
	}
	return p
}

func validName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func checkURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q must be an absolute http(s) URL", s)
	}
	return nil
}

func splitHostPort(addr string) (string, string, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", fmt.Errorf("%q must be host:port", addr)
	}
	return addr[:i], addr[i+1:], nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	if len(out) == 0 {
		return []string{"none configured"}
	}
	sort.Strings(out)
	return out
}

// ProviderByName returns the named provider, or nil.
func (c *Config) ProviderByName(name string) *Provider {
	for i := range c.Providers {
		if c.Providers[i].Name == name {
			return &c.Providers[i]
		}
	}
	return nil
}
