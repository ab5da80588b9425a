package advisor

import (
	"fmt"
	"strings"

	"github.com/junctionhq/junction/internal/ledger"
)

// Defaults and thresholds of the cost model and the decision path.
var (
	// DefaultDays is the length of the month.
	DefaultDays = 30
	// DefaultBatchDiscount is AWS Bedrock's batch discount ("50% cost
	// savings vs on-demand").
	DefaultBatchDiscount = MustDec("0.5")
	// StrictLatencyMS: a latency target at or below it is strict.
	StrictLatencyMS = 500
	// SpikyPeakToAverage: traffic whose peak hour carries this many times
	// the mean hour is spiky, whatever the scenario says.
	SpikyPeakToAverage = MustDec("3")
	// ProvisionedMonthDays is the month a provisioned price is quoted for;
	// a month of another length is prorated.
	ProvisionedMonthDays = IntDec(30)
)

// option is a validated option with its cost function.
type option struct {
	Option
	index  int
	fn     costFunc
	detail string
	notes  []string
}

// family groups kinds for the decision path.
func (o *option) perToken() bool {
	return o.Kind == OnDemand || o.Kind == Batch || o.Kind == Observed
}

// model is a validated scenario ready to evaluate.
type model struct {
	days    Dec
	daysN   int
	traffic Traffic
	volume  Dec   // requests per day
	w       []Dec // hourly weights: hour h runs at volume × w[h] / 3600 requests per second
	peak    Dec   // max of w
	options []*option
	// searches caches break-even searches by option index pair.
	searches map[[2]int]search
}

// peakToAverage is the busiest hour over the mean hour.
func (m *model) peakToAverage() Dec {
	p := m.peak.MulInt(24)
	if m.traffic.PeakToAverage.Set() && m.traffic.PeakToAverage.Cmp(p) > 0 {
		p = m.traffic.PeakToAverage
	}
	return p
}

func (m *model) tokensPerRequest() Dec {
	return m.traffic.AvgInputTokens.Add(m.traffic.AvgOutputTokens)
}

