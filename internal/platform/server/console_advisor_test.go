package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/junctionhq/junction/internal/advisor"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// consoleScenario has three ways of serving whose costs cross: per token,
// a fixed fleet and an autoscaled one.
const consoleScenario = `{"days": 30,
 "traffic": {"requests_per_day": 100000, "avg_input_tokens": 1000, "avg_output_tokens": 200},
 "options": [
  {"kind": "on_demand", "model": "gpt-4o-mini"},
  {"name": "g5 fixed", "kind": "instances", "instance_type": "ml.g5.xlarge", "schedule": [{"instances": 2, "hours_per_day": 24}]},
  {"kind": "serverless", "compute_ms_per_request": 2000, "memory_gb": 6, "usd_per_gb_second": 0.00002}
 ]}`

// The Advisor page answers a scenario with the numbers POST
// /api/v1/advisor gives for it: each option's monthly cost and the
// volumes at which the cheaper one changes, drawn as crossing marks.
func TestConsoleAdvisorInBrowser(t *testing.T) {
	b := browser(t)
	j := start(t, &fakeopenai.Server{}, "")
	var res advisor.Result
	if err := json.Unmarshal(j.mustDo(200, "POST", "/api/v1/advisor", adminKey, consoleScenario), &res); err != nil {
		t.Fatal(err)
	}
	crossings := 0
	for _, o := range res.Options {
		for _, be := range o.BreakEven {
			crossings += len(apiCrossings(be))
		}
	}
	if len(res.Options) != 3 || crossings == 0 {
		t.Fatalf("the scenario should have three options that cross: %+v", res)
	}

	b.do(chromedp.Navigate(j.url+"/ui/advisor?"+url.Values{"scenario": {consoleScenario}}.Encode()),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
		chromedp.SendKeys(chromedp.CSS(`#key`), adminKey),
		chromedp.Click(chromedp.CSS(`#signin`)),
		chromedp.WaitVisible(chromedp.CSS(`#advisor-options`)))
	for _, o := range res.Options {
		sel := `#advisor-options tr[data-option="` + o.Name + `"] `
		if got := b.text(sel + `[data-field="monthly"]`); got != string(o.MonthlyUSD) {
			t.Errorf("%s: the page says %s a month, the API %s", o.Name, got, o.MonthlyUSD)
		}
		if got := b.text(sel + `[data-field="per-1k"]`); got != string(o.USDPer1KRequests) {
			t.Errorf("%s: the page says %s per 1K requests, the API %s", o.Name, got, o.USDPer1KRequests)
		}
	}
	// Each pair's crossings, as the API gives them (counted once, from
	// the option listed first).
	pairs := eval[map[string]string](b, `Object.fromEntries([...document.querySelectorAll('#advisor-breakeven tr[data-pair]')].map(r => [r.dataset.pair, r.querySelector('[data-field="crossings"]').textContent]))`)
	seen := 0
	for i, o := range res.Options {
		for _, be := range o.BreakEven {
			if indexOfOption(res.Options, be.Against) <= i {
				continue
			}
			var want []string
			for _, c := range apiCrossings(be) {
				want = append(want, jsonInt(c))
			}
			if got := pairs[o.Name+"|"+be.Against]; got != strings.Join(want, ", ") {
				t.Errorf("%s vs %s: the page's crossings %q, the API's %v", o.Name, be.Against, got, apiCrossings(be))
			}
			seen++
		}
	}
	if seen != len(pairs) {
		t.Errorf("the page lists %d pairs, the API %d", len(pairs), seen)
	}
	// The chart: a line per option, a mark per crossing in view, today's
	// volume ruled, and the same costs in the table under it at today's
	// volume (the API's, to the cent).
	if n := eval[int](b, `document.querySelectorAll('#breakeven g.line polyline').length`); n != 3 {
		t.Errorf("%d lines, want 3", n)
	}
	if n := eval[int](b, `document.querySelectorAll('#breakeven g.crossing').length`); n == 0 || n > crossings {
		t.Errorf("%d crossings marked; the API has %d", n, crossings)
	}
	if got := eval[string](b, `document.querySelector("#breakeven g.today text").textContent`); !strings.Contains(got, string(res.Traffic.RequestsPerDay)) {
		t.Errorf("today's rule says %q, want %s requests/day", got, res.Traffic.RequestsPerDay)
	}
	today := eval[[]string](b, `[...document.querySelectorAll('#advisor-curve tr[data-volume="`+string(res.Traffic.RequestsPerDay)+`"] td')].map(td => td.textContent)`)
	if len(today) != 5 {
		t.Fatalf("the chart's table has no row for today's volume: %v", today)
	}
	for i, o := range res.Options {
		if today[i+1] != "$"+string(o.MonthlyUSD) {
			t.Errorf("the chart's table at today's volume: %s costs %s, the API %s", o.Name, today[i+1], o.MonthlyUSD)
		}
	}
	b.screenshot("advisor")

	// A scenario with a mistake: the API's 400 and its message.
	b.do(chromedp.Navigate(j.url+"/ui/advisor?"+url.Values{"scenario": {`{"options": []}`}}.Encode()), chromedp.WaitVisible(chromedp.CSS(`#error`)))
	status, _, body := j.do("POST", "/api/v1/advisor", adminKey, `{"options": []}`)
	var apiErr struct{ Error struct{ Message string } }
	json.Unmarshal(body, &apiErr)
	if got := b.text(`#error`); status != http.StatusBadRequest || apiErr.Error.Message == "" || !strings.Contains(got, apiErr.Error.Message) {
		t.Errorf("a bad scenario: the page says %q, the API %d %s", got, status, body)
	}
}

func indexOfOption(opts []advisor.OptionResult, name string) int {
	for i, o := range opts {
		if o.Name == name {
			return i
		}
	}
	return -1
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// apiCrossings is where the API says the cheaper of a pair changes:
// requests_per_day for two straight lines, crossings for step functions.
func apiCrossings(be advisor.BreakEven) []int64 {
	if be.RequestsPerDay != nil && len(be.Crossings) == 0 {
		return []int64{*be.RequestsPerDay}
	}
	return be.Crossings
}
