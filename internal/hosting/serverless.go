package hosting

import (
	"fmt"
	"net/http"
	"time"
)

// A serverless variant runs no instance while idle: it starts at zero
// instances (or one, with provisioned concurrency), a call that finds it
// cold is held while one instance starts (hold.go), and an autoscaler
// takes it back to zero after an idle period. At most MaxConcurrency calls
// are admitted at once, held ones included; the rest get SageMaker's 429
// ThrottlingException. Its compute is billed per GB-second of processing
// time (memory size times the time each call took), not per instance
// hour.

// ServerlessConfig is a variant's serverless settings, as SageMaker's
// ServerlessConfig has them.
type ServerlessConfig struct {
	// MemorySizeMB is 1024 to 6144, in steps of 1024.
	MemorySizeMB int `json:"memory_size_mb"`
	// MaxConcurrency is the most calls admitted at once (1 to 200).
	MaxConcurrency int `json:"max_concurrency"`
	// ProvisionedConcurrency, when above zero, keeps an instance warm.
	ProvisionedConcurrency int `json:"provisioned_concurrency,omitempty"`
}

// ErrThrottling is SageMaker's code for a serverless endpoint above its
// maximum concurrency.
const ErrThrottling = "ThrottlingException"

// checkServerless reports the problems of a serverless variant and sets
// its instance count: one with provisioned concurrency, else none.
func checkServerless(field string, v *Variant) []string {
	var errs []string
	s := v.Serverless
	if s.MemorySizeMB < 1024 || s.MemorySizeMB > 6144 || s.MemorySizeMB%1024 != 0 {
		errs = append(errs, fmt.Sprintf("%s.serverless.memory_size_mb: %d must be 1024, 2048, 3072, 4096, 5120 or 6144", field, s.MemorySizeMB))
	}
	if s.MaxConcurrency < 1 || s.MaxConcurrency > 200 {
		errs = append(errs, fmt.Sprintf("%s.serverless.max_concurrency: %d must be between 1 and 200", field, s.MaxConcurrency))
	}
	if s.ProvisionedConcurrency < 0 || s.ProvisionedConcurrency > s.MaxConcurrency {
		errs = append(errs, fmt.Sprintf("%s.serverless.provisioned_concurrency: %d must be between 0 and max_concurrency (%d)", field, s.ProvisionedConcurrency, s.MaxConcurrency))
	}
	if v.InstanceType != "" {
		errs = append(errs, fmt.Sprintf("%s.instance_type: a serverless variant has no instance type; give serverless.memory_size_mb only", field))
	}
	v.InstanceCount = 0
	if s.ProvisionedConcurrency > 0 {
		v.InstanceCount = 1
	}
	return errs
}

// serverlessInstance is the instance shape of a serverless variant: its
// memory size, one CPU per 2 GB (at least one), no GPU, no hourly price.
func serverlessInstance(s *ServerlessConfig) InstanceType {
	cpus := float64(s.MemorySizeMB) / 2048
	if cpus < 1 {
		cpus = 1
	}
	return InstanceType{Type: serverlessType(s), CPUs: cpus, MemoryMB: s.MemorySizeMB}
}

func serverlessType(s *ServerlessConfig) string {
	return fmt.Sprintf("serverless-%dmb", s.MemorySizeMB)
}

// admit counts a call against a serverless variant's concurrency; release
// ends it. A call above MaxConcurrency is refused with 429
// ThrottlingException. Variants with instances admit every call.
func (v *variant) admit(endpoint string) (release func(), err error) {
	s := v.spec.Serverless
	if s == nil {
		return func() {}, nil
	}
	if n := v.scale.inflight.Add(1); n > int64(s.MaxConcurrency) {
		v.scale.inflight.Add(-1)
		return nil, &Error{Status: http.StatusTooManyRequests, Code: ErrThrottling, Variant: v.spec.Name,
			Message: fmt.Sprintf("Endpoint %s (serverless variant %s) is at its maximum concurrency of %d; retry shortly.", endpoint, v.spec.Name, s.MaxConcurrency)}
	}
	return func() { v.scale.inflight.Add(-1) }, nil
}

// billServerless meters one call's processing time on a serverless
// variant at the catalog's price per GB-second; the segment is written
// with the next meter tick.
func (p *plane) billServerless(endpoint string, v *variant, in string, start, end time.Time) {
	s := v.spec.Serverless
	if s == nil || !end.After(start) {
		return
	}
	g := Segment{Endpoint: endpoint, Variant: v.spec.Name, InstanceID: in, InstanceType: serverlessType(s), Start: start, End: end}
	if price := p.opts.ServerlessUSDPerGBSecond; price > 0 {
		perHour := price * float64(s.MemorySizeMB) / 1024 * 3600
		g.USDPerHour = &perHour
	}
	p.meter.bill(g)
}

// unmetered takes a serverless instance out of instance-time metering:
// its calls are billed instead.
func (in *instance) unmetered() bool {
	if in.v.spec.Serverless == nil {
		return false
	}
	in.clock.mu.Lock()
	in.clock.from = time.Time{}
	in.clock.mu.Unlock()
	return true
}
