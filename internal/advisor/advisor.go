// Package advisor is Junction's cost advisor: it prices one traffic
// profile under every way of serving it — per-token on demand, batch,
// provisioned model units, a self-hosted instance fleet, serverless — with
// exact decimal arithmetic, finds the volumes at which one option overtakes
// another, and recommends one by a documented decision path (see
// docs/advisor.md).
//
// It is a pure calculator over a Scenario and a price catalog: it reads no
// database and serves no HTTP. The traffic can come from a scenario file
// or from the ledger (ledger.TrafficProfile, turned into a Scenario by
// FromProfile).
package advisor

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/junctionhq/junction/internal/ledger"
)

// Result is the advisor's answer for a scenario.
type Result struct {
	Days    int            `json:"days"`
	Traffic TrafficSummary `json:"traffic"`
	// Profile is the ledger profile the traffic came from, if any.
	Profile        *ledger.Profile `json:"profile,omitempty"`
	Options        []OptionResult  `json:"options"`
	Recommendation Recommendation  `json:"recommendation"`
	// Sensitivity repeats the comparison at half and one and a half
	// times the volume.
	Sensitivity []Sensitivity `json:"sensitivity"`
}

// TrafficSummary is the traffic as the cost model used it.
type TrafficSummary struct {
	RequestsPerDay   json.Number `json:"requests_per_day"`
	RequestsPerMonth json.Number `json:"requests_per_month"`
	AvgInputTokens   json.Number `json:"avg_input_tokens"`
	AvgOutputTokens  json.Number `json:"avg_output_tokens"`
	// PeakToAverage is the busiest hour's rate over the day's mean rate.
	PeakToAverage   json.Number `json:"peak_to_average"`
	LatencyTargetMS int         `json:"latency_target_ms,omitempty"`
	// Facts are the yes/no facts that hold.
	Facts []string `json:"facts,omitempty"`
}

// OptionResult is one option priced at the scenario's volume.
type OptionResult struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// MonthlyUSD is rounded to the cent, USDPer1KRequests to a hundredth
	// of a cent; both are computed exactly before rounding.
	MonthlyUSD       json.Number `json:"monthly_usd"`
	USDPer1KRequests json.Number `json:"usd_per_1k_requests"`
	// Detail says how the cost was built.
	Detail string `json:"detail"`
	// InstancesByHour and InstanceHoursPerDay describe a fleet derived
	// from the load; ModelUnits the units bought for it.
	InstancesByHour     []int64 `json:"instances_by_hour,omitempty"`
	InstanceHoursPerDay int64   `json:"instance_hours_per_day,omitempty"`
	ModelUnits          int64   `json:"model_units,omitempty"`
	// OverCapacity, when set, says the option cannot carry the volume.
	OverCapacity string      `json:"over_capacity,omitempty"`
	Notes        []string    `json:"notes,omitempty"`
	BreakEven    []BreakEven `json:"break_even"`
}

// BreakEven is where this option and another change places.
type BreakEven struct {
	Against string `json:"against"`
	// RequestsPerDay is the first volume (rounded up to a whole request)
	// at which the cheaper of the two changes; nil with Never when that
	// does not happen.
	RequestsPerDay *int64 `json:"requests_per_day"`
	Never          bool   `json:"never,omitempty"`
	// CheaperBelow and CheaperAbove name the cheaper option on each side
	// of RequestsPerDay; with Never, CheaperBelow is the one cheaper at
	// every volume searched (empty when they always cost the same).
	CheaperBelow string `json:"cheaper_below,omitempty"`
	CheaperAbove string `json:"cheaper_above,omitempty"`
	// Crossings lists every change when a step function crosses more
	// than once.
	Crossings []int64 `json:"crossings,omitempty"`
	// SearchedTo is the highest volume examined, for step functions and
	// bounded fleets.
	SearchedTo *int64 `json:"searched_to,omitempty"`
	Summary    string `json:"summary"`
}

// Recommendation is the option the decision path picked, and why.
type Recommendation struct {
	// Option is empty when none of the options given fits the facts.
	Option     string      `json:"option"`
	Kind       string      `json:"kind,omitempty"`
	MonthlyUSD json.Number `json:"monthly_usd,omitempty"`
	Reasons    []string    `json:"reasons"`
	// FlipsBelow and FlipsAbove are the nearest volumes at which another
	// option of those the decision chose among becomes the cheaper.
	FlipsBelow *Flip `json:"flips_below,omitempty"`
	FlipsAbove *Flip `json:"flips_above,omitempty"`
}

