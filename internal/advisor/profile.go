package advisor

import (
	"fmt"

	"github.com/junctionhq/junction/internal/ledger"
)

// ObservedName names the option FromProfile adds.
const ObservedName = "observed (ledger)"

// FromProfile fills s.Traffic's volume, token averages and daily shape
// from a ledger profile, keeping the facts and latency target s already
// has, and adds what the ledger says was spent as the option
// ObservedName (kind observed). All figures are exact: requests per day
// is requests × 86,400,000 / the span in milliseconds.
func FromProfile(s *Scenario, p *ledger.Profile) error {
	spanMS := p.To.Sub(p.Start).Milliseconds()
	if p.Requests == 0 || spanMS <= 0 {
		return &ScenarioError{Problems: []Problem{{Field: "from_ledger",
			Message: fmt.Sprintf("the ledger holds no matching requests between %s and %s", p.From.Format("2006-01-02 15:04"), p.To.Format("2006-01-02 15:04"))}}}
	}
	requests := IntDec(p.Requests)
	span := IntDec(spanMS)
	t := &s.Traffic
	t.RequestsPerDay = requests.MulInt(86_400_000).Quo(span)
	t.AvgInputTokens, t.AvgOutputTokens = IntDec(0), IntDec(0)
	if ok := p.Requests - p.Errors; ok > 0 {
		t.AvgInputTokens = IntDec(p.InputTokens).Quo(IntDec(ok))
		t.AvgOutputTokens = IntDec(p.OutputTokens).Quo(IntDec(ok))
	}
	t.HourlyShare = make([]Dec, 24)
	for h, n := range p.ByHour {
		t.HourlyShare[h] = IntDec(n)
	}
	t.PeakHours = Dec{}
	// The busiest clock hour over the mean hour of the span.
	t.PeakToAverage = IntDec(p.PeakHourRequests).Mul(span).Quo(requests.MulInt(3_600_000))
	s.Options = append([]Option{{Name: ObservedName, Kind: Observed, USDPerRequest: FloatDec(p.CostUSD).Quo(requests)}}, s.Options...)
	return nil
}
