package config

import (
	"fmt"
	"time"
)

// Batch tunes batch jobs: the OpenAI Batch API and Bedrock model
// invocation jobs (see docs/batch.md).
type Batch struct {
	// Disabled turns batch jobs off: no Files, Batches or job APIs.
	Disabled bool `yaml:"disabled"`
	// Concurrency is the most records of one model in flight at once,
	// across jobs; default 16. The pacer lowers it when the provider
	// answers 429 and raises it back as calls succeed.
	Concurrency int `yaml:"concurrency"`
	// MaxAttempts bounds the calls for one record that keeps failing with
	// a 429 or a 5xx; default 5. A record that fails for another reason is
	// not retried.
	MaxAttempts int `yaml:"max_attempts"`
	// RetryBackoff is the base of the jittered wait before a record's next
	// attempt after a 5xx, and the pause after a 429 without Retry-After;
	// default 1s.
	RetryBackoff time.Duration `yaml:"retry_backoff"`
	// MaxJobs is the most jobs one replica runs at once; default 2.
	MaxJobs int `yaml:"max_jobs"`
	// PollInterval is how often a replica looks for jobs to run, and a
	// running job for a cancel made on another replica; default 1s.
	PollInterval time.Duration `yaml:"poll_interval"`
	// RateLimits are the provider's requests per minute for a model, by
	// the model (or route) name batch records ask for. Batch records of
	// that model use at most (1 - interactive_share) of it.
	RateLimits map[string]int `yaml:"rate_limits"`
	// InteractiveShare is the share of a rate limit kept for interactive
	// traffic, 0 to 1; default 0.2.
	InteractiveShare *float64 `yaml:"interactive_share"`
	// MaxFileBytes caps a file uploaded through the Files API; default
	// 200 MB, OpenAI's limit for batch input.
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// Discount is the share taken off the on-demand price for batch
	// records, 0 to 1; default 0.5. A model's price.batch_discount wins.
	Discount *float64 `yaml:"discount"`
}

// DefaultBatchDiscount is the batch discount when the config gives none:
// half the on-demand price, as OpenAI's Batch API and Bedrock batch
// inference charge.
const DefaultBatchDiscount = 0.5

func (b *Batch) applyDefaults() {
	if b.Concurrency == 0 {
		b.Concurrency = 16
	}
	if b.MaxAttempts == 0 {
		b.MaxAttempts = 5
	}
	if b.RetryBackoff == 0 {
		b.RetryBackoff = time.Second
	}
	if b.MaxJobs == 0 {
		b.MaxJobs = 2
	}
	if b.PollInterval == 0 {
		b.PollInterval = time.Second
	}
	if b.MaxFileBytes == 0 {
		b.MaxFileBytes = 200 << 20
	}
	if b.InteractiveShare == nil {
		s := 0.2
		b.InteractiveShare = &s
	}
	if b.Discount == nil {
		d := DefaultBatchDiscount
		b.Discount = &d
	}
}

func (b *Batch) validate() []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if b.Concurrency < 1 || b.Concurrency > 4096 {
		add("batch.concurrency: must be between 1 and 4096")
	}
	if b.MaxAttempts < 1 || b.MaxAttempts > 20 {
		add("batch.max_attempts: must be between 1 and 20")
	}
	if b.RetryBackoff < 0 || b.PollInterval < 0 {
		add("batch.retry_backoff, poll_interval: must not be negative")
	}
	if b.MaxJobs < 1 {
		add("batch.max_jobs: must be at least 1")
	}
	for m, rpm := range b.RateLimits {
		if rpm < 1 {
			add("batch.rate_limits.%s: must be at least 1 request per minute", m)
		}
	}
	if s := b.InteractiveShare; s != nil && (*s < 0 || *s >= 1) {
		add("batch.interactive_share: must be at least 0 and less than 1")
	}
	if d := b.Discount; d != nil && (*d < 0 || *d > 1) {
		add("batch.discount: must be between 0 and 1")
	}
	return p
}
