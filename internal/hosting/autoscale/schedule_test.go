package autoscale

import (
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// Each schedule form's next run, from a given time.
func TestScheduleNext(t *testing.T) {
	for _, c := range []struct {
		expr, tz, after, want string
	}{
		// Saturday 2025-06-07: the next weekday at 08:00 is Monday.
		{"cron(0 8 ? * MON-FRI *)", "", "2025-06-07T09:00:00Z", "2025-06-09T08:00:00Z"},
		{"cron(0 8 ? * 2-6 *)", "", "2025-06-09T07:59:59Z", "2025-06-09T08:00:00Z"},
		{"cron(0 8 ? * 2-6 *)", "", "2025-06-09T08:00:00Z", "2025-06-10T08:00:00Z"},
		{"cron(*/15 * * * ? *)", "", "2025-06-07T09:07:30Z", "2025-06-07T09:15:00Z"},
		{"cron(5/20 * * * ? *)", "", "2025-06-07T09:26:00Z", "2025-06-07T09:45:00Z"},
		{"cron(0 0 1 JAN,JUL ? *)", "", "2025-06-07T09:00:00Z", "2025-07-01T00:00:00Z"},
		{"cron(30 2 29 2 ? *)", "", "2025-03-01T00:00:00Z", "2028-02-29T02:30:00Z"},
		{"cron(0 12 ? * SUN 2030)", "", "2025-06-07T00:00:00Z", "2030-01-06T12:00:00Z"},
		// 08:00 in Berlin is 06:00 UTC in summer.
		{"cron(0 8 * * ? *)", "Europe/Berlin", "2025-06-07T07:00:00Z", "2025-06-08T06:00:00Z"},
		{"at(2025-06-07T10:30:00)", "", "2025-06-07T09:00:00Z", "2025-06-07T10:30:00Z"},
		{"at(2025-06-07T10:30:00)", "", "2025-06-07T10:30:00Z", ""},
		// A rate counts from the epoch: every 15 minutes falls on :00, :15...
		{"rate(15 minutes)", "", "2025-06-07T09:07:30Z", "2025-06-07T09:15:00Z"},
		{"rate(1 day)", "", "2025-06-07T09:07:30Z", "2025-06-08T00:00:00Z"},
	} {
		a := ScheduledAction{Name: "a", Schedule: c.expr, Timezone: c.tz}
		got, ok := a.nextRun(utc(c.after))
		if c.want == "" {
			if ok {
				t.Errorf("%s after %s: got %s, want none", c.expr, c.after, got)
			}
			continue
		}
		if !ok || !got.Equal(utc(c.want)) {
			t.Errorf("%s (%s) after %s: got %s %v, want %s", c.expr, c.tz, c.after, got.UTC(), ok, c.want)
		}
	}
}

// A rate with a start time counts from it; nothing runs after the end.
func TestScheduleStartAndEnd(t *testing.T) {
	start, end := utc("2025-06-07T09:10:00Z"), utc("2025-06-07T10:00:00Z")
	a := ScheduledAction{Name: "a", Schedule: "rate(20 minutes)", StartTime: &start, EndTime: &end}
	var got []string
	for at := utc("2025-06-07T08:00:00Z"); ; {
		n, ok := a.nextRun(at)
		if !ok {
			break
		}
		got = append(got, n.Format("15:04"))
		at = n
	}
	if strings.Join(got, " ") != "09:10 09:30 09:50" {
		t.Fatalf("runs %v, want 09:10 09:30 09:50", got)
	}
}

func TestScheduleErrors(t *testing.T) {
	for expr, want := range map[string]string{
		"every day":                 "must be at(yyyy-mm-ddThh:mm:ss), rate(",
		"cron(0 8 * * *)":           "must have 6 fields",
		"cron(0 8 * * * *)":         "exactly one of day-of-month and day-of-week must be ?",
		"cron(0 8 ? * MON#2 *)":     "L, W and # are not supported",
		"cron(0 8 L * ? *)":         "L, W and # are not supported",
		"cron(60 8 * * ? *)":        `minutes: "60" must be from 0 to 59`,
		"cron(0 8 ? * 5-2 *)":       "the range runs backwards",
		"cron(0/0 8 * * ? *)":       "the step after / must be",
		"rate(0 minutes)":           "a whole number above 0",
		"rate(5 weeks)":             "unit minute(s), hour(s) or day(s)",
		"at(2025-06-07 10:30)":      "yyyy-mm-ddThh:mm:ss",
		"cron(0 8 * * ? 1969)":      `year: "1969" must be from 1970 to 2199`,
		"cron(0 8 ? * MON-FRI *) x": "must be at(",
	} {
		a := ScheduledAction{Name: "a", Schedule: expr, MinCapacity: new(1)}
		errs := a.validate("scheduled_actions[0]")
		if len(errs) != 1 || !strings.Contains(errs[0], want) || !strings.HasPrefix(errs[0], "scheduled_actions[0].schedule: ") {
			t.Errorf("%s: %v, want one error with %q", expr, errs, want)
		}
	}
	a := ScheduledAction{Name: "bad name", Schedule: "rate(1 hour)", Timezone: "Mars/Olympus"}
	got := strings.Join(a.validate("s"), "; ")
	for _, want := range []string{`s.name: "bad name"`, `timezone: "Mars/Olympus" is not a known time zone`, "give min_capacity, max_capacity or both"} {
		if !strings.Contains(got, want) {
			t.Errorf("%s: want %q", got, want)
		}
	}
}

// Due actions run in the order they fell due, once: after the policy is
// written (UpdatedAt) they are not due again until their next time.
func TestRunScheduled(t *testing.T) {
	p := &Policy{MinCapacity: 0, MaxCapacity: 2, UpdatedAt: utc("2025-06-09T07:00:00Z"), ScheduledActions: []ScheduledAction{
		{Name: "night", Schedule: "cron(0 20 ? * * *)", MinCapacity: new(0), MaxCapacity: new(1)},
		{Name: "morning", Schedule: "cron(0 8 ? * MON-FRI *)", MinCapacity: new(3)},
	}}
	if got := p.runScheduled(utc("2025-06-09T07:59:00Z")); got != nil {
		t.Fatalf("ran before its time: %v", got)
	}
	got := p.runScheduled(utc("2025-06-09T08:00:01Z"))
	if len(got) != 1 || !strings.Contains(got[0], "morning") || p.MinCapacity != 3 || p.MaxCapacity != 3 {
		t.Fatalf("morning: %v, min %d max %d; want min 3 and max raised to 3", got, p.MinCapacity, p.MaxCapacity)
	}
	// Both missed (Junction was down): applied in their order, night last.
	p.UpdatedAt = utc("2025-06-09T08:00:01Z")
	got = p.runScheduled(utc("2025-06-10T09:00:00Z"))
	if len(got) != 2 || !strings.Contains(got[0], "night") || !strings.Contains(got[1], "morning") || p.MinCapacity != 3 || p.MaxCapacity != 3 {
		t.Fatalf("missed runs: %v, min %d max %d", got, p.MinCapacity, p.MaxCapacity)
	}
}
