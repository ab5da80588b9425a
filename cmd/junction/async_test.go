package main

import (
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/jobs/async"
)

func TestDescribeQueue(t *testing.T) {
	var b strings.Builder
	describeQueue(&b, &async.Stats{Endpoint: "scorer", Queued: 12, Running: 4, Succeeded: 90, Failed: 3, OldestQueuedSeconds: 65.4,
		NotificationsPending: 2, NotificationsFailed: 1})
	for _, want := range []string{"Queue depth:    12", "Oldest queued:  1m5s", "In flight:      4", "Failed:         3", "2 pending, 1 given up"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in:\n%s", want, b.String())
		}
	}
}
