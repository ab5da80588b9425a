package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting/autoscale"
	"github.com/junctionhq/junction/internal/testkit/junctiontest"
)

// TestCLISchedulesScaling drives the scaling commands against a running
// "junction serve" with the demo endpoint: a policy, a scheduled action
// added to it (and a bad one refused with the reason), the action runs and
// "scaling activities" shows the scale-out it caused, done; the action is
// then removed, and removing it again says it is not there.
func TestCLISchedulesScaling(t *testing.T) {
	j := junctiontest.Start(t, junctiontest.Options{Config: `
auth: {admin_key: "` + adminKey + `"}
log: {level: warn}
hosting: {health_interval: 100ms, stop_grace: 3s, meter_interval: 100ms, autoscale: {interval: 100ms}}
`})
	cli(t, j.URL, "", "demo", "--dir", filepath.Join(t.TempDir(), "demo-model"))
	cli(t, j.URL, "", "scaling", "set", "demo", "primary", "--min", "1", "--max", "2")

	if msg := cliFails(t, j.URL, adminKey, "scaling", "schedule", "demo", "primary", "peak", "--schedule", "cron(0 8 * * ? *) daily", "--min", "2"); !strings.Contains(msg, "scheduled_actions[0].schedule") {
		t.Fatalf("a bad schedule: %s", msg)
	}
	at := time.Now().Add(2 * time.Second).UTC().Format("2006-01-02T15:04:05")
	var p autoscale.Policy
	decode(t, cli(t, j.URL, "", "scaling", "schedule", "demo", "primary", "peak", "--schedule", "at("+at+")", "--min", "2"), &p)
	if len(p.ScheduledActions) != 1 || p.ScheduledActions[0].Name != "peak" || *p.ScheduledActions[0].MinCapacity != 2 || p.MaxCapacity != 2 {
		t.Fatalf("policy after schedule: %+v", p)
	}

	junctiontest.Eventually(t, "the scheduled scale-out, done", func() bool {
		out := cli(t, j.URL, "", "scaling", "activities", "demo")
		return strings.Contains(out, "1 -> 2") && strings.Contains(out, "Successful") && strings.Contains(out, "below min_capacity 2")
	})
	cli(t, j.URL, "", "scaling", "unschedule", "demo", "primary", "peak")
	var after autoscale.Policy
	decode(t, cli(t, j.URL, "", "scaling", "get", "demo", "primary"), &after)
	if len(after.ScheduledActions) != 0 || after.MinCapacity != 2 {
		t.Fatalf("policy after unschedule: %+v (the bounds the action set stay)", after)
	}
	if msg := cliFails(t, j.URL, adminKey, "scaling", "unschedule", "demo", "primary", "peak"); !strings.Contains(msg, "has no scheduled action peak") {
		t.Fatalf("unschedule twice: %s", msg)
	}
}
