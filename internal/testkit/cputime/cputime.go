// Package cputime reads the CPU time the test process has used, for
// benchmarks that report CPU per operation (their own work, the system
// calls and the goroutines they wake included) beside wall time.
package cputime

import (
	"syscall"
	"time"
)

// Process is the user and system CPU time this process has used so far;
// zero if the system cannot say.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