// Flip is a volume at which the recommendation changes to another option.
type Flip struct {
	RequestsPerDay int64  `json:"requests_per_day"`
	To             string `json:"to"`
}

// Sensitivity is the comparison at Factor × the volume.
type Sensitivity struct {
	Factor         json.Number            `json:"factor"`
	RequestsPerDay json.Number            `json:"requests_per_day"`
	Cheapest       string                 `json:"cheapest"`
	Recommended    string                 `json:"recommended"`
	MonthlyUSD     map[string]json.Number `json:"monthly_usd"`
}

// Evaluate prices every option of s, finds the break-evens and
// recommends one. A scenario with problems gives a *ScenarioError listing
// each with its field path. s.FromLedger is ignored here: the caller
// resolves it (see FromProfile).
func Evaluate(s *Scenario, cat *ledger.Catalog) (*Result, error) {
	m, err := compile(s, cat)
	if err != nil {
		return nil, err
	}
	m.searches = map[[2]int]search{}
	res := &Result{Days: m.daysN, Traffic: m.summary()}
	for i, o := range m.options {
		or := m.price(o, m.volume)
		for j, other := range m.options {
			if j != i {
				or.BreakEven = append(or.BreakEven, m.breakEven(i, j, other))
			}
		}
		if or.BreakEven == nil {
			or.BreakEven = []BreakEven{}
		}
		res.Options = append(res.Options, or)
	}
	res.Recommendation = m.decide(m.volume)
	for _, f := range []string{"0.5", "1", "1.5"} {
		x := m.volume.Mul(MustDec(f))
		sv := Sensitivity{Factor: json.Number(f), RequestsPerDay: x.Short(2), MonthlyUSD: map[string]json.Number{}}
		var best *option
		for _, o := range m.options {
			sv.MonthlyUSD[o.Name] = o.fn.at(x).Number(2)
			if m.overCapacity(o, x) == "" && (best == nil || o.fn.at(x).Cmp(best.fn.at(x)) < 0) {
				best = o
			}
		}
		if best != nil {
			sv.Cheapest = best.Name
		}
		sv.Recommended = m.decide(x).Option
		res.Sensitivity = append(res.Sensitivity, sv)
	}
	return res, nil
}

func (m *model) summary() TrafficSummary {
	t := m.traffic
	s := TrafficSummary{
		RequestsPerDay:   m.volume.Short(2),
		RequestsPerMonth: m.volume.Mul(m.days).Short(0),
		AvgInputTokens:   t.AvgInputTokens.Short(1),
		AvgOutputTokens:  t.AvgOutputTokens.Short(1),
		PeakToAverage:    m.peakToAverage().Short(2),
		LatencyTargetMS:  t.LatencyTargetMS,
	}
	for _, f := range []struct {
		on   bool
		name string
	}{
		{t.CustomModel, "custom_model"}, {t.NetworkIsolation, "network_isolation"}, {t.EdgeDeployment, "edge_deployment"},
		{m.spiky(), "spiky_traffic"}, {t.GuardrailsNeeded, "guardrails_needed"}, {t.ManyModels, "many_models"},
	} {
		if f.on {
			s.Facts = append(s.Facts, f.name)
		}
	}
	return s
}

// price evaluates one option at volume x.
func (m *model) price(o *option, x Dec) OptionResult {
	monthly := o.fn.at(x)
	or := OptionResult{Name: o.Name, Kind: o.Kind, MonthlyUSD: monthly.Number(2), Detail: o.detail,
		OverCapacity: m.overCapacity(o, x), Notes: o.notes}
	if reqs := x.Mul(m.days); reqs.Sign() > 0 {
		or.USDPer1KRequests = monthly.Quo(reqs).MulInt(1000).Number(4)
	}
	switch f := o.fn.(type) {
	case fleet:
		or.InstancesByHour = f.instances(x)
		for _, n := range or.InstancesByHour {
			or.InstanceHoursPerDay += n
		}
	case unitsForLoad:
		or.ModelUnits = f.units(x)
		or.Detail = fmt.Sprintf("%d model units for the peak minute's %s tokens at %s tokens/minute per unit",
			or.ModelUnits, x.Mul(f.peakShare).Quo(IntDec(60)).Mul(f.tokensPerRequest).Round(0), f.tpmPerUnit)
	}
	return or
}

