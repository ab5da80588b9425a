package server_test

import (
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/testkit/junctiontest"
)

// startReplica starts the real junction binary ("junction serve") as a
// child process on yaml, on a free loopback port and a fresh data
// directory, and waits until it is ready. It is killed when the test ends
// if it still runs; Stop sends SIGTERM and waits for a graceful exit.
func startReplica(t testing.TB, yaml string) *junctiontest.Process {
	t.Helper()
	return junctiontest.Start(t, junctiontest.Options{Config: yaml})
}

// waitABit is the poll interval of tests that wait for the ledger.
func waitABit() { time.Sleep(25 * time.Millisecond) }
