package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/governance"
	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/platform/server"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
	"github.com/junctionhq/junction/internal/testkit/redistest"
)

// Governance through real HTTP: budgets, rate limits, reserved capacity,
// teams and the audit log, on one Junction in memory and on two sharing a
// real redis-server.
//
// The fake upstream reports 12 prompt and 9 completion tokens for every
// answer. The model "priced" costs $1 and $2 per 1K tokens, so an answer
// costs exactly $0.030. A "hi" request with max_tokens 20 is admitted at
// its upper bound: 18 prompt tokens (the text's 2 bytes plus framing) and
// 20 output tokens, 38 tokens and at most $0.058.

const (
	answerCost   = 0.030
	answerTokens = 21
	hiEstimate   = 38
	hiWorst      = "$0.058"
)

func hiBody(model string) string {
	return `{"model":"` + model + `","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`
}

// startGov runs Junction on dataDir with a governance section (YAML
// under "governance:") in front of fake.
func startGov(t *testing.T, fake http.Handler, dataDir, governanceYAML string) *junction {
	t.Helper()
	return startGovWith(t, fake, dataDir, "", "", governanceYAML)
}

// startGovWith is startGov with more config: providers (YAML list items),
// and models (list items, then any other top-level sections, e.g.
// routes).
func startGovWith(t *testing.T, fake http.Handler, dataDir, extraProviders, extraModels, governanceYAML string) *junction {
	t.Helper()
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	yaml := fmt.Sprintf(`
server: {addr: "127.0.0.1:0", data_dir: %q, max_body_bytes: 65536, upstream_timeout: 5s, shutdown_timeout: 5s}
auth: {admin_key: %q}
log: {level: warn}
ledger: {flush_interval: 5ms}
providers:
  - {name: openai, type: openai, base_url: "%s/v1", api_key: "sk-upstream"}
%s
models:
  - {name: priced, provider: openai, upstream_model: my-model, price: {input_per_1k: 1, output_per_1k: 2}}
  - {name: other, provider: openai, upstream_model: other-model, price: {input_per_1k: 1, output_per_1k: 2}}
  - {name: capped, provider: openai, upstream_model: capped-model, price: {input_per_1k: 1, output_per_1k: 2, max_output_tokens: 4096}}
%s
governance:
%s`, dataDir, adminKey, up.URL, extraProviders, extraModels, indent(governanceYAML))
	cfg, err := config.Parse([]byte(yaml), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	j := &junction{t: t, url: "http://" + srv.Addr(), cancel: cancel, done: make(chan error, 1), dataDir: dataDir}
	go func() { j.done <- srv.Serve(ctx) }()
	t.Cleanup(j.stop)
	return j
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = "  " + strings.TrimSpace(l)
	}
	return strings.Join(lines, "\n")
}

// mustDo is do that expects a status.
func (j *junction) mustDo(want int, method, path, key, body string) []byte {
	j.t.Helper()
	status, _, b := j.do(method, path, key, body)
	if status != want {
		j.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, b)
	}
	return b
}

// teamKey makes team (if new), project (if given) and a key in them.
func (j *junction) teamKey(name, team, project string) (id, secret string) {
	j.t.Helper()
	if status, _, b := j.do("POST", "/api/v1/teams", adminKey, `{"name":"`+team+`"}`); status != 201 && status != 409 {
		j.t.Fatalf("create team: %d %s", status, b)
	}
	if project != "" {
		if status, _, b := j.do("POST", "/api/v1/teams/"+team+"/projects", adminKey, `{"name":"`+project+`"}`); status != 201 && status != 409 {
			j.t.Fatalf("create project: %d %s", status, b)
		}
	}
	body, _ := json.Marshal(map[string]any{"name": name, "team": team, "project": project})
	var out struct{ ID, Key string }
	json.Unmarshal(j.mustDo(201, "POST", "/api/v1/keys", adminKey, string(body)), &out)
	return out.ID, out.Key
}

// budgets returns GET /api/v1/budgets.
func (j *junction) budgets() []governance.BudgetView {
	j.t.Helper()
	var out struct{ Budgets []governance.BudgetView }
	json.Unmarshal(j.mustDo(200, "GET", "/api/v1/budgets", adminKey, ""), &out)
	return out.Budgets
}

