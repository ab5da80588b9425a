package console

import (
	"math"
	"net/http"
	"slices"
	"strconv"

	"github.com/junctionhq/junction/internal/advisor"
	"github.com/junctionhq/junction/internal/api/admin"
)

// defaultScenario is the Advisor page's first question: the last day's
// traffic from the ledger, served per token or on an autoscaled fleet.
const defaultScenario = `{
  "from_ledger": {"from": "24h"},
  "options": [
    {"kind": "on_demand", "model": "gpt-4o-mini"},
    {"kind": "batch", "model": "gpt-4o-mini"},
    {"name": "g5 autoscaled", "kind": "instances", "instance_type": "ml.g5.xlarge",
     "capacity_rps_per_instance": 2, "min_instances": 1, "max_instances": 10}
  ]
}`

// curveSamples is how many intervals the chart's lines are sampled at;
// the table under it prints every tableEvery-th.
const (
	curveSamples = 40
	tableEvery   = 4
)

type advisorData struct {
	Scenario string
	Result   *advisor.Result
	Chart    *LineChart
	// Names are the options in the result's order, the table's columns.
	Names    []string
	Points   []curveRow
	Crossing []crossingRow
}

// curveRow is one volume of the chart's table.
type curveRow struct {
	RequestsPerDay float64
	MonthlyUSD     []float64
	Note           string
}

// crossingRow is one pair of options whose cheaper one changes.
type crossingRow struct {
	A, B      string
	Crossings []int64
	Summary   string
}

// advisorPage answers a scenario (the form's JSON, as POST
// /api/v1/advisor takes it) with the API's own handler, and draws each
// option's monthly cost against volume, the crossings marked and the
// scenario's volume ruled.
func (h *Handler) advisorPage(w http.ResponseWriter, r *http.Request) {
	d := advisorData{Scenario: r.URL.Query().Get("scenario")}
	if d.Scenario == "" {
		d.Scenario = defaultScenario
	}
	if h.Advise == nil {
		h.renderStatus(w, r, http.StatusServiceUnavailable, "advisor", page{Title: "Advisor", Error: "The advisor is not available on this server.", Data: d})
		return
	}
	adv, e := h.Advise(r, []byte(d.Scenario))
	if e != nil {
		h.renderStatus(w, r, e.Status, "advisor", page{Title: "Advisor", Error: e.Error(), Data: d})
		return
	}
	if err := d.draw(adv); err != nil {
		h.renderStatus(w, r, http.StatusBadRequest, "advisor", page{Title: "Advisor", Error: err.Error(), Data: d})
		return
	}
	h.render(w, r, "advisor", page{Title: "Advisor", Data: d})
}

// draw builds the chart and its table from the advice.
func (d *advisorData) draw(adv *admin.Advice) error {
	res := adv.Result
	d.Result = res
	today, _ := strconv.ParseFloat(string(res.Traffic.RequestsPerDay), 64)
	right := 2 * today
	index := map[string]int{}
	for i, o := range res.Options {
		d.Names = append(d.Names, o.Name)
		index[o.Name] = i
	}
	for i, o := range res.Options {
		for _, be := range o.BreakEven {
			if j, ok := index[be.Against]; ok && j > i {
				d.Crossing = append(d.Crossing, crossingRow{A: o.Name, B: be.Against, Crossings: crossingsOf(be), Summary: be.Summary})
				for _, c := range crossingsOf(be) {
					// Crossings far beyond today would squash the chart;
					// the table still lists them.
					if today <= 0 || float64(c) <= 10*today {
						right = math.Max(right, 1.1*float64(c))
					}
				}
			}
		}
	}
	if right <= 0 {
		right = 1
	}
	vols := []float64{}
	for i := 0; i <= curveSamples; i++ {
		vols = append(vols, math.Round(right*float64(i)/curveSamples))
	}
	table := map[float64]string{}
	for i := 0; i <= curveSamples; i += tableEvery {
		table[vols[i]] = ""
	}
	if today > 0 {
		vols = append(vols, today)
		table[today] = "today"
	}
	for _, c := range d.Crossing {
		for _, x := range c.Crossings {
			if float64(x) <= right {
				vols = append(vols, float64(x))
				table[float64(x)] = joinNote(table[float64(x)], c.A+" = "+c.B)
			}
		}
	}
	slices.Sort(vols)
	vols = slices.Compact(vols)
	pts, err := advisor.Curve(adv.Scenario, adv.Catalog, vols)
	if err != nil {
		return err
	}
	ys := make([][]float64, len(pts))
	for i, p := range pts {
		ys[i] = p.MonthlyUSD
		if note, ok := table[p.RequestsPerDay]; ok {
			d.Points = append(d.Points, curveRow{RequestsPerDay: p.RequestsPerDay, MonthlyUSD: p.MonthlyUSD, Note: note})
		}
	}
	d.Chart = lineChart("breakeven", "Monthly cost against requests a day", d.Names, vols, ys)
	for _, c := range d.Crossing {
		for _, x := range c.Crossings {
			if i := slices.Index(vols, float64(x)); i >= 0 {
				cost := ys[i][index[c.A]]
				d.Chart.mark(float64(x), cost, c.A+" = "+c.B+" at "+strconv.FormatInt(x, 10)+" requests/day, "+usd2(cost)+"/month",
					strconv.FormatInt(x, 10))
			}
		}
	}
	if today > 0 {
		d.Chart.rule(today, "today: "+string(res.Traffic.RequestsPerDay)+"/day")
	}
	return nil
}

// crossingsOf lists the volumes at which the cheaper of a pair changes:
// the one break-even of two straight lines, or every crossing found.
func crossingsOf(be advisor.BreakEven) []int64 {
	if len(be.Crossings) == 0 && be.RequestsPerDay != nil {
		return []int64{*be.RequestsPerDay}
	}
	return be.Crossings
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// usd2 writes a monthly cost to the cent, as the advisor does.
func usd2(v float64) string { return "$" + strconv.FormatFloat(v, 'f', 2, 64) }
