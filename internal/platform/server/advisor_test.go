package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/store"
)

// advisorServer serves the admin API with the advisor routes over a real
// SQLite database whose ledger holds recs, written by the ledger writer.
// (It builds its own mux because server.go does not register the advisor
// yet.)
func advisorServer(t *testing.T, now time.Time, recs []ledger.Record) string {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "junction.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ks, err := keys.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Ensure(ctx, "admin", adminKey); err != nil {
		t.Fatal(err)
	}
	w, err := ledger.NewWriter(ctx, db, ledger.Options{FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	h := &admin.Handler{Keys: ks, DB: db, Now: func() time.Time { return now }}
	auth := func(next http.Handler) http.Handler { return api.Authenticate(ks, true, admin.WriteError, next) }
	mux := http.NewServeMux()
	h.Register(mux, auth)
	h.RegisterAdvisor(mux, auth)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func advisorDo(t *testing.T, method, u, key, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// Ten days of search-team traffic on gpt-4o-mini: each day 40 requests
// at 14:00 UTC and 8 at 02:00, each of 1,000 input and 200 output tokens,
// costing 0.00027 (the catalog price), plus one request from another team
// each day. 480 requests over 10 days = 48 a day; 480 × 0.00027 = 0.1296
// spent, 0.3888 over a 30-day month. The busiest clock hour holds 40
// requests against 480 / 240 = 2 a mean hour: peak-to-average 20.
func advisorLedger(start time.Time) []ledger.Record {
	var recs []ledger.Record
	add := func(ts time.Time, team string) {
		cost := 0.00027
		recs = append(recs, ledger.Record{Time: ts, RequestID: "r" + ts.Format("0102150405.000") + team, KeyID: "key_1", KeyName: "search",
			Tags: map[string]string{"team": team}, Surface: "openai", Model: "gpt-4o-mini", Provider: "openai",
			UpstreamModel: "gpt-4o-mini-2024-07-18", InputTokens: 1000, OutputTokens: 200, Status: 200, LatencyMS: 300, CostUSD: &cost})
	}
	for d := 0; d < 10; d++ {
		day := start.Add(time.Duration(d) * 24 * time.Hour)
		for i := 0; i < 40; i++ {
			add(day.Add(14*time.Hour+time.Duration(i)*time.Second), "search")
		}
		for i := 0; i < 8; i++ {
			add(day.Add(2*time.Hour+time.Duration(i)*time.Second), "search")
		}
		add(day.Add(5*time.Hour), "ads")
	}
	return recs
}

func TestAdvisorAPI(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	now := start.Add(10 * 24 * time.Hour)
	base := advisorServer(t, now, advisorLedger(start))

	// The profile of the search team's traffic over the default 30 days
	// back from now, trimmed to the first record: 10 days.
	q := url.Values{"model": {"gpt-4o-mini"}, "tag": {"team=search"}}
	status, b := advisorDo(t, "GET", base+"/api/v1/advisor/profile?"+q.Encode(), adminKey, "")
	var p ledger.Profile
	if status != 200 || json.Unmarshal(b, &p) != nil {
		t.Fatalf("profile: %d %s", status, b)
	}
	if p.Requests != 480 || p.Days != 10 || p.RequestsPerDay != 48 || p.PeakHourRequests != 40 || p.PeakToAverage != 20 ||
		p.ByHour[14] != 400 || p.ByHour[2] != 80 || p.AvgInputTokens != 1000 {
		t.Errorf("profile: %+v", p)
	}

	// Advice from the ledger: the observed spend against an ml.g6.xlarge
	// fleet (0.80/h, 2 req/s an instance; 1 instance every hour at this
	// volume: 24 × 0.80 × 30 = 576.00). The observed line costs 0.0081 a
	// month per request-day (0.3888 / 48). The fleet grows with the load:
	// 14:00 carries 5/6 of the day, 02:00 1/6, so at x requests/day it
	// runs 22 + ⌈x / 8,640⌉ + ⌈x / 43,200⌉ instance-hours, 24.00 a month
	// each. At x = 115,555.6 the line reaches 936.00 = 39 instance-hours
	// (22 + 14 + 3): break-even at 115,556 requests/day. A peak 20× the
	// mean is spiky: per-token stays.
	body := `{"from_ledger": {"model": "gpt-4o-mini", "tags": {"team": "search"}, "from": "2026-03-01"},
		"options": [{"name": "g6", "kind": "instances", "instance_type": "ml.g6.xlarge", "capacity_rps_per_instance": 2}]}`
	status, b = advisorDo(t, "POST", base+"/api/v1/advisor", adminKey, body)
	var res struct {
		Traffic struct {
			RequestsPerDay json.Number `json:"requests_per_day"`
			Facts          []string    `json:"facts"`
		} `json:"traffic"`
		Profile *ledger.Profile `json:"profile"`
		Options []struct {
			Name             string      `json:"name"`
			MonthlyUSD       json.Number `json:"monthly_usd"`
			USDPer1KRequests json.Number `json:"usd_per_1k_requests"`
			BreakEven        []struct {
				Against        string `json:"against"`
				RequestsPerDay *int64 `json:"requests_per_day"`
			} `json:"break_even"`
		} `json:"options"`
		Recommendation struct {
			Option  string   `json:"option"`
			Reasons []string `json:"reasons"`
		} `json:"recommendation"`
		Sensitivity []json.RawMessage `json:"sensitivity"`
	}
	if status != 200 || json.Unmarshal(b, &res) != nil {
		t.Fatalf("advise from ledger: %d %s", status, b)
	}
	if len(res.Options) != 2 || res.Options[0].Name != "observed (ledger)" || res.Options[0].MonthlyUSD != "0.39" ||
		res.Options[0].USDPer1KRequests != "0.2700" || res.Options[1].MonthlyUSD != "576.00" {
		t.Fatalf("options: %s", b)
	}
	if be := res.Options[0].BreakEven[0]; be.Against != "g6" || be.RequestsPerDay == nil || *be.RequestsPerDay != 115556 {
		t.Errorf("break-even: %+v", be)
	}
	if res.Traffic.RequestsPerDay != "48" || res.Profile == nil || res.Profile.Requests != 480 || res.Recommendation.Option != "observed (ledger)" ||
		len(res.Sensitivity) != 3 {
		t.Errorf("result: %s", b)
	}

	// A scenario without the ledger.
	body = `{"traffic": {"requests_per_day": 100000, "avg_input_tokens": 1000, "avg_output_tokens": 200},
		"options": [{"kind": "on_demand", "model": "gpt-4o-mini"},
		            {"kind": "instances", "instance_type": "ml.g5.xlarge", "schedule": [{"instances": 2, "hours_per_day": 20}, {"instances": 1, "hours_per_day": 4}]}]}`
	status, b = advisorDo(t, "POST", base+"/api/v1/advisor", adminKey, body)
	if status != 200 || !strings.Contains(string(b), `"monthly_usd": 810.00`) || !strings.Contains(string(b), `"monthly_usd": 1327.92`) ||
		!strings.Contains(string(b), `"requests_per_day": 163941`) {
		t.Fatalf("scenario: %d %s", status, b)
	}

	// Bad input names the field.
	for _, tc := range []struct {
		method, path, body, param, message string
	}{
		{"POST", "/api/v1/advisor", `{"traffic": {"requests_per_day": 10, "avg_input_tokens": 1}, "options": [{"kind": "instances", "instance_type": "ml.x9.huge", "capacity_rps_per_instance": 1}]}`,
			"options[0].instance_type", `options[0].instance_type: "ml.x9.huge" is not in the price catalog (known: ml.g7e.xlarge`},
		{"POST", "/api/v1/advisor", `{"traffic": {"requests_per_day": -1}, "options": [{"kind": "on_demand", "model": "gpt-4o"}]}`,
			"traffic.requests_per_day", "traffic.requests_per_day: -1 must be positive"},
		{"POST", "/api/v1/advisor", `{"from_ledger": {"model": "nobody"}, "options": []}`, "from_ledger", "the ledger holds no matching requests"},
		{"POST", "/api/v1/advisor", `{"from_ledger": {"from": "yesterday-ish"}}`, "from_ledger.from", "from_ledger.from:"},
		{"POST", "/api/v1/advisor", `{"trafic": {}}`, "", `unknown field "trafic"`},
		{"GET", "/api/v1/advisor/profile?tag=team", "", "tag", `tag "team" must be name=value`},
		{"GET", "/api/v1/advisor/profile?from=2026-03-05&to=2026-03-01", "", "from", "from must be before to"},
	} {
		status, b := advisorDo(t, tc.method, base+tc.path, adminKey, tc.body)
		var e struct {
			Error struct {
				Message string `json:"message"`
				Param   string `json:"param"`
			} `json:"error"`
		}
		json.Unmarshal(b, &e)
		if status != 400 || e.Error.Param != tc.param || !strings.Contains(e.Error.Message, tc.message) {
			t.Errorf("%s %s %s: %d %s; want 400, param %q, message with %q", tc.method, tc.path, tc.body, status, b, tc.param, tc.message)
		}
	}

	// Admin keys only.
	if status, _ := advisorDo(t, "POST", base+"/api/v1/advisor", "", "{}"); status != 401 {
		t.Errorf("no key: %d", status)
	}
}