// settled polls until the budget's spend is want dollars and nothing is
// reserved: every request has settled.
func (j *junction) settled(id string, want float64) governance.BudgetView {
	j.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, b := range j.budgets() {
			if b.ID != id || b.Status == nil {
				continue
			}
			spent, _ := strconv.ParseFloat(b.Status.SpentUSD, 64)
			if math.Abs(spent-want) < 1e-9 && b.Status.ReservedUSD == "0.00" {
				return b
			}
			if time.Now().After(deadline) {
				j.t.Fatalf("budget %s: spent %s reserved %s, want spent %.6f and nothing reserved", id, b.Status.SpentUSD, b.Status.ReservedUSD, want)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ledgerCost(recs []ledger.Record) float64 {
	var sum float64
	for _, r := range recs {
		if r.CostUSD != nil {
			sum += *r.CostUSD
		}
	}
	return sum
}

func countStatus(recs []ledger.Record, status int) int {
	n := 0
	for _, r := range recs {
		if r.Status == status {
			n++
		}
	}
	return n
}

func TestHardBudgetHoldsUnderConcurrency(t *testing.T) {
	// The upstream holds every answer until each of the 50 requests has
	// been admitted (reached it) or refused, so all are decided while the
	// admitted ones hold their worst case ($0.058): only the reservation
	// keeps them within the budget, and exactly floor(0.50/0.058) = 8 fit.
	gate := make(chan struct{})
	var arrived, refusedSoFar atomic.Int64
	fake := &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault {
		arrived.Add(1)
		<-gate
		return fakeopenai.Fault{}
	}}
	dir := t.TempDir()
	j := startGov(t, fake, dir, `budgets: [{scope: "team:ml", period: daily, limit_usd: 0.5, mode: hard}]`)
	_, secret := j.teamKey("ml-app", "ml", "")

	const n = 50
	// A budget period ends at midnight UTC: a run across it may see
	// either day's reset time in a refusal.
	resets := func(at time.Time) string {
		return "resets at " + at.UTC().Truncate(24*time.Hour).Add(24*time.Hour).Format(time.RFC3339)
	}
	before := resets(time.Now())
	var wg sync.WaitGroup
	statuses := make([]int, n)
	bodies := make([][]byte, n)
	headers := make([]http.Header, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], headers[i], bodies[i] = j.do("POST", "/v1/chat/completions", secret, hiBody("priced"))
			if statuses[i] == 429 {
				refusedSoFar.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for arrived.Load()+refusedSoFar.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s %d requests reached the upstream and %d were refused, of %d", arrived.Load(), refusedSoFar.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(gate)
	wg.Wait()
	after := resets(time.Now())
	ok, refused := 0, 0
	for i := range n {
		switch statuses[i] {
		case 200:
			ok++
		case 429:
			refused++
			e := decodeError(t, bodies[i])
			if e.Error.Type != "insufficient_quota" || e.Error.Code == nil || *e.Error.Code != "budget_exceeded" {
				t.Fatalf("refusal type %q code %v: %s", e.Error.Type, e.Error.Code, bodies[i])
			}
			for _, want := range []string{"hard daily budget for team:ml", "limit $0.50", "spent $", "reserved by requests in flight",
				"may cost up to " + hiWorst} {
				if !strings.Contains(e.Error.Message, want) {
					t.Fatalf("refusal %q lacks %q", e.Error.Message, want)
				}
			}
			if !strings.Contains(e.Error.Message, before) && !strings.Contains(e.Error.Message, after) {
				t.Fatalf("refusal %q lacks %q", e.Error.Message, before)
			}
			if ra, err := strconv.Atoi(headers[i].Get("Retry-After")); err != nil || ra < 1 || ra > 86400 {
				t.Fatalf("Retry-After %q: want the seconds until the budget resets", headers[i].Get("Retry-After"))
			}
		default:
			t.Fatalf("status %d: %s", statuses[i], bodies[i])
		}
	}
	if ok != 8 || refused != n-8 {
		t.Fatalf("%d admitted, %d refused: want 8 (of %s worst case each in $0.50) and %d", ok, refused, hiWorst, n-8)
	}
	recs := j.records(n)
	spent := ledgerCost(recs)
	if spent > 0.5+1e-9 {
		t.Fatalf("the ledger holds $%.6f for a $0.50 hard budget", spent)
	}
	if countStatus(recs, 200) != ok || countStatus(recs, 429) != refused {
		t.Fatalf("ledger: %d ok and %d refused records, want %d and %d", countStatus(recs, 200), countStatus(recs, 429), ok, refused)
	}
	j.settled("config-0", float64(ok)*answerCost)

	// A restart seeds the budget from the ledger: it does not start over.
	j.stop()
	j2 := startGov(t, fake, dir, `budgets: [{scope: "team:ml", period: daily, limit_usd: 0.5, mode: hard}]`)
	b := j2.settled("config-0", float64(ok)*answerCost)
	if b.Scope != "team:ml" || b.Mode != "hard" || b.Period != "daily" || b.LimitUSD != 0.5 {
		t.Fatalf("budget after restart: %+v", b)
	}
	// Requests one at a time now: each is admitted while what is spent
	// plus its worst case fits the limit, exactly as many as the seeded
	// spend leaves room for (fifteen more, had the restart reset it).
	spentNanos, want := int64(ok)*30_000_000, 0
	for ; spentNanos+58_000_000 <= 500_000_000; spentNanos += 30_000_000 {
		want++
	}
	got := 0
	for {
		status, _, body := j2.do("POST", "/v1/chat/completions", secret, hiBody("priced"))
		if status == 429 {
			break
		}
		if status != 200 || got > 20 {
			t.Fatalf("status %d after %d: %s", status, got, body)
		}
		got++
	}
	if got != want {
		t.Fatalf("after the restart the budget admitted %d more requests, want %d", got, want)
	}
}

func TestSoftBudgetFiresItsWebhookOnce(t *testing.T) {
	var posts atomic.Int32
	events := make(chan map[string]any, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		json.NewDecoder(r.Body).Decode(&ev)
		posts.Add(1)
		events <- ev
	}))
	t.Cleanup(hook.Close)
	j := startGov(t, &fakeopenai.Server{}, t.TempDir(), `budgets: [{scope: "tag:app=faq", period: monthly, limit_usd: 0.05, mode: soft, webhook: "`+hook.URL+`/hook?token=s3cr3t"}]`)
	for range 5 { // $0.15 of a $0.05 soft budget: never refused
		status, _, b := j.do("POST", "/v1/chat/completions", adminKey, hiBody("priced"), "X-Junction-Tags", "app=faq")
		if status != 200 {
			t.Fatalf("a soft budget refused a request: %d %s", status, b)
		}
	}
	j.settled("config-0", 5*answerCost)
	// /metrics shows the spend against the limit, read at scrape time.
	if r, found := sum(j.scrape(), "junction_budget_spent_ratio", map[string]string{"scope": "tag:app=faq", "period": "monthly"}); !found || math.Abs(r-5*answerCost/0.05) > 1e-9 {
		t.Errorf("junction_budget_spent_ratio = %g (found %v), want %g", r, found, 5*answerCost/0.05)
	}
	var ev map[string]any
	select {
	case ev = <-events:
	case <-time.After(5 * time.Second):
		t.Fatal("the soft budget's webhook was not called")
	}
	if ev["type"] != "budget.crossed" || ev["scope"] != "tag:app=faq" || ev["kind"] != "soft" || ev["limit_usd"] != "0.05" || ev["spent_usd"] != "0.06" {
		t.Fatalf("webhook event %v", ev)
	}
	// Every settlement has run; a second post would be queued by now.
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		if n := posts.Load(); n != 1 {
			t.Fatalf("webhook called %d times, want once per period", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRateLimitsAreExactWithHeaders(t *testing.T) {
	j := startGov(t, &fakeopenai.Server{}, t.TempDir(), `rate_limits: [{scope: "key:*", rpm: 3}]`)
	id, secret := j.teamKey("rpm-app", "apps", "")
	for i := range 3 {
		status, hdr, b := j.do("POST", "/v1/chat/completions", secret, hiBody("priced"))
		if status != 200 {
			t.Fatalf("request %d under RPM 3: %d %s", i+1, status, b)
		}
		if hdr.Get("x-ratelimit-limit-requests") != "3" || hdr.Get("x-ratelimit-remaining-requests") != strconv.Itoa(2-i) {
			t.Fatalf("request %d: x-ratelimit-limit-requests %q remaining %q", i+1, hdr.Get("x-ratelimit-limit-requests"), hdr.Get("x-ratelimit-remaining-requests"))
		}
		if reset := hdr.Get("x-ratelimit-reset-requests"); !strings.HasSuffix(reset, "s") {
			t.Fatalf("x-ratelimit-reset-requests %q", reset)
		}
	}
	status, hdr, b := j.do("POST", "/v1/chat/completions", secret, hiBody("priced"))
	if status != 429 {
		t.Fatalf("fourth request under RPM 3: %d %s", status, b)
	}
	e := decodeError(t, b)
	if e.Error.Type != "rate_limit_error" || *e.Error.Code != "rate_limit_exceeded" || !strings.Contains(e.Error.Message, "rate limit key:"+id+" reached (3 requests per minute)") {
		t.Fatalf("refusal: %s", b)
	}
	if ra, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || ra < 1 || ra > 60 || hdr.Get("retry-after-ms") == "" || hdr.Get("x-ratelimit-remaining-requests") != "0" {
		t.Fatalf("refusal headers %v", hdr)
	}

	// A key's own limits, set through the admin API, replace "key:*".
	tid, tsecret := j.teamKey("tpm-app", "apps", "")
	b = j.mustDo(200, "PUT", "/api/v1/keys/"+tid+"/limits", adminKey, `{"tpm":100}`)
	if !strings.Contains(string(b), `"tpm": 100`) {
		t.Fatalf("limits answer: %s", b)
	}
	// Each request is admitted at 38 tokens and settles at its real 21:
	// 38, then 21+38, then 42+38 fit in 100; 63+38 does not.
	for i, remaining := range []int{100 - hiEstimate, 100 - answerTokens - hiEstimate, 100 - 2*answerTokens - hiEstimate} {
		status, hdr, b := j.do("POST", "/v1/chat/completions", tsecret, hiBody("priced"))
		if status != 200 {
			t.Fatalf("TPM request %d: %d %s", i+1, status, b)
		}
		if hdr.Get("x-ratelimit-limit-tokens") != "100" || hdr.Get("x-ratelimit-remaining-tokens") != strconv.Itoa(remaining) || hdr.Get("x-ratelimit-limit-requests") != "" {
			t.Fatalf("TPM request %d: limit %q remaining %q (want %d), requests %q", i+1, hdr.Get("x-ratelimit-limit-tokens"),
				hdr.Get("x-ratelimit-remaining-tokens"), remaining, hdr.Get("x-ratelimit-limit-requests"))
		}
	}
	status, _, b = j.do("POST", "/v1/chat/completions", tsecret, hiBody("priced"))
	if status != 429 || !strings.Contains(string(b), "100 tokens per minute") {
		t.Fatalf("TPM request 4: %d %s", status, b)
	}
	// A request that can never fit is refused without a Retry-After.
	status, hdr, b = j.do("POST", "/v1/chat/completions", tsecret, `{"model":"priced","max_tokens":500,"messages":[{"role":"user","content":"hi"}]}`)
	if status != 429 || hdr.Get("Retry-After") != "" || !strings.Contains(string(b), "request too large for rate limit key:"+tid) {
		t.Fatalf("too large: %d %v %s", status, hdr, b)
	}
}

// TestReplicasShareLimitsAndBudgetsInRedis runs two Junction replicas on
// one redis-server and three on a three-master Redis Cluster. Each
// request also meets a generous global limit and per-key budget, which on
// the cluster live in other slots than the model's limit and budget: an
// admission spans slots, and a refusal by one gives back what the others
// took.
func TestReplicasShareLimitsAndBudgetsInRedis(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		testReplicasShareLimitsAndBudgets(t, 2, fmt.Sprintf("redis_url: %q", "redis://"+redistest.Addr(t)))
	})
	t.Run("cluster", func(t *testing.T) {
		testReplicasShareLimitsAndBudgets(t, 3, fmt.Sprintf("redis_url: %q\nredis_cluster: true", redistest.ClusterURL(t)))
	})
}

func testReplicasShareLimitsAndBudgets(t *testing.T, n int, redisYAML string) {
	gov := fmt.Sprintf(`
%s
redis_prefix: %q
rate_limits: [{scope: "model:priced", rpm: 10}, {scope: global, rpm: 100000}]
budgets: [{scope: "model:other", period: daily, limit_usd: 0.2, mode: hard}, {scope: "key:*", period: daily, limit_usd: 1000}]`, redisYAML, redistest.Prefix(t))
	// While gate is set, the upstream holds every answer until it is
	// closed; arrived counts the requests it holds.
	var gate atomic.Pointer[chan struct{}]
	var arrived atomic.Int32
	fake := &fakeopenai.Server{Fault: func(*fakeopenai.Request) fakeopenai.Fault {
		if g := gate.Load(); g != nil {
			arrived.Add(1)
			<-*g
		}
		return fakeopenai.Fault{Delay: 20 * time.Millisecond}
	}}
	var replicas []*junction
	for range n {
		replicas = append(replicas, startGov(t, fake, t.TempDir(), gov))
	}
	sent := make([]int, n) // requests sent to each replica
	// burst sends n requests at once, spread over the replicas; with hold,
	// the upstream answers none until every request is admitted or
	// refused.
	burst := func(model string, n int, hold bool) (ok, refused int) {
		var wg sync.WaitGroup
		var okN, refusedN atomic.Int32
		release := make(chan struct{})
		if hold {
			arrived.Store(0)
			gate.Store(&release)
		}
		for i := range n {
			sent[i%len(replicas)]++
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, hdr, b := replicas[i%len(replicas)].do("POST", "/v1/chat/completions", adminKey, hiBody(model))
				switch {
				case status == 200:
					okN.Add(1)
				case status == 429 && hdr.Get("Retry-After") != "":
					refusedN.Add(1)
				default:
					t.Errorf("status %d: %s", status, b)
				}
			}()
		}
		if hold {
			deadline := time.Now().Add(30 * time.Second)
			for int(arrived.Load()+refusedN.Load()) < n {
				if time.Now().After(deadline) {
					t.Errorf("after 30s %d requests reached the upstream and %d were refused, of %d", arrived.Load(), refusedN.Load(), n)
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			gate.Store(nil)
			close(release)
		}
		wg.Wait()
		return int(okN.Load()), int(refusedN.Load())
	}

	// 16 requests spread over the replicas at once: one RPM of 10 for all.
	if ok, refused := burst("priced", 16, false); ok != 10 || refused != 6 {
		t.Fatalf("%d replicas admitted %d and refused %d of 16 under one RPM of 10", n, ok, refused)
	}
	// 20 requests against one $0.20 budget, all decided while the
	// admitted ones hold their worst case ($0.058): exactly three fit,
	// on whichever replica, and the two ledgers together never pass the
	// limit.
	ok, refused := burst("other", 20, true)
	if ok != 3 || refused != 17 {
		t.Fatalf("%d admitted, %d refused under the shared $0.20 budget: want 3 and 17", ok, refused)
	}
	var recs []ledger.Record
	for i, j := range replicas {
		for _, r := range j.records(sent[i]) {
			if r.Model == "other" {
				recs = append(recs, r)
			}
		}
	}
	if spent := ledgerCost(recs); countStatus(recs, 200) != ok || spent > 0.2+1e-9 {
		t.Fatalf("ledgers: %d answers costing $%.6f under a $0.20 budget", countStatus(recs, 200), spent)
	}
	// Every replica reports the one shared counter, and how many requests
	// its admission round trips carried: every request it was sent, in
	// no more round trips than requests.
	for i, j := range replicas {
		j.settled("config-0", float64(ok)*answerCost)
		m := j.scrape()
		admitted, _ := sum(m, "junction_governance_admitted_total", nil)
		batches, _ := sum(m, "junction_governance_admit_batches_total", nil)
		if int(admitted) != sent[i] || batches < 1 || batches > admitted {
			t.Errorf("replica %d was sent %d requests; /metrics: %v admitted in %v round trips", i, sent[i], admitted, batches)
		}
	}
}

func TestReservedCapacity(t *testing.T) {
	// The reservation's cost accrues a UTC day at a time from the server's
	// start: the report's window is the day the test began, so that a run
	// across midnight still finds exactly one day in it.
	began := time.Now().UTC().Truncate(24 * time.Hour)
	j := startGov(t, &fakeopenai.Server{}, t.TempDir(), `
capacity: [{model: priced, capacity_tpm: 180}]
reservations: [{team: ml, model: priced, tpm: 80, monthly_usd: 31}]`)
	_, ml := j.teamKey("ml-app", "ml", "")
	_, other := j.teamKey("web-app", "web", "")
	ask := func(key string, want int, wantIn string) {
		t.Helper()
		status, _, b := j.do("POST", "/v1/chat/completions", key, hiBody("priced"))
		if status != want || wantIn != "" && !strings.Contains(string(b), wantIn) {
			t.Fatalf("status %d, want %d (%q): %s", status, want, wantIn, b)
		}
	}
	// ml's share of 80 TPM holds three requests (38, then 21+38, 42+38);
	// the fourth spills into the shared pool of 180-80 = 100.
	for range 4 {
		ask(ml, 200, "")
	}
	// Others only have the pool: 21 used, then 21+38 and 42+38 fit, and
	// 63+38 does not, though the model's 180 TPM are not all in use.
	ask(other, 200, "")
	ask(other, 200, "")
	ask(other, 429, "rate limit capacity:priced|shared reached (100 tokens per minute)")
	// ml's share is full and so is the pool.
	ask(ml, 429, "capacity:priced|shared")

	// The reservation's price is in the usage report, a day at a time.
	today := began.Format("2006-01-02")
	tomorrow := began.Add(24 * time.Hour).Format("2006-01-02")
	var usage struct {
		ReservedCapacity        []governance.ReservedRow `json:"reserved_capacity"`
		ReservedCapacityCostUSD float64                  `json:"reserved_capacity_cost_usd"`
		TotalCostUSD            float64                  `json:"total_cost_usd"`
		Total                   ledger.Row
	}
	json.Unmarshal(j.mustDo(200, "GET", "/api/v1/usage?from="+today+"&to="+tomorrow, adminKey, ""), &usage)
	daily := 31.0 / float64(time.Date(began.Year(), began.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day())
	if len(usage.ReservedCapacity) != 1 || usage.ReservedCapacity[0].Team != "ml" || usage.ReservedCapacity[0].TPM != 80 ||
		math.Abs(usage.ReservedCapacity[0].CostUSD-daily) > 1e-9 || math.Abs(usage.TotalCostUSD-usage.Total.CostUSD-daily) > 1e-9 {
		t.Fatalf("usage: %+v, want a day of ml's reservation ($%.6f)", usage, daily)
	}
}

func TestTeamsAndProjectsTagEveryRequest(t *testing.T) {
	j := startGov(t, &fakeopenai.Server{}, t.TempDir(), `budgets: []`)
	_, secret := j.teamKey("search-bot", "ml", "search")
	// The request cannot move itself to another team.
	j.mustDo(200, "POST", "/v1/chat/completions", secret, hiBody("priced"))
	status, _, _ := j.do("POST", "/v1/chat/completions", secret, hiBody("priced"), "X-Junction-Tags", "team=web,project=x,app=faq")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	for _, r := range j.records(2) {
		if r.Tags["team"] != "ml" || r.Tags["project"] != "search" {
			t.Fatalf("record tags %v, want team ml and project search", r.Tags)
		}
	}
	var rep struct{ Rows []ledger.Row }
	json.Unmarshal(j.mustDo(200, "GET", "/api/v1/usage?group_by=tag:team", adminKey, ""), &rep)
	if len(rep.Rows) != 1 || rep.Rows[0].Group != "ml" || rep.Rows[0].Requests != 2 {
		t.Fatalf("usage by tag:team: %+v", rep.Rows)
	}
	// Teams and projects are listed, checked and kept while in use.
	if b := j.mustDo(200, "GET", "/api/v1/teams/ml/projects", adminKey, ""); !strings.Contains(string(b), `"name": "search"`) {
		t.Fatalf("projects: %s", b)
	}
	if b := j.mustDo(400, "POST", "/api/v1/keys", adminKey, `{"name":"x","team":"nope"}`); !strings.Contains(string(b), `team \"nope\" does not exist`) {
		t.Fatalf("unknown team: %s", b)
	}
	if b := j.mustDo(409, "DELETE", "/api/v1/teams/ml/projects/search", adminKey, ""); !strings.Contains(string(b), "revoke them first") {
		t.Fatalf("delete a project in use: %s", b)
	}
	j.mustDo(409, "POST", "/api/v1/teams", adminKey, `{"name":"ml"}`)
	j.mustDo(404, "DELETE", "/api/v1/teams/nope", adminKey, "")
}

func TestAuditLogRecordsAdminActionsWithoutSecrets(t *testing.T) {
	j := startGov(t, &fakeopenai.Server{}, t.TempDir(), `budgets: []`)
	j.mustDo(201, "POST", "/api/v1/teams", adminKey, `{"name":"ml"}`)
	var key struct{ ID, Key string }
	json.Unmarshal(j.mustDo(201, "POST", "/api/v1/keys", adminKey, `{"name":"app","team":"ml"}`), &key)
	var cred struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}
	json.Unmarshal(j.mustDo(201, "POST", "/api/v1/keys/"+key.ID+"/aws-credentials", adminKey, ""), &cred)
	var bud governance.BudgetView
	json.Unmarshal(j.mustDo(201, "POST", "/api/v1/budgets", adminKey,
		`{"scope":"team:ml","period":"daily","limit_usd":5,"webhook":"https://hooks.example/T0/B0/xyzSECRETxyz"}`), &bud)
	j.mustDo(200, "PUT", "/api/v1/budgets/"+bud.ID, adminKey, `{"scope":"team:ml","period":"daily","limit_usd":7}`)
	j.mustDo(204, "DELETE", "/api/v1/budgets/"+bud.ID, adminKey, "")
	j.mustDo(204, "DELETE", "/api/v1/keys/"+key.ID, adminKey, "")
	j.mustDo(400, "POST", "/api/v1/budgets", adminKey, `{"scope":"team:ml","period":"weekly","limit_usd":1}`)
	j.mustDo(200, "GET", "/api/v1/keys", adminKey, "") // reads are not recorded

	raw := j.mustDo(200, "GET", "/api/v1/audit?since=1h", adminKey, "")
	for _, secret := range []string{key.Key, cred.SecretAccessKey, "xyzSECRETxyz", adminKey} {
		if secret == "" || strings.Contains(string(raw), secret) {
			t.Fatalf("the audit log holds a secret (%q):\n%s", secret, raw)
		}
	}
	var log struct {
		Entries []struct {
			KeyName                string `json:"key_name"`
			Method, Path, Resource string
			Status                 int
			Request, Before, After json.RawMessage
		}
	}
	json.Unmarshal(raw, &log)
	want := []string{
		"POST budgets 400", "DELETE keys/" + key.ID + " 204", "DELETE budgets/" + bud.ID + " 204", "PUT budgets/" + bud.ID + " 200",
		"POST budgets 201", "POST keys/" + key.ID + "/aws-credentials 201", "POST keys 201", "POST teams 201",
	}
	if len(log.Entries) != len(want) {
		t.Fatalf("%d audit entries, want %d:\n%s", len(log.Entries), len(want), raw)
	}
	for i, e := range log.Entries {
		if got := e.Method + " " + e.Resource + " " + strconv.Itoa(e.Status); got != want[i] || e.KeyName != "admin (config)" {
			t.Fatalf("entry %d: %s by %q, want %s by the config's admin key", i, got, e.KeyName, want[i])
		}
	}
	for i := range log.Entries { // the answer is indented; compare compact JSON
		e := &log.Entries[i]
		e.Request, e.Before, e.After = compact(e.Request), compact(e.Before), compact(e.After)
	}
	put, created := log.Entries[3], log.Entries[6]
	if !strings.Contains(string(put.Before), `"limit_usd":5`) || !strings.Contains(string(put.After), `"limit_usd":7`) ||
		!strings.Contains(string(put.Request), `"limit_usd":7`) {
		t.Fatalf("budget update: request %s before %s after %s", put.Request, put.Before, put.After)
	}
	if !strings.Contains(string(created.After), `"key":"[redacted]"`) || !strings.Contains(string(created.After), `"team":"ml"`) {
		t.Fatalf("key creation: after %s", created.After)
	}
	if !strings.Contains(string(log.Entries[4].Request), `"webhook":"[redacted]"`) {
		t.Fatalf("budget creation: request %s", log.Entries[4].Request)
	}
}

func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

func TestBudgetRefusalOnTheAnthropicSurface(t *testing.T) {
	j := startGov(t, &fakeopenai.Server{}, t.TempDir(), `budgets: [{scope: global, period: monthly, limit_usd: 0.01}]`)
	status, hdr, b := j.do("POST", "/v1/messages", adminKey, `{"model":"priced","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`,
		"anthropic-version", "2023-06-01")
	var e struct {
		Type  string
		Error struct{ Type, Message string }
	}
	json.Unmarshal(b, &e)
	if status != 429 || e.Type != "error" || e.Error.Type != "rate_limit_error" || hdr.Get("Retry-After") == "" ||
		!strings.HasPrefix(e.Error.Message, "hard monthly budget for global cannot cover this request: limit $0.01, spent $0.00") {
		t.Fatalf("%d %s", status, b)
	}
}