// overCapacity says why o cannot serve x requests/day, or "".
func (m *model) overCapacity(o *option, x Dec) string {
	lim, ok := o.fn.limit()
	if !ok || x.Cmp(lim) <= 0 {
		return ""
	}
	return fmt.Sprintf("the busiest hour needs more than max_instances (%d) at %s requests/day; the fleet carries at most %s",
		o.MaxInstances, thousands(x.Round(0)), thousands(lim.Round(0)))
}

// search returns the comparison of options i and j, computed once.
func (m *model) search(i, j int) (search, bool) {
	if i > j {
		s, _ := m.search(j, i)
		return s, true
	}
	k := [2]int{i, j}
	s, ok := m.searches[k]
	if !ok {
		s = compare(m.options[i].fn, m.options[j].fn, m.volume)
		m.searches[k] = s
	}
	return s, false
}

// crossings returns the volumes where the cheaper of (i, j) changes,
// with the option cheaper just above each.
func (m *model) crossings(i, j int) ([]Dec, []*option, search) {
	s, swapped := m.search(i, j)
	a, b := m.options[i], m.options[j]
	if swapped {
		a, b = b, a
	}
	xs := make([]Dec, len(s.crossings))
	above := make([]*option, len(s.crossings))
	for k, c := range s.crossings {
		xs[k] = c.at
		above[k] = a
		if c.bAbove {
			above[k] = b
		}
	}
	return xs, above, s
}

func (m *model) breakEven(i, j int, other *option) BreakEven {
	me := m.options[i]
	xs, above, s := m.crossings(i, j)
	be := BreakEven{Against: other.Name}
	if s.bounded {
		n := s.searchedTo.Ceil()
		be.SearchedTo = &n
	}
	if len(xs) == 0 {
		be.Never = true
		probe := m.volume
		if s.bounded && probe.Cmp(s.searchedTo) > 0 {
			probe = s.searchedTo
		}
		switch c := me.fn.at(probe).Cmp(other.fn.at(probe)); {
		case c < 0:
			be.CheaperBelow = me.Name
		case c > 0:
			be.CheaperBelow = other.Name
		}
		switch {
		case be.CheaperBelow == "":
			be.Summary = "never: they cost the same at every volume"
		case s.bounded:
			be.Summary = fmt.Sprintf("never up to %s requests/day: %s is cheaper throughout", thousands(strconv.FormatInt(*be.SearchedTo, 10)), be.CheaperBelow)
		default:
			be.Summary = fmt.Sprintf("never: %s is cheaper at every volume", be.CheaperBelow)
		}
		return be
	}
	first := xs[0].Ceil()
	be.RequestsPerDay = &first
	be.CheaperAbove = above[0].Name
	be.CheaperBelow = me.Name
	if above[0] == me {
		be.CheaperBelow = other.Name
	}
	be.Summary = fmt.Sprintf("%s is cheaper below %s requests/day, %s above", be.CheaperBelow, thousands(strconv.FormatInt(first, 10)), be.CheaperAbove)
	if len(xs) > 1 {
		for _, x := range xs {
			be.Crossings = append(be.Crossings, x.Ceil())
		}
		be.Summary += fmt.Sprintf(" (the step-shaped costs cross %d times; see crossings)", len(xs))
	}
	return be
}

// thousands groups the digits of an integer string: 1234567 → 1,234,567.
func thousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if frac != "" {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}

// cheapest returns the cheapest of opts at x (the first on a tie).
func cheapest(opts []*option, x Dec) *option {
	var best *option
	for _, o := range opts {
		if best == nil || o.fn.at(x).Cmp(best.fn.at(x)) < 0 {
			best = o
		}
	}
	return best
}

func sortedNames(opts []*option) []string {
	var out []string
	for _, o := range opts {
		out = append(out, o.Name)
	}
	sort.Strings(out)
	return out
}
