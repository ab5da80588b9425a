package config

import (
	"fmt"
	"time"
)

// S3 configures object storage at s3:// URIs: model artifacts, async
// inputs and outputs, job data and captured traffic (see
// docs/configuration.md). Without endpoint, region and credentials come
// from the standard AWS chain and requests go to AWS.
type S3 struct {
	// Endpoint is the base URL of an S3-compatible server (MinIO, Ceph,
	// versitygw), such as http://127.0.0.1:7070; empty means AWS.
	Endpoint string `yaml:"endpoint"`
	// Region signs requests; empty means the standard chain's
	// (AWS_REGION), else us-east-1.
	Region string `yaml:"region"`
	// PathStyle addresses buckets as ENDPOINT/BUCKET rather than
	// BUCKET.ENDPOINT, as most S3-compatible servers need.
	PathStyle bool `yaml:"path_style"`
	// AccessKeyID and SecretAccessKey (and SessionToken) are static
	// credentials; empty means the standard AWS chain (environment,
	// shared files, instance role).
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	SessionToken    string `yaml:"session_token"`
	// PartSize is the part size of multipart uploads, at least 5 MiB
	// (default 8 MiB).
	PartSize int64 `yaml:"part_size"`
}

// Async tunes the queue of asynchronous invocations (see docs/async.md).
type Async struct {
	// LeaseTTL is how long a request stays with a worker that stopped
	// renewing its lease (it died) before another try (default 30s).
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// MaxAttempts bounds the tries of one request (default 3).
	MaxAttempts int `yaml:"max_attempts"`
	// MaxInputBytes bounds an input object (default 100 MiB).
	MaxInputBytes int64 `yaml:"max_input_bytes"`
	// FileInputDirs are the directories file:// inputs may be read
	// from; none means file:// inputs are refused.
	FileInputDirs []string `yaml:"file_input_dirs"`
	// NotifyAttempts bounds the deliveries of one webhook notification
	// (default 10).
	NotifyAttempts int `yaml:"notify_attempts"`
	// Retention is how long finished requests stay listed (default 7d).
	Retention time.Duration `yaml:"retention"`
}

// validateAsync checks the s3 and async sections.
func (c *Config) validateAsync() []string {
	var p []string
	if c.S3.Endpoint != "" {
		if err := checkURL(c.S3.Endpoint); err != nil {
			p = append(p, fmt.Sprintf("s3.endpoint: %v", err))
		}
	}
	if (c.S3.AccessKeyID == "") != (c.S3.SecretAccessKey == "") {
		p = append(p, "s3: give both access_key_id and secret_access_key, or neither (for the standard AWS chain)")
	}
	if ps := c.S3.PartSize; ps != 0 && ps < 5<<20 {
		p = append(p, fmt.Sprintf("s3.part_size: %d is below S3's 5 MiB minimum part size", ps))
	}
	a := c.Async
	if a.LeaseTTL < 0 || a.MaxAttempts < 0 || a.MaxInputBytes < 0 || a.NotifyAttempts < 0 || a.Retention < 0 {
		p = append(p, "async: lease_ttl, max_attempts, max_input_bytes, notify_attempts and retention must not be negative")
	}
	if a.LeaseTTL > 0 && a.LeaseTTL < 300*time.Millisecond {
		p = append(p, "async.lease_ttl: must be at least 300ms")
	}
	for i, d := range a.FileInputDirs {
		if len(d) == 0 || d[0] != '/' {
			p = append(p, fmt.Sprintf("async.file_input_dirs[%d]: %q must be an absolute path", i, d))
		}
	}
	return p
}