// compile validates s against the catalog and builds the cost functions,
// reporting every problem with its field path.
func compile(s *Scenario, cat *ledger.Catalog) (*model, error) {
	var ps problems
	m := &model{traffic: s.Traffic, daysN: s.Days}
	if m.daysN == 0 {
		m.daysN = DefaultDays
	}
	if m.daysN < 1 || m.daysN > 366 {
		ps.add("days", "%d must be from 1 to 366", s.Days)
	}
	m.days = IntDec(int64(m.daysN))
	m.shapeTraffic(&ps)
	if len(s.Options) == 0 {
		ps.add("options", "give at least one option (kinds: %s)", strings.Join(kinds, ", "))
	}
	names := map[string]int{}
	for i := range s.Options {
		o := &option{Option: s.Options[i], index: i}
		at := fmt.Sprintf("options[%d]", i)
		m.compileOption(o, at, cat, &ps)
		if o.Name == "" {
			o.Name = defaultName(o)
			for n := 2; names[o.Name] > 0; n++ {
				o.Name = fmt.Sprintf("%s #%d", defaultName(o), n)
			}
		} else if j, dup := names[o.Name]; dup {
			ps.add(at+".name", "%q is already the name of options[%d]", o.Name, j-1)
		}
		names[o.Name] = i + 1
		m.options = append(m.options, o)
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return m, nil
}

func defaultName(o *option) string {
	switch {
	case o.Model != "" && o.Kind != Instances && o.Kind != Serverless:
		return o.Kind + " " + o.Model
	case o.InstanceType != "":
		return o.Kind + " " + o.InstanceType
	}
	return o.Kind
}

// shapeTraffic validates the traffic and turns it into hourly weights.
func (m *model) shapeTraffic(ps *problems) {
	t := m.traffic
	switch {
	case !t.RequestsPerDay.Set():
		ps.add("traffic.requests_per_day", "required")
	case t.RequestsPerDay.Sign() <= 0:
		ps.add("traffic.requests_per_day", "%s must be positive", t.RequestsPerDay)
	}
	m.volume = t.RequestsPerDay
	if t.AvgInputTokens.Sign() < 0 {
		ps.add("traffic.avg_input_tokens", "%s must not be negative", t.AvgInputTokens)
	}
	if t.AvgOutputTokens.Sign() < 0 {
		ps.add("traffic.avg_output_tokens", "%s must not be negative", t.AvgOutputTokens)
	}
	if t.LatencyTargetMS < 0 {
		ps.add("traffic.latency_target_ms", "%d must not be negative", t.LatencyTargetMS)
	}
	m.w = make([]Dec, 24)
	if len(t.HourlyShare) > 0 {
		if len(t.HourlyShare) != 24 {
			ps.add("traffic.hourly_share", "give 24 shares, one per hour 0–23 (got %d)", len(t.HourlyShare))
			return
		}
		var sum Dec
		for h, s := range t.HourlyShare {
			if s.Sign() < 0 {
				ps.add(fmt.Sprintf("traffic.hourly_share[%d]", h), "%s must not be negative", s)
			}
			sum = sum.Add(s)
		}
		if sum.Sign() <= 0 {
			ps.add("traffic.hourly_share", "the shares add up to 0")
			return
		}
		for h, s := range t.HourlyShare {
			m.w[h] = s.Quo(sum)
		}
	} else {
		p := t.PeakToAverage.Or(IntDec(1))
		hours := t.PeakHours.Or(IntDec(0))
		bad := false
		if p.Cmp(IntDec(1)) < 0 {
			ps.add("traffic.peak_to_average", "%s must be at least 1 (the peak cannot be below the mean)", p)
			bad = true
		}
		if hours.Sign() < 0 || hours.Cmp(IntDec(24)) > 0 || !isInt(hours) {
			ps.add("traffic.peak_hours", "%s must be a whole number of hours from 0 to 24", hours)
			bad = true
		}
		if bad {
			return
		}
		h := int(hours.Ceil())
		day := IntDec(24)
		switch {
		case p.Cmp(IntDec(1)) == 0:
			for i := range m.w {
				m.w[i] = IntDec(1).Quo(day)
			}
		case h == 0:
			// No peak hours: the peak could come at any hour, so every
			// hour is sized for it.
			for i := range m.w {
				m.w[i] = p.Quo(day)
			}
		case p.MulInt(int64(h)).Cmp(day) > 0:
			ps.add("traffic.peak_to_average", "%s over %d peak hours would put more than a day's traffic (%s hours' worth) into the peak; lower one of them",
				p, h, p.MulInt(int64(h)))
			return
		default:
			// h hours at p × the mean; the other hours share the rest.
			off := day.Sub(p.MulInt(int64(h))).Quo(day.MulInt(int64(24 - h)))
			for i := range m.w {
				if i < h {
					m.w[i] = p.Quo(day)
				} else {
					m.w[i] = off
				}
			}
		}
	}
	m.peak = m.w[0]
	for _, w := range m.w {
		if w.Cmp(m.peak) > 0 {
			m.peak = w
		}
	}
}

func isInt(d Dec) bool { return d.rat().IsInt() }

// compileOption validates one option and builds its cost function.
func (m *model) compileOption(o *option, at string, cat *ledger.Catalog, ps *problems) {
	o.Kind = strings.TrimSpace(o.Kind)
	notNegative := func(field string, d Dec) {
		if d.Sign() < 0 {
			ps.add(at+"."+field, "%s must not be negative", d)
		}
	}
	fraction := func(field string, d Dec) bool {
		if d.Sign() < 0 || d.Cmp(IntDec(1)) >= 0 {
			ps.add(at+"."+field, "%s must be from 0 up to (not including) 1", d)
			return false
		}
		return true
	}
	needTokens := func() {
		if m.tokensPerRequest().Sign() == 0 {
			ps.add(at, "%s prices tokens: give traffic.avg_input_tokens and traffic.avg_output_tokens", o.Kind)
		}
	}
	switch o.Kind {
	case OnDemand, Batch:
		in, out, ok := m.tokenPrices(o, at, cat, ps)
		notNegative("input_per_1k", in)
		notNegative("output_per_1k", out)
		needTokens()
		if !ok {
			return
		}
		perRequest := m.traffic.AvgInputTokens.Mul(in).Add(m.traffic.AvgOutputTokens.Mul(out)).Quo(IntDec(1000))
		o.detail = fmt.Sprintf("%s in × $%s + %s out × $%s per 1k tokens", m.traffic.AvgInputTokens, in, m.traffic.AvgOutputTokens, out)
		if o.Kind == OnDemand && o.Discount.Set() {
			ps.add(at+".discount", "applies to kind batch only")
		}
		if o.Kind == Batch {
			d := o.Discount.Or(DefaultBatchDiscount)
			if !fraction("discount", d) {
				return
			}
			perRequest = perRequest.Mul(IntDec(1).Sub(d))
			o.detail += fmt.Sprintf(", less %s%% batch discount", d.MulInt(100))
			o.notes = append(o.notes, "batch jobs finish within a 24-hour window: for offline work, not interactive requests")
		}
		o.fn = linear{perRequest: perRequest, days: m.days}

	case Provisioned:
		price := o.USDPerModelUnitMonth
		if !price.Set() {
			switch p, ok := cat.LookupProvisioned(o.Model); {
			case o.Model == "":
				ps.add(at+".usd_per_model_unit_month", "required, or a model with a provisioned price in the catalog (known: %s)", provisionedIDs(cat))
				return
			case !ok:
				ps.add(at+".model", "%q has no provisioned price in the catalog (known: %s); give usd_per_model_unit_month", o.Model, provisionedIDs(cat))
				return
			default:
				price = FloatDec(p.PerModelUnitMonth)
				if p.CommitmentMonths > 0 {
					o.notes = append(o.notes, fmt.Sprintf("the catalog price assumes a %d-month commitment", p.CommitmentMonths))
				}
			}
		}
		if price.Sign() <= 0 {
			ps.add(at+".usd_per_model_unit_month", "%s must be positive", price)
			return
		}
		perUnit := price.Mul(m.days).Quo(ProvisionedMonthDays)
		switch {
		case o.ModelUnits < 0:
			ps.add(at+".model_units", "%d must be positive", o.ModelUnits)
		case o.ModelUnits > 0 && o.TokensPerMinutePerUnit.Set():
			ps.add(at, "give model_units or tokens_per_minute_per_unit, not both")
		case o.ModelUnits > 0:
			o.fn = flat{monthly: perUnit.MulInt(int64(o.ModelUnits))}
			o.detail = fmt.Sprintf("%d model units × $%s per unit-month", o.ModelUnits, price)
		case o.TokensPerMinutePerUnit.Sign() > 0:
			needTokens()
			if m.tokensPerRequest().Sign() == 0 || m.peak.Sign() == 0 {
				return
			}
			o.fn = unitsForLoad{peakShare: m.peak, tokensPerRequest: m.tokensPerRequest(), tpmPerUnit: o.TokensPerMinutePerUnit, perUnit: perUnit}
		case o.TokensPerMinutePerUnit.Set():
			ps.add(at+".tokens_per_minute_per_unit", "%s must be positive", o.TokensPerMinutePerUnit)
		default:
			ps.add(at+".model_units", "required: give model_units, or tokens_per_minute_per_unit to size the units from the load")
		}

	case Instances:
		price := o.USDPerHour
		if !price.Set() {
			switch in, ok := cat.Instance(o.InstanceType); {
			case o.InstanceType == "":
				ps.add(at+".instance_type", "required (known: %s), or give usd_per_hour", instanceTypes(cat))
				return
			case !ok:
				ps.add(at+".instance_type", "%q is not in the price catalog (known: %s); give usd_per_hour", o.InstanceType, instanceTypes(cat))
				return
			default:
				price = FloatDec(in.USDPerHour)
			}
		}
		if price.Sign() <= 0 {
			ps.add(at+".usd_per_hour", "%s must be positive", price)
			return
		}
		hourly := price
		priceText := "$" + price.String() + "/h"
		if o.SavingsPlan || o.SavingsPlanDiscount.Set() {
			d := o.SavingsPlanDiscount.Or(FloatDec(cat.SavingsPlanDiscount))
			if !fraction("savings_plan_discount", d) {
				return
			}
			hourly = price.Mul(IntDec(1).Sub(d))
			priceText += fmt.Sprintf(" less %s%% savings plan = $%s/h", d.MulInt(100), hourly)
			o.notes = append(o.notes, "a savings plan commits to 1 or 3 years of spend")
		}
		switch {
		case len(o.Schedule) > 0 && o.CapacityRPSPerInstance.Set():
			ps.add(at, "give schedule or capacity_rps_per_instance, not both")
		case len(o.Schedule) > 0:
			var hours Dec
			parts := []string{}
			for j, b := range o.Schedule {
				bat := fmt.Sprintf("%s.schedule[%d]", at, j)
				if b.Instances < 1 {
					ps.add(bat+".instances", "%d must be at least 1", b.Instances)
				}
				if b.HoursPerDay.Sign() <= 0 || b.HoursPerDay.Cmp(IntDec(24)) > 0 {
					ps.add(bat+".hours_per_day", "%s must be more than 0 and at most 24", b.HoursPerDay)
				}
				hours = hours.Add(b.HoursPerDay.MulInt(int64(b.Instances)))
				parts = append(parts, fmt.Sprintf("%d for %s h", b.Instances, b.HoursPerDay))
			}
			o.fn = flat{monthly: hours.Mul(hourly).Mul(m.days)}
			o.detail = fmt.Sprintf("%s = %s instance-hours/day at %s", strings.Join(parts, " + "), hours, priceText)
		case o.CapacityRPSPerInstance.Sign() > 0:
			lo := 1
			if o.MinInstances != nil {
				lo = *o.MinInstances
			}
			if lo < 0 {
				ps.add(at+".min_instances", "%d must not be negative", lo)
				return
			}
			if o.MaxInstances != 0 && o.MaxInstances < max(lo, 1) {
				ps.add(at+".max_instances", "%d must be at least min_instances (%d) and 1, or 0 for no bound", o.MaxInstances, lo)
				return
			}
			o.fn = newFleet(m.w, o.CapacityRPSPerInstance, lo, o.MaxInstances, hourly, m.days, m.peak)
			o.detail = fmt.Sprintf("fleet sized hour by hour for %s req/s per instance at %s", o.CapacityRPSPerInstance, priceText)
			if lo == 0 {
				o.notes = append(o.notes, "scales to zero: a request after an idle spell waits minutes for an instance to start")
			}
		case o.CapacityRPSPerInstance.Set():
			ps.add(at+".capacity_rps_per_instance", "%s must be positive", o.CapacityRPSPerInstance)
		default:
			ps.add(at+".schedule", "required: give a schedule, or capacity_rps_per_instance to size the fleet from the load")
		}

	case Serverless:
		if o.ComputeMSPerRequest.Sign() <= 0 {
			ps.add(at+".compute_ms_per_request", "required and positive (got %s)", o.ComputeMSPerRequest)
		}
		if o.MemoryGB.Sign() <= 0 {
			ps.add(at+".memory_gb", "required and positive (got %s)", o.MemoryGB)
		}
		if !o.USDPerGBSecond.Set() {
			ps.add(at+".usd_per_gb_second", "required: the price catalog has no serverless price")
		} else {
			notNegative("usd_per_gb_second", o.USDPerGBSecond)
		}
		if o.ComputeMSPerRequest.Sign() <= 0 || o.MemoryGB.Sign() <= 0 || !o.USDPerGBSecond.Set() {
			return
		}
		perRequest := o.ComputeMSPerRequest.Quo(IntDec(1000)).Mul(o.MemoryGB).Mul(o.USDPerGBSecond)
		o.fn = linear{perRequest: perRequest, days: m.days}
		o.detail = fmt.Sprintf("%s ms × %s GB × $%s per GB-second", o.ComputeMSPerRequest, o.MemoryGB, o.USDPerGBSecond)
		o.notes = append(o.notes, "scales to zero: the first request after an idle spell pays a cold start (model load), seconds to minutes for a large model")
		if o.MemoryGB.Cmp(IntDec(6)) > 0 {
			o.notes = append(o.notes, "SageMaker Serverless Inference offers at most 6 GB of memory")
		}

	case Observed:
		if !o.USDPerRequest.Set() {
			ps.add(at+".usd_per_request", "required")
			return
		}
		notNegative("usd_per_request", o.USDPerRequest)
		o.fn = linear{perRequest: o.USDPerRequest, days: m.days}
		o.detail = fmt.Sprintf("$%s per request, as the ledger recorded", o.USDPerRequest.Round(8))

	case "":
		ps.add(at+".kind", "required: one of %s", strings.Join(kinds, ", "))
	default:
		ps.add(at+".kind", "%q is not one of %s", o.Kind, strings.Join(kinds, ", "))
	}
}

// tokenPrices resolves an option's per-token prices: explicit ones
// override the catalog's.
func (m *model) tokenPrices(o *option, at string, cat *ledger.Catalog, ps *problems) (in, out Dec, ok bool) {
	in, out = o.InputPer1K, o.OutputPer1K
	if in.Set() && out.Set() {
		return in, out, true
	}
	if o.Model == "" {
		ps.add(at+".model", "required (a catalog model id), or give input_per_1k and output_per_1k")
		return in, out, false
	}
	p, found := cat.Lookup(o.Model)
	if !found {
		ps.add(at+".model", "%q is not in the price catalog (known: %s); give input_per_1k and output_per_1k", o.Model, strings.Join(cat.Models(), ", "))
		return in, out, false
	}
	return in.Or(FloatDec(p.InputPer1K)), out.Or(FloatDec(p.OutputPer1K)), true
}

func instanceTypes(cat *ledger.Catalog) string {
	var ts []string
	for _, in := range cat.Instances {
		ts = append(ts, in.Type)
	}
	return strings.Join(ts, ", ")
}

func provisionedIDs(cat *ledger.Catalog) string {
	var ids []string
	for _, p := range cat.Provisioned {
		ids = append(ids, p.ID)
	}
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}
