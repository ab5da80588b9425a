package autoscale

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // timezones resolve where the system has no zoneinfo (containers)
)

// A scheduled action's schedule, in Application Auto Scaling's three
// forms:
//
//	at(2025-06-01T08:00:00)             once, at that time
//	rate(15 minutes)                    every 15 minutes (minute, hour or day units)
//	cron(0 8 ? * MON-FRI *)             minutes hours day-of-month month day-of-week year
//
// Times are in the action's timezone (UTC unless it names another). The
// cron fields are AWS's, not Unix's: six of them, the year last,
// day-of-week 1-7 with 1 for Sunday (or SUN-SAT), and exactly one of
// day-of-month and day-of-week is "?". Lists (,), ranges (-), steps (/)
// and * are understood; L, W and # are not.

// schedule yields the times an action runs.
type schedule interface {
	// next is the first run strictly after t, or false when none is left.
	next(t time.Time) (time.Time, bool)
}

// parseSchedule reads an at(), rate() or cron() expression; times fall
// in loc.
func parseSchedule(expr string, loc *time.Location) (schedule, error) {
	m := regexp.MustCompile(`^\s*(at|rate|cron)\((.*)\)\s*$`).FindStringSubmatch(expr)
	if m == nil {
		return nil, fmt.Errorf("%q must be at(yyyy-mm-ddThh:mm:ss), rate(N minutes|hours|days) or cron(min hour day-of-month month day-of-week year)", expr)
	}
	switch m[1] {
	case "at":
		t, err := time.ParseInLocation("2006-01-02T15:04:05", strings.TrimSpace(m[2]), loc)
		if err != nil {
			return nil, fmt.Errorf("at(%s): the time must be yyyy-mm-ddThh:mm:ss", m[2])
		}
		return atSchedule(t), nil
	case "rate":
		return parseRate(m[2])
	}
	return parseCron(m[2], loc)
}

// atSchedule runs once.
type atSchedule time.Time

func (a atSchedule) next(t time.Time) (time.Time, bool) {
	at := time.Time(a)
	return at, at.After(t)
}

// rateSchedule runs every period, counted from anchor (an action's
// start_time; the Unix epoch when it has none, so a restart never shifts
// the runs).
type rateSchedule struct {
	period time.Duration
	anchor time.Time
}

