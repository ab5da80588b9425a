package config

import (
	"fmt"
	"time"
)

// Capture tunes data capture, the recording of sampled invocations of
// endpoints whose config has data_capture (see docs/hosting.md).
type Capture struct {
	// Window is how long captured records gather before each endpoint
	// variant's are written as one object (default 1m).
	Window time.Duration `yaml:"window"`
	// BufferBytes bounds the captured bytes held in memory; records past
	// it are dropped and counted, never waited for (default 64 MiB).
	BufferBytes int64 `yaml:"buffer_bytes"`
}

// validateCapture checks the capture section.
func (c *Config) validateCapture() []string {
	var p []string
	if w := c.Capture.Window; w != 0 && w < 100*time.Millisecond {
		p = append(p, fmt.Sprintf("capture.window: %s must be at least 100ms", w))
	}
	if b := c.Capture.BufferBytes; b < 0 {
		p = append(p, fmt.Sprintf("capture.buffer_bytes: %d must not be negative", b))
	}
	return p
}
