package budget

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Period is how often a budget starts over. Periods follow UTC calendar
// boundaries: a daily budget resets at 00:00 UTC, a monthly one at 00:00 UTC
// on the first of the month, whatever the zone of the time asked about.
type Period uint8

// The periods a budget can have.
const (
	Daily Period = iota + 1
	Monthly
)

// ParsePeriod reads "daily" or "monthly", as configuration spells them.
func ParsePeriod(s string) (Period, error) {
	switch s {
	case "daily":
		return Daily, nil
	case "monthly":
		return Monthly, nil
	}
	return 0, fmt.Errorf("budget: unknown period %q (want daily or monthly)", s)
}

// String returns "daily" or "monthly".
func (p Period) String() string {
	switch p {
	case Daily:
		return "daily"
	case Monthly:
		return "monthly"
	}
	return fmt.Sprintf("Period(%d)", uint8(p))
}

// Start returns the start of the period that contains t, in UTC.
func (p Period) Start(t time.Time) time.Time {
	t = t.UTC()
	switch p {
	case Daily:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case Monthly:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	panic("budget: invalid period " + p.String())
}

// End returns the end of the period that contains t, which is when a budget
// of this period resets: the start of the next one.
func (p Period) End(t time.Time) time.Time {
	s := p.Start(t)
	if p == Daily {
		return s.AddDate(0, 0, 1)
	}
	return s.AddDate(0, 1, 0)
}

// bounds returns Start(t) and End(t) without calendar arithmetic in the
// common case, for the admission path: a UTC day is an integer division of
// Unix time (which has no leap seconds), and the month is cached.
func (p Period) bounds(t time.Time) (start, end time.Time) {
	switch p {
	case Daily:
		s := t.Unix()
		d := s - ((s%86400)+86400)%86400
		return time.Unix(d, 0).UTC(), time.Unix(d+86400, 0).UTC()
	case Monthly:
		if m := lastMonth.Load(); m != nil && !t.Before(m[0]) && t.Before(m[1]) {
			return m[0], m[1]
		}
		start, end = p.Start(t), p.End(t)
		lastMonth.Store(&[2]time.Time{start, end})
		return start, end
	}
	panic("budget: invalid period " + p.String())
}

// lastMonth caches the bounds of the month last asked about.
var lastMonth atomic.Pointer[[2]time.Time]

func (p Period) valid() bool { return p == Daily || p == Monthly }

// code names the period that starts at start, for keys: "d20260521",
// "m202605".
func (p Period) code(start time.Time) string {
	if p == Daily {
		return start.Format("d20060102")
	}
	return start.Format("m200601")
}
