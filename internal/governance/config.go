package governance

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is the governance section of Junction's configuration.
type Config struct {
	// RedisURL (redis://[:password@]host:port/db) makes every replica that
	// names the same server share one set of limits and budgets. Empty
	// keeps them in the process's memory.
	RedisURL string `yaml:"redis_url"`
	// RedisCluster makes RedisURL name a Redis Cluster: one or more of its
	// nodes, redis://[:password@]host:port?addr=host:port&addr=... Each
	// scope's counters then live in a slot of their own, spread over the
	// masters.
	RedisCluster bool `yaml:"redis_cluster"`
	// RedisPrefix starts every Redis key Junction writes, so that several
	// Junction deployments can share a server; "junction" by default.
	RedisPrefix string `yaml:"redis_prefix"`
	// RedisTimeout bounds the Redis work of one admission; a request that
	// Redis does not answer in time is refused with 503, like one Redis
	// cannot be reached for. 500ms by default.
	RedisTimeout time.Duration `yaml:"redis_timeout"`
	// DefaultMaxTokens is the output a request that names no max_tokens is
	// assumed to produce (4096 by default); under a hard budget it is also
	// sent upstream as max_tokens, so that the assumption holds.
	DefaultMaxTokens int `yaml:"default_max_tokens"`
	// Window is what RPM and TPM are counted over: a minute. Shorter
	// windows exist for tests.
	Window time.Duration `yaml:"window"`
	// RefreshInterval is how often budgets made through the admin API are
	// read again from the database, so that every replica enforces those
	// another replica made; 10s by default.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// Leases admit the rate limits and budgets of busy scopes from slices
	// each replica takes from Redis ahead of need; off unless scopes are
	// named. They need redis_url.
	Leases LeaseConfig `yaml:"leases"`
	// Budgets cap spending per scope and period.
	Budgets []BudgetConfig `yaml:"budgets"`
	// RateLimits cap requests and tokens per minute per scope.
	RateLimits []RateLimitConfig `yaml:"rate_limits"`
	// Capacity is the total tokens per minute a model (or route, or
	// self-hosted endpoint) can serve, which reservations divide.
	Capacity []CapacityConfig `yaml:"capacity"`
	// Reservations give teams a share of a model's capacity that no one
	// else may use.
	Reservations []ReservationConfig `yaml:"reservations"`
}

// LeaseConfig is lease mode: which scopes are admitted from slices, how
// big a slice is and how long it lives.
type LeaseConfig struct {
	// Scopes are the scopes, as the rate_limits and budgets name them
	// ("global", "team:ml", "team:*"), whose limits and budgets are
	// admitted from slices. "key:*" also leases each key's own limits
	// (set with the key), which no rate_limits entry names.
	Scopes []string `yaml:"scopes"`
	// Slice is the share of a limit (its RPM and TPM) or of a budget a
	// slice takes: 0.01 by default.
	Slice float64 `yaml:"slice"`
	// Duration is how long a replica admits from one slice: 1s by
	// default, at most the window for rate limits.
	Duration time.Duration `yaml:"duration"`
}

// BudgetConfig is one budget.
type BudgetConfig struct {
	// Scope is what the budget applies to: "global", "key:ID", "team:NAME",
	// "project:TEAM/NAME", "model:NAME", "tag:NAME=VALUE", or several
	// joined by "|" (all must match). "*" as a value means each one.
	Scope string `yaml:"scope"`
	// Period is daily or monthly (UTC).
	Period string `yaml:"period"`
	// LimitUSD is the most the scope may spend in one period.
	LimitUSD float64 `yaml:"limit_usd"`
	// Mode is hard (refuse what the budget cannot cover; the default) or
	// soft (only alert).
	Mode string `yaml:"mode"`
	// Webhook, when set, receives a POST the first time in a period that
	// spend reaches the limit.
	Webhook string `yaml:"webhook"`
}

// RateLimitConfig is one rate limit.
type RateLimitConfig struct {
	// Scope is as for budgets, without "global" meaning anything other
	// than the whole gateway.
	Scope string `yaml:"scope"`
	// RPM is the most requests per minute; 0 leaves requests unlimited.
	RPM int64 `yaml:"rpm"`
	// TPM is the most tokens (input and output) per minute; 0 leaves
	// tokens unlimited.
	TPM int64 `yaml:"tpm"`
}

// CapacityConfig is a model's total capacity.
type CapacityConfig struct {
	// Model is the name clients ask for: a model, a route or a
	// self-hosted endpoint.
	Model string `yaml:"model"`
	// CapacityTPM is the tokens per minute it can serve in all.
	CapacityTPM int64 `yaml:"capacity_tpm"`
}

// ReservationConfig reserves part of a model's capacity for a team.
type ReservationConfig struct {
	Team  string `yaml:"team"`
	Model string `yaml:"model"`
	// TPM is the team's reserved share, in tokens per minute.
	TPM int64 `yaml:"tpm"`
	// MonthlyUSD is what the reservation costs a month; it is recorded in
	// the ledger day by day, attributed to the team.
	MonthlyUSD float64 `yaml:"monthly_usd"`
}

// Defaults.
const (
	DefaultPrefix          = "junction"
	DefaultMaxTokens       = 4096
	DefaultRefreshInterval = 10 * time.Second
	DefaultRedisTimeout    = 500 * time.Millisecond
	DefaultLeaseSlice      = 0.01
	DefaultLeaseDuration   = time.Second
)

