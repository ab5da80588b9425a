package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseContractShape(t *testing.T) {
	y := `
server: {addr: "127.0.0.1:9999", data_dir: "./.junction"}
auth: {admin_key: "${JUNCTION_ADMIN_KEY}"}
providers:
  - {name: openai, type: openai, base_url: "https://api.openai.com/v1", api_key: "${OPENAI_API_KEY}"}
  - {name: claude, type: anthropic, base_url: "https://api.anthropic.com", api_key: "${ANTHROPIC_API_KEY}"}
  - {name: aws, type: bedrock, region: us-east-1, endpoint: ""}
models:
  - {name: gpt-4o-mini, provider: openai, upstream_model: gpt-4o-mini,
     price: {input_per_1k: 0.00015, output_per_1k: 0.0006}}
`
	c, err := Parse([]byte(y), env(map[string]string{"JUNCTION_ADMIN_KEY": "adm: #1", "OPENAI_API_KEY": "123"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.AdminKey != "adm: #1" || c.Providers[0].APIKey != "123" {
		t.Fatalf("expansion: admin=%q openai key=%q", c.Auth.AdminKey, c.Providers[0].APIKey)
	}
	if c.Providers[1].APIKey != "" {
		t.Fatalf("unset variable should expand to empty, got %q", c.Providers[1].APIKey)
	}
	if c.Models[0].Price.OutputPer1K != 0.0006 || c.Server.UpstreamTimeout != 10*time.Minute || c.Server.HTTP1 != HTTP1Lean {
		t.Fatalf("model price or defaults wrong: %+v %v", c.Models[0].Price, c.Server.UpstreamTimeout)
	}
}

func TestPlainEnvValueIsTyped(t *testing.T) {
	c, err := Parse([]byte("server:\n  max_body_bytes: ${MAX:-2048}\n  upstream_timeout: ${T}\n"), env(map[string]string{"T": "3s"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.MaxBodyBytes != 2048 || c.Server.UpstreamTimeout != 3*time.Second {
		t.Fatalf("got %d %v", c.Server.MaxBodyBytes, c.Server.UpstreamTimeout)
	}
}

func TestValidationReportsEveryProblemWithPath(t *testing.T) {
	y := `
server: {addr: "nope", tls: {cert_file: cert.pem}, http1: fast}
log: {level: loud}
providers:
  - {name: a, type: openai, base_url: "not a url"}
  - {name: a, type: mystery}
  - {type: anthropic}
models:
  - {name: m, provider: ghost}
  - {name: m, provider: a, price: {input_per_1k: -1, output_per_1k: 0}}
tracing: {endpoint: "localhost:4318", sample_ratio: 2}
`
	_, err := Parse([]byte(y), env(nil))
	ve, ok := err.(*ValidationError)
	if !ok {
		t.Fatalf("err = %v, want *ValidationError", err)
	}
	want := []string{
		"server.addr:", "server.tls:", `server.http1: must be "lean" or "std", not "fast"`, "log.level:", "providers[0].base_url:", "providers[1].name: \"a\" is used",
		"providers[1].type: \"mystery\"", "providers[2].name: required", "models[0].provider: \"ghost\"",
		"models[1].name: \"m\" is defined twice", "models[1].price:", "tracing.endpoint:", "tracing.sample_ratio:",
	}
	msg := ve.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %q in:\n%s", w, msg)
		}
	}
}

func TestUnknownFieldRejected(t *testing.T) {
	_, err := Parse([]byte("server: {adr: x}\n"), env(nil))
	if err == nil || !strings.Contains(err.Error(), "adr") {
		t.Fatalf("err = %v, want unknown field adr", err)
	}
}

func TestDefaultFromEnvironment(t *testing.T) {
	c := Default(env(map[string]string{"OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "ANTHROPIC_API_KEY": "ak", "AWS_REGION": "eu-west-1"}))
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Server.Addr != DefaultAddr || len(c.Providers) != 3 {
		t.Fatalf("addr=%s providers=%+v", c.Server.Addr, c.Providers)
	}
	if c.Providers[0].BaseURL != "http://127.0.0.1:1/v1" || c.Providers[2].Region != "eu-west-1" {
		t.Fatalf("providers=%+v", c.Providers)
	}
	if empty := Default(env(nil)); len(empty.Providers) != 0 {
		t.Fatalf("no env should mean no providers, got %+v", empty.Providers)
	}
}

func TestRoutesValidation(t *testing.T) {
	base := `
providers: [{name: openai, type: openai, base_url: "http://127.0.0.1:1/v1"}]
models: [{name: a, provider: openai}, {name: b, provider: openai}]
`
	c, err := Parse([]byte(base+`
routes:
  - {name: chat, deployments: [{model: a, weight: 3}, {model: openai/gpt-x}], strategy: least_outstanding, fallbacks: [b]}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Routes[0].Deployments[1].Weight != 1 || c.Router.MaxAttempts != 3 {
		t.Fatalf("defaults: %+v %+v", c.Routes[0], c.Router)
	}
	_, err = Parse([]byte(base+`
routes:
  - {name: a, deployments: [{model: ghost}], strategy: fastest, fallbacks: [a, nowhere]}
  - {name: r2, deployments: [], spill_wait: 2s}
  - {name: r3, deployments: [{model: a}], spill: b, spill_wait: -1s}
`), env(nil))
	msg := fmt.Sprint(err)
	for _, want := range []string{
		`routes[0].name: "a" is also a model name`, `routes[0].deployments[0].model: "ghost"`,
		`routes[0].strategy: "fastest"`, `routes[0].fallbacks[0]: a route cannot fall back to itself`,
		`routes[0].fallbacks[1]: "nowhere"`, `routes[1].deployments: at least one`,
		`routes[1].spill_wait: must be a positive duration, and needs spill`, `routes[2].spill_wait: must be a positive duration`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in %s", want, msg)
		}
	}
}