func parseRate(s string) (schedule, error) {
	f := strings.Fields(s)
	bad := fmt.Errorf("rate(%s): must be rate(N unit) with N a whole number above 0 and unit minute(s), hour(s) or day(s)", s)
	if len(f) != 2 {
		return nil, bad
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1 {
		return nil, bad
	}
	unit := map[string]time.Duration{"minute": time.Minute, "minutes": time.Minute, "hour": time.Hour, "hours": time.Hour,
		"day": 24 * time.Hour, "days": 24 * time.Hour}[f[1]]
	if unit == 0 {
		return nil, bad
	}
	return &rateSchedule{period: time.Duration(n) * unit, anchor: time.Unix(0, 0).UTC()}, nil
}

func (r *rateSchedule) next(t time.Time) (time.Time, bool) {
	if t.Before(r.anchor) {
		return r.anchor, true
	}
	k := t.Sub(r.anchor)/r.period + 1
	return r.anchor.Add(k * r.period), true
}

// cronSchedule matches minutes, hours, days, months, weekdays and years
// as sets.
type cronSchedule struct {
	minute, hour, dom, month, dow uint64 // bit i set: value i matches
	anyDOM, anyDOW                bool   // the field is "?"
	years                         [2]int // first and last year, inclusive
	yearSet                       map[int]bool
	loc                           *time.Location
}

// cronField describes one field of a cron expression.
type cronField struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	monthNames = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
	dayNames   = map[string]int{"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
	cronFields = []cronField{{"minutes", 0, 59, nil}, {"hours", 0, 23, nil}, {"day-of-month", 1, 31, nil},
		{"month", 1, 12, monthNames}, {"day-of-week", 1, 7, dayNames}, {"year", 1970, 2199, nil}}
)

func parseCron(s string, loc *time.Location) (schedule, error) {
	f := strings.Fields(s)
	if len(f) != 6 {
		return nil, fmt.Errorf("cron(%s): must have 6 fields (minutes hours day-of-month month day-of-week year), has %d", s, len(f))
	}
	c := &cronSchedule{loc: loc, anyDOM: f[2] == "?", anyDOW: f[4] == "?"}
	if c.anyDOM == c.anyDOW {
		return nil, fmt.Errorf("cron(%s): exactly one of day-of-month and day-of-week must be ?", s)
	}
	sets := make([]uint64, 5)
	for i := range 5 {
		if f[i] == "?" {
			if i != 2 && i != 4 {
				return nil, fmt.Errorf("cron(%s): ? is only for day-of-month or day-of-week", s)
			}
			continue
		}
		set, err := cronFields[i].parse(f[i])
		if err != nil {
			return nil, fmt.Errorf("cron(%s): %w", s, err)
		}
		sets[i] = set
	}
	c.minute, c.hour, c.dom, c.month, c.dow = sets[0], sets[1], sets[2], sets[3], sets[4]
	c.years = [2]int{1970, 2199}
	if f[5] != "*" {
		c.yearSet = map[int]bool{}
		for _, part := range strings.Split(f[5], ",") {
			lo, hi, step, err := cronFields[5].rangeOf(part)
			if err != nil {
				return nil, fmt.Errorf("cron(%s): %w", s, err)
			}
			for y := lo; y <= hi; y += step {
				c.yearSet[y] = true
			}
		}
	}
	return c, nil
}

// parse reads a field other than the year into a set of values.
func (cf cronField) parse(s string) (uint64, error) {
	var set uint64
	for _, part := range strings.Split(s, ",") {
		lo, hi, step, err := cf.rangeOf(part)
		if err != nil {
			return 0, err
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

// rangeOf reads one list item: *, V, A-B, each optionally /STEP.
func (cf cronField) rangeOf(part string) (lo, hi, step int, err error) {
	step = 1
	if r, st, ok := strings.Cut(part, "/"); ok {
		if step, err = strconv.Atoi(st); err != nil || step < 1 {
			return 0, 0, 0, fmt.Errorf("%s: %q: the step after / must be a whole number above 0", cf.name, part)
		}
		part = r
	}
	if part == "*" {
		return cf.min, cf.max, step, nil
	}
	a, b, isRange := strings.Cut(part, "-")
	if lo, err = cf.value(a); err != nil {
		return 0, 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = cf.value(b); err != nil {
			return 0, 0, 0, err
		}
		if hi < lo {
			return 0, 0, 0, fmt.Errorf("%s: %q: the range runs backwards", cf.name, part)
		}
	} else if step > 1 {
		hi = cf.max // V/STEP: from V to the end
	}
	return lo, hi, step, nil
}

func (cf cronField) value(s string) (int, error) {
	if v, ok := cf.names[strings.ToUpper(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil && strings.ContainsAny(s, "LW#") {
		return 0, fmt.Errorf("%s: %q: L, W and # are not supported", cf.name, s)
	}
	if err != nil || v < cf.min || v > cf.max {
		return 0, fmt.Errorf("%s: %q must be from %d to %d", cf.name, s, cf.min, cf.max)
	}
	return v, nil
}

func (c *cronSchedule) yearOK(y int) bool {
	return y >= c.years[0] && y <= c.years[1] && (c.yearSet == nil || c.yearSet[y])
}

func (c *cronSchedule) dayOK(t time.Time) bool {
	if c.anyDOM {
		return c.dow&(1<<(int(t.Weekday())+1)) != 0
	}
	return c.dom&(1<<t.Day()) != 0
}

// next walks forward from the minute after t, skipping a whole year,
// month, day or hour that cannot match.
func (c *cronSchedule) next(t time.Time) (time.Time, bool) {
	t = t.In(c.loc).Truncate(time.Minute).Add(time.Minute)
	for t.Year() <= c.years[1] {
		switch {
		case !c.yearOK(t.Year()):
			t = time.Date(t.Year()+1, 1, 1, 0, 0, 0, 0, c.loc)
		case c.month&(1<<int(t.Month())) == 0:
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, c.loc)
		case !c.dayOK(t):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, c.loc)
		case c.hour&(1<<t.Hour()) == 0:
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, c.loc)
		case c.minute&(1<<t.Minute()) == 0:
			t = t.Add(time.Minute)
		default:
			return t, true
		}
	}
	return time.Time{}, false
}

// ScheduledAction is Application Auto Scaling's PutScheduledAction for a
// variant: at each time its schedule names, the variant's min_capacity
// and max_capacity become the action's, and the count is brought into the
// new range at once. A run missed while no Junction held the hosting
// lease happens when one does (once, however many were missed).
type ScheduledAction struct {
	// Name tells the variant's actions apart.
	Name string `json:"name"`
	// Schedule is at(...), rate(...) or cron(...), as above.
	Schedule string `json:"schedule"`
	// Timezone is an IANA name (default UTC) for at() and cron().
	Timezone string `json:"timezone,omitempty"`
	// StartTime and EndTime bound when the action may run; a rate()
	// counts from StartTime.
	StartTime *time.Time `json:"start_time,omitempty"`
	EndTime   *time.Time `json:"end_time,omitempty"`
	// MinCapacity and MaxCapacity are the new bounds (ScalableTargetAction);
	// one may be left out to keep the policy's.
	MinCapacity *int `json:"min_capacity,omitempty"`
	MaxCapacity *int `json:"max_capacity,omitempty"`
}

var actionName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,256}$`)

// compile parses the action's schedule, anchored at its start time.
func (a *ScheduledAction) compile() (schedule, error) {
	loc := time.UTC
	if a.Timezone != "" {
		l, err := time.LoadLocation(a.Timezone)
		if err != nil {
			return nil, fmt.Errorf("timezone: %q is not a known time zone (an IANA name such as Europe/Berlin)", a.Timezone)
		}
		loc = l
	}
	s, err := parseSchedule(a.Schedule, loc)
	if err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	if r, ok := s.(*rateSchedule); ok && a.StartTime != nil {
		r.anchor = *a.StartTime
	}
	return s, nil
}

// validate reports the action's problems, each prefixed with at.
func (a *ScheduledAction) validate(at string) []string {
	var errs []string
	if !actionName.MatchString(a.Name) {
		errs = append(errs, fmt.Sprintf("%s.name: %q must be 1 to 256 letters, digits, '.', '_' or '-'", at, a.Name))
	}
	if _, err := a.compile(); err != nil {
		errs = append(errs, fmt.Sprintf("%s.%v", at, err))
	}
	if a.MinCapacity == nil && a.MaxCapacity == nil {
		errs = append(errs, at+": give min_capacity, max_capacity or both")
	}
	for name, c := range map[string]*int{"min_capacity": a.MinCapacity, "max_capacity": a.MaxCapacity} {
		if c != nil && (*c < 0 || *c > 64 || name == "max_capacity" && *c < 1) {
			errs = append(errs, fmt.Sprintf("%s.%s: %d must be between %d and 64", at, name, *c, map[string]int{"min_capacity": 0, "max_capacity": 1}[name]))
		}
	}
	if a.MinCapacity != nil && a.MaxCapacity != nil && *a.MaxCapacity < *a.MinCapacity {
		errs = append(errs, fmt.Sprintf("%s.max_capacity: %d must not be below min_capacity (%d)", at, *a.MaxCapacity, *a.MinCapacity))
	}
	if a.StartTime != nil && a.EndTime != nil && !a.EndTime.After(*a.StartTime) {
		errs = append(errs, at+".end_time: must be after start_time")
	}
	return errs
}

// nextRun is the action's first run strictly after t, within its start
// and end times.
func (a *ScheduledAction) nextRun(t time.Time) (time.Time, bool) {
	s, err := a.compile()
	if err != nil {
		return time.Time{}, false
	}
	if a.StartTime != nil && t.Before(*a.StartTime) {
		t = a.StartTime.Add(-time.Nanosecond)
	}
	n, ok := s.next(t)
	if !ok || a.EndTime != nil && n.After(*a.EndTime) {
		return time.Time{}, false
	}
	return n, true
}

// runScheduled applies to p every scheduled action due by now that has
// not run since p was last written (UpdatedAt), in the order they fell
// due, and says what each did; nil when none was due.
func (p *Policy) runScheduled(now time.Time) []string {
	type due struct {
		at time.Time
		a  *ScheduledAction
	}
	var ds []due
	for i := range p.ScheduledActions {
		a := &p.ScheduledActions[i]
		if n, ok := a.nextRun(p.UpdatedAt); ok && !n.After(now) {
			ds = append(ds, due{n, a})
		}
	}
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].at.Before(ds[j].at) })
	var out []string
	for _, d := range ds {
		oldMin, oldMax := p.MinCapacity, p.MaxCapacity
		if c := d.a.MinCapacity; c != nil {
			p.MinCapacity = *c
			p.MaxCapacity = max(p.MaxCapacity, *c)
		}
		if c := d.a.MaxCapacity; c != nil {
			p.MaxCapacity = *c
			p.MinCapacity = min(p.MinCapacity, *c)
		}
		out = append(out, fmt.Sprintf("scheduled action %s (%s, due %s): min_capacity %d -> %d, max_capacity %d -> %d",
			d.a.Name, d.a.Schedule, d.at.UTC().Format(time.RFC3339), oldMin, p.MinCapacity, oldMax, p.MaxCapacity))
	}
	return out
}
