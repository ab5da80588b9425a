package advisor

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/ledger"
)

func evaluate(t *testing.T, yaml string) *Result {
	t.Helper()
	s, err := ParseScenario([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Evaluate(s, ledger.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func optionResult(t *testing.T, r *Result, name string) OptionResult {
	t.Helper()
	for _, o := range r.Options {
		if o.Name == name {
			return o
		}
	}
	t.Fatalf("no option %q in %+v", name, r.Options)
	return OptionResult{}
}

func breakEven(t *testing.T, o OptionResult, against string) BreakEven {
	t.Helper()
	for _, b := range o.BreakEven {
		if b.Against == against {
			return b
		}
	}
	t.Fatalf("%s has no break-even against %q", o.Name, against)
	return BreakEven{}
}

func wantCost(t *testing.T, r *Result, name, monthly, per1k string) {
	t.Helper()
	o := optionResult(t, r, name)
	if o.MonthlyUSD.String() != monthly || o.USDPer1KRequests.String() != per1k {
		t.Errorf("%s: monthly %s, per 1k %s; want %s and %s", name, o.MonthlyUSD, o.USDPer1KRequests, monthly, per1k)
	}
}

func wantBreakEven(t *testing.T, r *Result, a, b string, at int64, cheaperAbove string) {
	t.Helper()
	be := breakEven(t, optionResult(t, r, a), b)
	if be.RequestsPerDay == nil || *be.RequestsPerDay != at || be.CheaperAbove != cheaperAbove {
		t.Errorf("%s vs %s: %+v; want %d with %s cheaper above", a, b, be, at, cheaperAbove)
	}
}

// The example of docs/advisor.md. 100,000 requests/day of 1,000 input and
// 200 output tokens over 30 days (3,000,000 requests); 8 peak hours at 2×
// the mean rate.
//
// Hourly weights: a peak hour carries 2/24 = 1/12 of the day, the other 16
// hours share the rest: (24 − 2·8) / (24·16) = 1/48 each.
func TestWorkedExample(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := evaluate(t, string(data))

	// on_demand gpt-4o-mini: (1000 × 0.00015 + 200 × 0.0006) / 1000 =
	// 0.00027 per request; × 100,000 × 30 = 810.00; per 1k: 0.27.
	wantCost(t, r, "on_demand gpt-4o-mini", "810.00", "0.2700")
	// batch: half of that.
	wantCost(t, r, "batch gpt-4o-mini", "405.00", "0.1350")
	// 2 × 20 h + 1 × 4 h = 44 instance-hours a day × 1.006 × 30 =
	// 1,327.92; per 1k: 1327.92 / 3,000 = 0.44264.
	wantCost(t, r, "g5 fixed schedule", "1327.92", "0.4426")
	// Peak hour: 100,000 / 12 / 3600 = 2.31 req/s → ⌈2.31 / 2⌉ = 2
	// instances for 8 h; other hours 100,000 / 48 / 3600 = 0.58 req/s → 1
	// for 16 h: 32 instance-hours × 1.006 × 0.7 (savings plan) × 30 =
	// 32 × 0.7042 × 30 = 676.032; per 1k: 0.225344.
	wantCost(t, r, "g5 autoscaled", "676.03", "0.2253")
	auto := optionResult(t, r, "g5 autoscaled")
	if auto.InstanceHoursPerDay != 32 || auto.InstancesByHour[0] != 2 || auto.InstancesByHour[8] != 1 {
		t.Errorf("fleet: %d instance-hours, by hour %v", auto.InstanceHoursPerDay, auto.InstancesByHour)
	}
	// serverless: 2 s × 6 GB × 0.00002 = 0.00024 per request × 3,000,000.
	wantCost(t, r, "serverless", "720.00", "0.2400")

	// Lines against a flat fleet: 0.00027 × 30 × x = 1,327.92 at
	// x = 163,940.74.
	wantBreakEven(t, r, "on_demand gpt-4o-mini", "g5 fixed schedule", 163941, "g5 fixed schedule")
	// Against the autoscaled fleet: below 86,400 requests/day (the volume
	// at which the peak hour needs a second instance: 2 req/s × 3600 × 12)
	// it runs 24 instance-hours = 507.024; 0.0081 x = 507.024 at 62,595.56.
	wantBreakEven(t, r, "on_demand gpt-4o-mini", "g5 autoscaled", 62596, "g5 autoscaled")
	// Serverless (0.0072 x) against the same steps crosses three times:
	// at 70,420 (0.0072 x = 507.024), at the jump to 676.032 at 86,400
	// (serverless costs 622.08 there), and at 676.032 / 0.0072 = 93,893.3.
	be := breakEven(t, optionResult(t, r, "g5 autoscaled"), "serverless")
	// Past 237,698 requests/day the fleet (at most 0.0029 x + 1,014.05)
	// stays below serverless, so the search is complete: no searched_to.
	if !slices.Equal(be.Crossings, []int64{70420, 86400, 93894}) || be.CheaperBelow != "serverless" || be.SearchedTo != nil {
		t.Errorf("autoscaled vs serverless: %+v", be)
	}
	// Parallel lines never cross; batch is cheaper throughout.
	if be := breakEven(t, optionResult(t, r, "batch gpt-4o-mini"), "on_demand gpt-4o-mini"); !be.Never || be.CheaperBelow != "batch gpt-4o-mini" {
		t.Errorf("batch vs on_demand: %+v", be)
	}

	// The decision: a 2 s latency target leaves batch out; no facts, so
	// volume decides, and the autoscaled fleet is cheapest. Serverless
	// takes over below 93,894; the fixed schedule above 345,600, where the
	// off-peak hours need a second instance (8 × 5 + 16 × 2 = 72
	// instance-hours = 1,521.07 > 1,327.92).
	rec := r.Recommendation
	if rec.Option != "g5 autoscaled" || rec.MonthlyUSD.String() != "676.03" {
		t.Fatalf("recommendation: %+v", rec)
	}
	if *rec.FlipsBelow != (Flip{93894, "serverless"}) || *rec.FlipsAbove != (Flip{345600, "g5 fixed schedule"}) {
		t.Errorf("flips: %+v %+v", rec.FlipsBelow, rec.FlipsAbove)
	}
	wantReason(t, rec, "batch gpt-4o-mini is left out")
	wantReason(t, rec, "past the break-even with on_demand gpt-4o-mini at 62,596 requests/day")

	// ±50%: at 50,000 serverless (360.00) beats the minimum fleet
	// (507.02); at 150,000 the fleet still needs 32 instance-hours.
	got := []string{}
	for _, s := range r.Sensitivity {
		got = append(got, s.Factor.String()+":"+s.Recommended+":"+s.MonthlyUSD["g5 autoscaled"].String())
	}
	want := []string{"0.5:serverless:507.02", "1:g5 autoscaled:676.03", "1.5:g5 autoscaled:676.03"}
	if !slices.Equal(got, want) {
		t.Errorf("sensitivity %v, want %v", got, want)
	}

	// The JSON carries the names the issue asks for.
	b, _ := json.Marshal(r)
	for _, key := range []string{`"monthly_usd":810.00`, `"usd_per_1k_requests":0.2700`, `"requests_per_day":163941`, `"break_even"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	var text bytes.Buffer
	if err := WriteText(&text, r); err != nil || !strings.Contains(text.String(), "Recommendation: g5 autoscaled ($676.03 a month)") {
		t.Errorf("text: %v\n%s", err, text.String())
	}
}

func wantReason(t *testing.T, rec Recommendation, part string) {
	t.Helper()
	for _, r := range rec.Reasons {
		if strings.Contains(r, part) {
			return
		}
	}
	t.Errorf("no reason contains %q: %q", part, rec.Reasons)
}

// Provisioned throughput for Claude 3.5 Sonnet: 19,000 per model unit
// per month. 100,000 requests/day, flat, 1,200 tokens each.
func TestProvisioned(t *testing.T) {
	const scenario = `
traffic: {requests_per_day: 100000, avg_input_tokens: 1000, avg_output_tokens: 200}
options:
  - {kind: on_demand, model: anthropic.claude-3-5-sonnet}
  - {name: pt-1, kind: provisioned, model: anthropic.claude-3-5-sonnet, model_units: 1}
  - {name: pt-load, kind: provisioned, model: anthropic.claude-3-5-sonnet, tokens_per_minute_per_unit: 50000}
`
	r := evaluate(t, scenario)
	// (1000 × 0.003 + 200 × 0.015) / 1000 = 0.006 per request × 3,000,000.
	wantCost(t, r, "on_demand anthropic.claude-3-5-sonnet", "18000.00", "6.0000")
	// One unit: 19,000; per 1k: 19,000 / 3,000 = 6.3333.
	wantCost(t, r, "pt-1", "19000.00", "6.3333")
	// Flat traffic: 100,000 / 1,440 = 69.4 requests a minute × 1,200 tokens
	// = 83,333 tokens/minute → ⌈83,333 / 50,000⌉ = 2 units = 38,000.
	wantCost(t, r, "pt-load", "38000.00", "12.6667")
	if u := optionResult(t, r, "pt-load").ModelUnits; u != 2 {
		t.Errorf("units = %d", u)
	}
	// 0.006 × 30 × x = 19,000 at x = 105,555.6.
	wantBreakEven(t, r, "on_demand anthropic.claude-3-5-sonnet", "pt-1", 105556, "pt-1")
	// A unit carries 60,000 requests/day (50,000 × 60 / (1/24 × 1,200)),
	// so per-load units cost 19,000 per 60,000 (0.317 per request-day, at
	// least) against on-demand's 0.18: never, at any volume.
	be := breakEven(t, optionResult(t, r, "on_demand anthropic.claude-3-5-sonnet"), "pt-load")
	if !be.Never || be.SearchedTo != nil || be.CheaperBelow != "on_demand anthropic.claude-3-5-sonnet" || be.Summary != "never: on_demand anthropic.claude-3-5-sonnet is cheaper at every volume" {
		t.Errorf("on_demand vs pt-load: %+v", be)
	}
	rec := r.Recommendation
	if rec.Option != "on_demand anthropic.claude-3-5-sonnet" || *rec.FlipsAbove != (Flip{105556, "pt-1"}) {
		t.Errorf("recommendation %+v", rec)
	}
	wantReason(t, rec, "below the break-even with pt-1 at 105,556 requests/day")
	if n := optionResult(t, r, "pt-1").Notes; len(n) == 0 || !strings.Contains(n[0], "6-month commitment") {
		t.Errorf("notes %q", n)
	}

	// A 31-day month prorates the monthly price: 19,000 × 31 / 30 =
	// 19,633.333….
	r = evaluate(t, "days: 31\n"+scenario)
	wantCost(t, r, "pt-1", "19633.33", "6.3333")
}

// Fleet schedules: blocks add up. "4 always on plus 4 more for 8 peak
// hours" on ml.g7e.xlarge (2.50/h): (4 × 24 + 4 × 8) = 128 instance-hours
// a day × 2.50 × 30 = 9,600; with a 30% savings plan 6,720.
func TestInstanceSchedules(t *testing.T) {
	r := evaluate(t, `
traffic: {requests_per_day: 1000000, avg_input_tokens: 500, avg_output_tokens: 500}
options:
  - name: list
    kind: instances
    instance_type: ml.g7e.xlarge
    schedule: [{instances: 4, hours_per_day: 24}, {instances: 4, hours_per_day: 8}]
  - name: plan
    kind: instances
    instance_type: ml.g7e.xlarge
    savings_plan: true
    schedule: [{instances: 4, hours_per_day: 24}, {instances: 4, hours_per_day: 8}]
  - name: own-price
    kind: instances
    usd_per_hour: 3
    savings_plan_discount: 0.5
    schedule: [{instances: 1, hours_per_day: 24}]
`)
	// per 1k: 9,600 / 30,000 = 0.32.
	wantCost(t, r, "list", "9600.00", "0.3200")
	wantCost(t, r, "plan", "6720.00", "0.2240")
	// 24 × 3 × 0.5 × 30 = 1,080.
	wantCost(t, r, "own-price", "1080.00", "0.0360")
	if be := breakEven(t, optionResult(t, r, "list"), "plan"); !be.Never || be.CheaperBelow != "plan" {
		t.Errorf("flat vs flat: %+v", be)
	}
}

// Money is exact: a price of 1.005 per 1k tokens on 1,000 tokens is
// 1.005, which rounds (half away from zero) to 1.01. In float64, 1.005 is
// 1.00499999999999989…, which would round to 1.00.
func TestExactToTheCent(t *testing.T) {
	r := evaluate(t, `
days: 1
traffic: {requests_per_day: 1, avg_input_tokens: 1000, avg_output_tokens: 0}
options:
  - {name: odd, kind: on_demand, input_per_1k: 1.005, output_per_1k: 0}
  - {name: free-batch, kind: batch, input_per_1k: 1.005, output_per_1k: 0, discount: 0}
`)
	wantCost(t, r, "odd", "1.01", "1005.0000")
	// A batch discount of 0 is allowed and is the on-demand price: the
	// lines are the same.
	if be := breakEven(t, optionResult(t, r, "odd"), "free-batch"); !be.Never || be.CheaperBelow != "" || !strings.Contains(be.Summary, "same") {
		t.Errorf("equal lines: %+v", be)
	}

	for _, tc := range []struct{ in, round2, str string }{
		{"0.1", "0.10", "0.1"},
		{"-0.005", "-0.01", "-0.005"},
		{"0.004", "0.00", "0.004"},
		{"1/3", "0.33", "0.333333333333"},
		{"2.675", "2.68", "2.675"},
	} {
		d := MustDec(tc.in)
		if d.Round(2) != tc.round2 || d.String() != tc.str {
			t.Errorf("%s: Round(2) %s, String %s; want %s, %s", tc.in, d.Round(2), d.String(), tc.round2, tc.str)
		}
	}
	if s := MustDec("0.1").Add(MustDec("0.2")).String(); s != "0.3" {
		t.Errorf("0.1 + 0.2 = %s", s)
	}
}

// The decision path, branch by branch. The base: gpt-4o-mini on demand
// (0.0081 × x a month) against an ml.g5.xlarge fleet with a savings plan
// (2 req/s per instance; 24 instance-hours = 507.02 up to 86,400
// requests/day, 32 = 676.03 up to 172,800). At 100,000 requests/day the
// fleet is cheaper (676.03 < 810.00); at 40,000 on demand is (324.00 <
// 507.02).
func TestDecisionPath(t *testing.T) {
	const fleet = `{name: fleet, kind: instances, instance_type: ml.g5.xlarge, capacity_rps_per_instance: 2, savings_plan: true}`
	const api = `{name: api, kind: on_demand, model: gpt-4o-mini}`
	for _, tc := range []struct {
		name    string
		traffic string
		options []string
		want    string
		reasons []string
	}{
		{"high steady volume", `requests_per_day: 100000`, []string{api, fleet},
			"fleet", []string{"past the break-even with api at 62,596 requests/day"}},
		{"low volume", `requests_per_day: 40000`, []string{api, fleet},
			"api", []string{"below the break-even with fleet at 62,596 requests/day", "the answer flips to fleet above 62,596"}},
		{"custom model", `{requests_per_day: 40000, custom_model: true}`, []string{api, fleet},
			"fleet", []string{"custom model", "on cost alone api would win: $324.00 a month against $507.02"}},
		{"custom model, nothing self-hosted given", `{requests_per_day: 40000, custom_model: true}`, []string{api},
			"", []string{"none of the options given fits (kinds allowed: instances, serverless)"}},
		{"network isolation", `{requests_per_day: 40000, network_isolation: true}`, []string{api, fleet},
			"fleet", []string{"network isolation"}},
		{"edge deployment", `{requests_per_day: 40000, edge_deployment: true}`, []string{api, fleet},
			"fleet", []string{"edge deployment"}},
		{"strict latency", `{requests_per_day: 40000, latency_target_ms: 300}`, []string{api, fleet},
			"fleet", []string{"strict latency target (300 ms"}},
		{"strict latency without instances", `{requests_per_day: 40000, latency_target_ms: 300}`,
			[]string{api, `{name: pt, kind: provisioned, usd_per_model_unit_month: 1000, model_units: 1}`},
			"pt", []string{"no instances option was given"}},
		{"guardrails", `{requests_per_day: 100000, guardrails_needed: true}`, []string{api, fleet},
			"api", []string{"built-in guardrails", "on cost alone fleet would win"}},
		{"many models", `{requests_per_day: 100000, many_models: true}`, []string{api, fleet},
			"api", []string{"many models"}},
		{"spiky by shape", `{requests_per_day: 100000, peak_hours: 2, peak_to_average: 4}`, []string{api, fleet},
			"api", []string{"spiky traffic (peak hour 4.00× the mean)"}},
		{"fleet over its max", `requests_per_day: 100000`, []string{api, `{name: fleet, kind: instances, usd_per_hour: 0.1, capacity_rps_per_instance: 1, max_instances: 1}`},
			"api", []string{"fleet is left out: the busiest hour needs more than max_instances (1) at 100,000 requests/day; the fleet carries at most 86,400"}},
		{"batch and a latency target", `{requests_per_day: 100000, latency_target_ms: 2000}`,
			[]string{api, `{name: batch, kind: batch, model: gpt-4o-mini}`}, "api", []string{"batch is left out"}},
		{"batch without one", `requests_per_day: 100000`,
			[]string{api, `{name: batch, kind: batch, model: gpt-4o-mini}`}, "batch", []string{"batch is the cheapest option"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			traffic := tc.traffic
			if strings.HasPrefix(traffic, "{") {
				traffic = strings.TrimSuffix(strings.TrimPrefix(traffic, "{"), "}")
			}
			y := "traffic: {avg_input_tokens: 1000, avg_output_tokens: 200, " + traffic + "}\noptions:\n"
			for _, o := range tc.options {
				y += "  - " + o + "\n"
			}
			rec := evaluate(t, y).Recommendation
			if rec.Option != tc.want {
				t.Fatalf("recommended %q, want %q; reasons %q", rec.Option, tc.want, rec.Reasons)
			}
			for _, why := range tc.reasons {
				wantReason(t, rec, why)
			}
		})
	}
}

// Bad scenarios get every problem, each naming its field.
func TestBadScenarios(t *testing.T) {
	s, err := ParseScenario([]byte(`
traffic: {requests_per_day: -5, avg_input_tokens: 100, avg_output_tokens: 10}
options:
  - {kind: on_demand, model: gpt-5}
  - {kind: serverless, compute_ms_per_request: 100, memory_gb: 2}
  - {kind: instances, instance_type: ml.x9.huge, capacity_rps_per_instance: 1}
  - {kind: provisioned, model: gpt-4o, model_units: 1}
  - {kind: rocket}
  - {kind: batch, model: gpt-4o-mini, discount: 1}
  - {kind: instances, instance_type: ml.g5.xlarge, capacity_rps_per_instance: 1, schedule: [{instances: 1, hours_per_day: 24}]}
  - {kind: instances, instance_type: ml.g5.xlarge, schedule: [{instances: 0, hours_per_day: 25}]}
  - {kind: on_demand}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Evaluate(s, ledger.Builtin())
	var se *ScenarioError
	if !asScenarioError(err, &se) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`traffic.requests_per_day: -5 must be positive`,
		`options[0].model: "gpt-5" is not in the price catalog (known: amazon.nova-lite, amazon.nova-pro, anthropic.claude-3-5-haiku,`,
		`; give input_per_1k and output_per_1k`,
		`options[1].usd_per_gb_second: required: the price catalog has no serverless price`,
		`options[2].instance_type: "ml.x9.huge" is not in the price catalog (known: ml.g7e.xlarge, ml.g7e.2xlarge, ml.g7e.8xlarge, ml.inf2.xlarge, ml.inf2.24xlarge, ml.trn1.2xlarge, ml.g5.xlarge, ml.g6.xlarge); give usd_per_hour`,
		`options[3].model: "gpt-4o" has no provisioned price in the catalog (known: anthropic.claude-3-5-sonnet); give usd_per_model_unit_month`,
		`options[4].kind: "rocket" is not one of on_demand, batch, provisioned, instances, serverless, observed`,
		`options[5].discount: 1 must be from 0 up to (not including) 1`,
		`options[6]: give schedule or capacity_rps_per_instance, not both`,
		`options[7].schedule[0].instances: 0 must be at least 1`,
		`options[7].schedule[0].hours_per_day: 25 must be more than 0 and at most 24`,
		`options[8].model: required (a catalog model id), or give input_per_1k and output_per_1k`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, strings.ReplaceAll(msg, "; ", "\n"))
		}
	}
	if se.Field() != "traffic.requests_per_day" {
		t.Errorf("first field %q", se.Field())
	}

	for _, tc := range []struct{ yaml, want string }{
		{"traffic: {requests_per_day: 10}\noptions: [{kind: on_demand, model: gpt-4o, input_price: 1}]", "field input_price not found"},
		{"traffic: {requests_per_day: ten}\noptions: []", `"ten" is not a number`},
		{"traffic: {requests_per_day: 10, peak_hours: 8, peak_to_average: 4}\noptions: [{kind: observed, usd_per_request: 1}]",
			"traffic.peak_to_average: 4 over 8 peak hours would put more than a day's traffic (32 hours' worth) into the peak"},
		{"traffic: {requests_per_day: 10, peak_to_average: 0.5}\noptions: [{kind: observed, usd_per_request: 1}]", "traffic.peak_to_average: 0.5 must be at least 1"},
		{"traffic: {requests_per_day: 10}", "options: give at least one option"},
		{"traffic: {requests_per_day: 10}\noptions: [{kind: on_demand, model: gpt-4o}]", "options[0]: on_demand prices tokens: give traffic.avg_input_tokens"},
		{"traffic: {avg_input_tokens: 1}\noptions: [{kind: on_demand, model: gpt-4o}]", "traffic.requests_per_day: required"},
		{"days: -1\ntraffic: {requests_per_day: 10}\noptions: [{kind: observed, usd_per_request: 1}]", "days: -1 must be from 1 to 366"},
		{"traffic: {requests_per_day: 10}\noptions: [{name: a, kind: observed, usd_per_request: 1}, {name: a, kind: observed, usd_per_request: 2}]",
			`options[1].name: "a" is already the name of options[0]`},
		{"traffic: {requests_per_day: 10, avg_output_tokens: 5}\noptions: [{kind: provisioned, usd_per_model_unit_month: 5}]", "options[0].model_units: required"},
	} {
		s, err := ParseScenario([]byte(tc.yaml))
		if err == nil {
			_, err = Evaluate(s, ledger.Builtin())
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\n err = %v\nwant %q", tc.yaml, err, tc.want)
		}
	}
}

func asScenarioError(err error, se **ScenarioError) bool {
	e, ok := err.(*ScenarioError)
	*se = e
	return ok
}

// The JSON form of a scenario reads the same as the YAML one, and numbers
// may be strings.
func TestScenarioJSON(t *testing.T) {
	s, err := ParseScenarioJSON([]byte(`{"traffic":{"requests_per_day":"100000","avg_input_tokens":1000,"avg_output_tokens":200},
		"options":[{"kind":"on_demand","model":"gpt-4o-mini"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Evaluate(s, ledger.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	wantCost(t, r, "on_demand gpt-4o-mini", "810.00", "0.2700")
	if _, err := ParseScenarioJSON([]byte(`{"traffic":{},"optoins":[]}`)); err == nil || !strings.Contains(err.Error(), "optoins") {
		t.Errorf("unknown field: %v", err)
	}
}

// BenchmarkEvaluate prices the docs example: five options, ten
// break-even searches (two of them over step functions), the decision
// path at three volumes.
func BenchmarkEvaluate(b *testing.B) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		b.Fatal(err)
	}
	s, err := ParseScenario(data)
	if err != nil {
		b.Fatal(err)
	}
	cat := ledger.Builtin()
	for b.Loop() {
		if _, err := Evaluate(s, cat); err != nil {
			b.Fatal(err)
		}
	}
}