func (c *Config) withDefaults() Config {
	out := *c
	if out.RedisPrefix == "" {
		out.RedisPrefix = DefaultPrefix
	}
	if out.DefaultMaxTokens == 0 {
		out.DefaultMaxTokens = DefaultMaxTokens
	}
	if out.Window == 0 {
		out.Window = time.Minute
	}
	if out.RefreshInterval == 0 {
		out.RefreshInterval = DefaultRefreshInterval
	}
	if out.RedisTimeout == 0 {
		out.RedisTimeout = DefaultRedisTimeout
	}
	if out.Leases.Slice == 0 {
		out.Leases.Slice = DefaultLeaseSlice
	}
	if out.Leases.Duration == 0 {
		out.Leases.Duration = DefaultLeaseDuration
	}
	return out
}

// Validate checks the governance section and returns every problem, each
// with its path under "governance".
func Validate(c Config) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	switch {
	case c.RedisURL == "" && c.RedisCluster:
		add("governance.redis_cluster: set redis_url to one or more of the cluster's nodes")
	case c.RedisCluster:
		if _, err := redis.ParseClusterURL(c.RedisURL); err != nil {
			add("governance.redis_url: %s", redactURLError(err))
		}
	case c.RedisURL != "":
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			add("governance.redis_url: %s", redactURLError(err))
		}
	}
	if c.RedisTimeout < 0 {
		add("governance.redis_timeout: must not be negative")
	}
	if len(c.Leases.Scopes) > 0 && c.RedisURL == "" {
		add("governance.leases: slices are taken from Redis; set redis_url (in memory every admission is local already)")
	}
	for i, sc := range c.Leases.Scopes {
		if _, err := ParseScope(sc); err != nil {
			add("governance.leases.scopes[%d]: %v", i, err)
		}
	}
	if c.Leases.Slice < 0 || c.Leases.Slice > 1 {
		add("governance.leases.slice: must be a share between 0 and 1 (0.01 takes 1%% of a limit a slice)")
	}
	if c.Leases.Duration < 0 {
		add("governance.leases.duration: must not be negative")
	}
	if strings.ContainsAny(c.RedisPrefix, "{}") {
		add("governance.redis_prefix: must not contain braces")
	}
	if c.DefaultMaxTokens < 0 {
		add("governance.default_max_tokens: must not be negative")
	}
	if c.Window < 0 || c.RefreshInterval < 0 {
		add("governance: window and refresh_interval must not be negative")
	}
	for i, b := range c.Budgets {
		at := fmt.Sprintf("governance.budgets[%d]", i)
		for _, e := range CheckBudget(b) {
			add("%s.%s", at, e)
		}
	}
	for i, l := range c.RateLimits {
		at := fmt.Sprintf("governance.rate_limits[%d]", i)
		if _, err := ParseScope(l.Scope); err != nil {
			add("%s.scope: %v", at, err)
		}
		if l.RPM < 0 || l.TPM < 0 {
			add("%s: rpm and tpm must not be negative", at)
		}
		if l.RPM == 0 && l.TPM == 0 {
			add("%s: set rpm, tpm or both", at)
		}
	}
	capacity := map[string]int64{}
	for i, cp := range c.Capacity {
		at := fmt.Sprintf("governance.capacity[%d]", i)
		switch {
		case cp.Model == "":
			add("%s.model: required", at)
		case capacity[cp.Model] != 0:
			add("%s.model: %q has its capacity set twice", at, cp.Model)
		}
		if cp.CapacityTPM <= 0 {
			add("%s.capacity_tpm: must be positive", at)
		}
		capacity[cp.Model] = cp.CapacityTPM
	}
	reserved := map[string]int64{}
	seen := map[[2]string]bool{}
	for i, r := range c.Reservations {
		at := fmt.Sprintf("governance.reservations[%d]", i)
		if !validName(r.Team) {
			add("%s.team: %q: use 1-64 letters, digits, '-', '_' or '.'", at, r.Team)
		}
		if _, ok := capacity[r.Model]; !ok {
			add("%s.model: %q has no capacity_tpm under governance.capacity; a reservation is a share of it", at, r.Model)
		}
		if seen[[2]string{r.Team, r.Model}] {
			add("%s: team %q already reserves %q", at, r.Team, r.Model)
		}
		seen[[2]string{r.Team, r.Model}] = true
		if r.TPM <= 0 {
			add("%s.tpm: must be positive", at)
		}
		if r.MonthlyUSD < 0 {
			add("%s.monthly_usd: must not be negative", at)
		}
		reserved[r.Model] += r.TPM
	}
	for _, cp := range c.Capacity {
		if total := reserved[cp.Model]; total > cp.CapacityTPM {
			add("governance.reservations: %q reserves %d TPM in all, more than its capacity_tpm %d", cp.Model, total, cp.CapacityTPM)
		}
	}
	return p
}

// CheckBudget returns the problems of one budget, each starting with the
// field it is about ("scope: ...").
func CheckBudget(b BudgetConfig) []string {
	var p []string
	if _, err := ParseScope(b.Scope); err != nil {
		p = append(p, fmt.Sprintf("scope: %v", err))
	}
	switch b.Period {
	case "daily", "monthly":
	case "":
		p = append(p, "period: required (daily or monthly)")
	default:
		p = append(p, fmt.Sprintf("period: %q is not one of daily, monthly", b.Period))
	}
	if b.LimitUSD < 0 {
		p = append(p, "limit_usd: must not be negative")
	}
	switch b.Mode {
	case "", "hard", "soft":
	default:
		p = append(p, fmt.Sprintf("mode: %q is not one of hard, soft", b.Mode))
	}
	if b.Webhook != "" {
		if u, err := url.Parse(b.Webhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p = append(p, "webhook: must be an absolute http(s) URL")
		}
	}
	return p
}

// redactURLError keeps a Redis URL's password out of a config error.
func redactURLError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "redis://"); i >= 0 {
		return msg[:i] + "(the URL)"
	}
	return msg
}
