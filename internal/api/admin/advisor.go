package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/advisor"
	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/hosting/capacity"
	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// advisorBodyLimit bounds a scenario.
const advisorBodyLimit = 1 << 20

// defaultProfileWindow is how far back a profile looks without "from".
const defaultProfileWindow = 30 * 24 * time.Hour

// RegisterAdvisor adds the cost advisor's routes, each wrapped by auth
// (admin keys only):
//
//	POST /api/v1/advisor          a scenario as JSON → advisor.Result; with
//	                              "from_ledger": {model, route, tags, from, to}
//	                              the traffic comes from the ledger and the
//	                              observed spend is priced beside the options
//	GET  /api/v1/advisor/profile  ?model=&route=&tag=team=search&from=&to=
//	                              → ledger.Profile
//
// POST /api/v1/advisor?endpoint=NAME (repeatable) adds an instances option
// per self-hosted endpoint, sized by its latest capacity measurement (see
// measuredOptions); min_instances, max_instances and savings_plan in the
// query bound those options.
//
// Prices come from h.Catalog (the server's: the built-in catalog with the
// config's model prices); a scenario's explicit prices override them.
func (h *Handler) RegisterAdvisor(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	a := h.advisorAPI()
	mux.Handle("POST /api/v1/advisor", auth(http.HandlerFunc(a.advise)))
	mux.Handle("GET /api/v1/advisor/profile", auth(http.HandlerFunc(a.profile)))
}

type advisorAPI struct {
	h       *Handler
	catalog *ledger.Catalog
}

func (a advisorAPI) advise(w http.ResponseWriter, r *http.Request) {
	body, e := api.ReadBody(w, r, advisorBodyLimit)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	res, _, e := a.evaluate(r, body)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// Advice is what POST /api/v1/advisor answers, with the scenario as
// resolved (traffic from the ledger, measured endpoints as options) and
// the catalog that priced it, for drawing its costs at other volumes
// (advisor.Curve).
type Advice struct {
	Result   *advisor.Result
	Scenario *advisor.Scenario
	Catalog  *ledger.Catalog
}

// Advise answers a scenario (JSON) as POST /api/v1/advisor does, r's
// query included; the console calls it in-process.
func (h *Handler) Advise(r *http.Request, body []byte) (*Advice, *llm.Error) {
	a := h.advisorAPI()
	res, s, e := a.evaluate(r, body)
	if e != nil {
		return nil, e
	}
	return &Advice{Result: res, Scenario: s, Catalog: a.catalog}, nil
}

func (h *Handler) advisorAPI() advisorAPI {
	catalog := h.Catalog
	if catalog == nil {
		catalog = ledger.Builtin()
	}
	return advisorAPI{h: h, catalog: catalog}
}

// evaluate resolves and prices a scenario.
func (a advisorAPI) evaluate(r *http.Request, body []byte) (*advisor.Result, *advisor.Scenario, *llm.Error) {
	s, err := advisor.ParseScenarioJSON(body)
	if err != nil {
		return nil, nil, llm.BadRequest("", "%v", err)
	}
	var p *ledger.Profile
	if src := s.FromLedger; src != nil {
		if e := validTags("from_ledger.tags", src.Tags); e != nil {
			return nil, nil, e
		}
		q, e := a.profileQuery(src.Model, src.Route, src.Tags, src.From, src.To, "from_ledger.")
		if e != nil {
			return nil, nil, e
		}
		if p, err = ledger.TrafficProfile(r.Context(), a.h.DB, q); err != nil {
			return nil, nil, llm.AsError(err)
		}
		if err := advisor.FromProfile(s, p); err != nil {
			return nil, nil, scenarioError(err)
		}
	}
	measured, e := a.measuredOptions(r, s)
	if e != nil {
		return nil, nil, e
	}
	res, err := advisor.Evaluate(s, a.catalog)
	if err != nil {
		return nil, nil, scenarioError(err)
	}
	for i := range res.Options {
		if m := measured[res.Options[i].Name]; m != nil {
			res.Options[i].Notes = append([]string{m.Summary()}, res.Options[i].Notes...)
		}
	}
	res.Profile = p
	return res, s, nil
}

// measuredOptions adds to s an instances option for each endpoint the
// query names (?endpoint=NAME, repeatable), sized by the endpoint's
// capacity measurement: its instance type, and its requests per second per
// instance as capacity_rps_per_instance. With a latency target in the
// scenario only measurements at that target or a stricter one count
// (capacity measured at a looser target would overstate what an instance
// serves), the loosest of them first (capacity.Store.Latest).
// min_instances, max_instances and savings_plan in the query apply to
// these options. It returns the measurements by the options' names.
func (a advisorAPI) measuredOptions(r *http.Request, s *advisor.Scenario) (map[string]*capacity.Measurement, *llm.Error) {
	q := r.URL.Query()
	names := q["endpoint"]
	if len(names) == 0 {
		return nil, nil
	}
	var bounds advisor.Option
	if v := q.Get("min_instances"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, llm.BadRequest("min_instances", "min_instances: %q must be a whole number, 0 or more", v)
		}
		bounds.MinInstances = &n
	}
	if v := q.Get("max_instances"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, llm.BadRequest("max_instances", "max_instances: %q must be a whole number, 0 or more", v)
		}
		bounds.MaxInstances = n
	}
	if v := q.Get("savings_plan"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, llm.BadRequest("savings_plan", "savings_plan: %q must be true or false", v)
		}
		bounds.SavingsPlan = on
	}
	st := &capacity.Store{DB: a.h.DB}
	target := s.Traffic.LatencyTargetMS
	out := map[string]*capacity.Measurement{}
	for _, name := range names {
		m, err := st.Latest(r.Context(), name, target)
		if err != nil {
			return nil, llm.AsError(err)
		}
		if m == nil {
			msg := fmt.Sprintf("endpoint: %s has no capacity measurement", name)
			if target > 0 {
				msg = fmt.Sprintf("endpoint: %s has no capacity measurement at p95 within the scenario's %d ms latency target", name, target)
				if latest, _ := st.Latest(r.Context(), name, 0); latest != nil {
					msg += fmt.Sprintf(" (the latest is at %d ms)", latest.LatencyTargetMS)
				}
			}
			ms := target
			if ms <= 0 {
				ms = 500
			}
			return nil, llm.BadRequest("endpoint", "%s; run junction bench endpoint %s --latency-target %dms", msg, name, ms)
		}
		o := bounds
		o.Name, o.Kind, o.InstanceType = "endpoint "+name, advisor.Instances, m.InstanceType
		if o.CapacityRPSPerInstance, err = advisor.ParseDec(capacity.FormatRPS(m.RPSPerInstance)); err != nil {
			return nil, llm.AsError(err)
		}
		if _, ok := a.catalog.Instance(m.InstanceType); !ok {
			// A type of the hosting config, not of the price catalog:
			// priced as the hosting catalog priced it when measured.
			if m.USDPerHour <= 0 {
				return nil, llm.BadRequest("endpoint", "endpoint: %s was measured on %s, which has no price in the price catalog or the hosting config", name, m.InstanceType)
			}
			o.USDPerHour = advisor.FloatDec(m.USDPerHour)
		}
		s.Options = append(s.Options, o)
		out[o.Name] = m
	}
	return out, nil
}

