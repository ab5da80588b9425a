package budget

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestPeriodBoundaries(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		p          Period
		at         string
		start, end string
	}{
		{Daily, "2026-05-21T13:45:00Z", "2026-05-21T00:00:00Z", "2026-05-22T00:00:00Z"},
		{Daily, "2026-05-22T00:00:00Z", "2026-05-22T00:00:00Z", "2026-05-23T00:00:00Z"},
		{Daily, "2026-05-21T23:59:59.999999999Z", "2026-05-21T00:00:00Z", "2026-05-22T00:00:00Z"},
		{Daily, "2026-05-21T22:30:00-05:00", "2026-05-22T00:00:00Z", "2026-05-23T00:00:00Z"}, // 03:30 UTC the next day
		{Daily, "2026-12-31T18:00:00Z", "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z"},
		{Daily, "2028-02-28T12:00:00Z", "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z"}, // leap year
		{Monthly, "2026-01-31T23:59:59Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"},
		{Monthly, "2026-02-28T12:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"},
		{Monthly, "2028-02-29T12:00:00Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"},
		{Monthly, "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"},
		{Monthly, "2026-12-15T08:00:00Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{Monthly, "2026-03-31T20:00:00-08:00", "2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z"}, // April in UTC
		{Monthly, "2026-06-01T05:00:00+14:00", "2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z"}, // still May in UTC
	} {
		at := utc(c.at)
		if got := c.p.Start(at); !got.Equal(utc(c.start)) || got.Location() != time.UTC {
			t.Errorf("%s.Start(%s) = %s, want %s", c.p, c.at, got, c.start)
		}
		if got := c.p.End(at); !got.Equal(utc(c.end)) {
			t.Errorf("%s.End(%s) = %s, want %s", c.p, c.at, got, c.end)
		}
	}
}

// TestPeriodBoundsFastPath checks the admission path's shortcut against the
// calendar, over random times from 1960 to 2100 in random zones.
func TestPeriodBoundsFastPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	lo, hi := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for range 100_000 {
		at := time.Unix(lo+rng.Int64N(hi-lo), rng.Int64N(1e9)).In(time.FixedZone("", (rng.IntN(53)-26)*1800))
		if rng.IntN(10) == 0 { // land on a boundary
			at = Daily.Start(at)
		}
		for _, p := range []Period{Daily, Monthly} {
			start, end := p.bounds(at)
			if !start.Equal(p.Start(at)) || !end.Equal(p.End(at)) || start.Location() != time.UTC {
				t.Fatalf("%s.bounds(%v) = %v, %v; want %v, %v", p, at, start, end, p.Start(at), p.End(at))
			}
		}
	}
}

func TestParsePeriod(t *testing.T) {
	for s, want := range map[string]Period{"daily": Daily, "monthly": Monthly} {
		if p, err := ParsePeriod(s); err != nil || p != want || p.String() != s {
			t.Errorf("ParsePeriod(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParsePeriod("weekly"); err == nil {
		t.Error("weekly parsed")
	}
}

func TestNanos(t *testing.T) {
	for _, c := range []struct {
		n    Nanos
		want string
	}{
		{0, "$0.00"},
		{Dollar + 2*Dollar/10, "$1.20"},
		{150, "$0.00000015"},
		{USD(12.5), "$12.50"},
		{-3 * Dollar, "-$3.00"},
		{1, "$0.000000001"},
		{USD(1234567.891), "$1234567.891"},
	} {
		if got := c.n.String(); got != c.want {
			t.Errorf("%d: %q, want %q", int64(c.n), got, c.want)
		}
	}
	if USD(0.15e-6) != 150 || USD(0.0025/1000) != 2500 {
		t.Errorf("per-token prices are not whole Nanos: %d, %d", USD(0.15e-6), USD(0.0025/1000))
	}
}