func (a advisorAPI) profile(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	tags := map[string]string{}
	for _, t := range v["tag"] {
		parsed, err := keys.ParseTags(t)
		if err != nil {
			WriteError(w, r, llm.BadRequest("tag", "tag: %v", err))
			return
		}
		for k, val := range parsed {
			tags[k] = val
		}
	}
	q, e := a.profileQuery(v.Get("model"), v.Get("route"), tags, v.Get("from"), v.Get("to"), "")
	if e != nil {
		WriteError(w, r, e)
		return
	}
	p, err := ledger.TrafficProfile(r.Context(), a.h.DB, q)
	if err != nil {
		WriteError(w, r, llm.AsError(err))
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// profileQuery reads a ledger selection; from defaults to 30 days back and
// to to now. prefix is the field path of the selection in errors.
func (a advisorAPI) profileQuery(model, route string, tags map[string]string, from, to, prefix string) (ledger.ProfileQuery, *llm.Error) {
	now := a.h.now()
	f, err := ParseTime(from, now, now.Add(-defaultProfileWindow))
	if err != nil {
		return ledger.ProfileQuery{}, llm.BadRequest(prefix+"from", "%sfrom: %v", prefix, err)
	}
	t, err := ParseTime(to, now, now)
	if err != nil {
		return ledger.ProfileQuery{}, llm.BadRequest(prefix+"to", "%sto: %v", prefix, err)
	}
	if !f.Before(t) {
		return ledger.ProfileQuery{}, llm.BadRequest(prefix+"from", "%sfrom must be before %sto", prefix, prefix)
	}
	if len(tags) == 0 {
		tags = nil
	}
	return ledger.ProfileQuery{Model: strings.TrimSpace(model), Route: strings.TrimSpace(route), Tags: tags, From: f, To: t}, nil
}

func validTags(field string, tags map[string]string) *llm.Error {
	if err := keys.ValidateTags(tags); err != nil {
		return llm.BadRequest(field, "%s: %v", field, err)
	}
	return nil
}

// scenarioError answers a bad scenario with 400 naming the first field
// at fault; the message lists every problem.
func scenarioError(err error) *llm.Error {
	var se *advisor.ScenarioError
	if errors.As(err, &se) {
		return llm.BadRequest(se.Field(), "%s", se.Error())
	}
	return llm.AsError(err)
}
