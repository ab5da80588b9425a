package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// page drives one headless Chromium tab (Debian's chromium package) for
// a test; the test is skipped when chromium is not installed.
type page struct {
	t   *testing.T
	ctx context.Context
}

func browser(t *testing.T) *page {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium); the console's browser tests need it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(cancelCtx)
	// The first run starts the browser, which lives as long as its
	// context: it takes no timeout; the steps after it do.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancelTimeout)
	return &page{t: t, ctx: ctx}
}

// do runs steps, failing the test on an error.
func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatal(err)
	}
}

// text is the visible text of the element sel selects, waiting for it.
func (p *page) text(sel string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("%s: %v", sel, err)
	}
	return v
}

// eval is the value of a JavaScript expression in the page.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// screenshot saves the page under $JUNCTION_SCREENSHOTS, when set (the
// pictures of docs/console.md).
func (p *page) screenshot(name string) {
	p.t.Helper()
	dir := os.Getenv("JUNCTION_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// usageAPI is GET /api/v1/usage, what `junction usage` prints.
func (j *junction) usageAPI(query url.Values) admin.UsageResponse {
	j.t.Helper()
	status, _, b := j.do("GET", "/api/v1/usage?"+query.Encode(), adminKey, "")
	if status != http.StatusOK {
		j.t.Fatalf("usage: %d %s", status, b)
	}
	var out admin.UsageResponse
	if err := json.Unmarshal(b, &out); err != nil {
		j.t.Fatal(err)
	}
	return out
}

// usd is how the console and the CLI write dollars.
func usd(v float64) string { return "$" + strconv.FormatFloat(v, 'f', 6, 64) }

// The console, driven by a real browser: an admin signs in and sees the
// numbers the usage API (and so the CLI) gives for traffic sent through
// the gateway, in the overview, the spend table and its chart; creates
// and revokes a key from the page; a team's key sees its own team only.
func TestConsoleInBrowser(t *testing.T) {
	b := browser(t)
	fake := &fakeopenai.Server{PromptTokens: 120, CompletionTokens: 30}
	j := start(t, fake, "")
	_, search := j.teamKey("search-bot", "search", "")
	_, ads := j.teamKey("ads-bot", "ads", "")
	for i := range 5 {
		send := search
		if i >= 3 {
			send = ads
		}
		if status, _, b := j.do("POST", "/v1/chat/completions", send, hiBody("priced")); status != http.StatusOK {
			t.Fatalf("chat: %d %s", status, b)
		}
	}
	j.records(5)
	month := time.Now().UTC()
	monthStart := time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	byTeam := j.usageAPI(url.Values{"from": {monthStart}, "group_by": {"tag:team"}})
	want := map[string]string{}
	for _, r := range byTeam.Rows {
		want[r.Group] = usd(r.CostUSD)
	}
	if byTeam.Total.Requests != 5 || want["search"] == "" || want["ads"] == "" || want["search"] == want["ads"] {
		t.Fatalf("usage API by team: %+v", byTeam)
	}

	b.do(chromedp.Navigate(j.url+"/ui/spend?from=1h&group_by=tag:team"),
		chromedp.WaitVisible(chromedp.CSS(`#key`)), // the login page, which keeps where we were going
		chromedp.SendKeys(chromedp.CSS(`#key`), adminKey),
		chromedp.Click(chromedp.CSS(`#signin`)),
		chromedp.WaitVisible(chromedp.CSS(`#spend-rows`)))
	searchCost := b.text(`#spend-rows tr[data-group="search"] [data-field="cost"]`)
	searchRequests := b.text(`#spend-rows tr[data-group="search"] [data-field="requests"]`)
	adsCost := b.text(`#spend-rows tr[data-group="ads"] [data-field="cost"]`)
	if searchCost != want["search"] || adsCost != want["ads"] || searchRequests != "3" {
		t.Errorf("spend page: search %s (%s requests), ads %s; the usage API says search %s (3 requests), ads %s",
			searchCost, searchRequests, adsCost, want["search"], want["ads"])
	}
	// The chart draws the same numbers: the search segments add up to the
	// search row.
	segs := eval[[]float64](b, `[...document.querySelectorAll('#spend-chart rect.seg[data-series="search"]')].map(r => parseFloat(r.dataset.value))`)
	sum := 0.0
	for _, v := range segs {
		sum += v
	}
	if len(segs) == 0 || usd(sum) != want["search"] {
		t.Errorf("chart: search segments %v sum to %s, want %s", segs, usd(sum), want["search"])
	}
	b.screenshot("spend")

	b.do(chromedp.Navigate(j.url+"/ui/"), chromedp.WaitVisible(chromedp.CSS(`#month`)))
	if got, n := b.text(`#month [data-field="per-token"]`), b.text(`#month [data-field="requests"]`); got != usd(byTeam.Total.CostUSD) || n != "5" {
		t.Errorf("overview this month: %s for %s requests; the usage API says %s for 5", got, n, usd(byTeam.Total.CostUSD))
	}
	if got := b.text(`#top-teams tr[data-group="search"] td:nth-child(3)`); got != want["search"] {
		t.Errorf("overview top teams: search %s, want %s", got, want["search"])
	}
	p50, p99 := b.text(`#month [data-field="p50"]`), b.text(`#month [data-field="p99"]`)
	if want50, want99 := fmt.Sprintf("%.1f ms", byTeam.Total.P50LatencyMS), fmt.Sprintf("%.1f ms", byTeam.Total.P99LatencyMS); p50 != want50 || p99 != want99 || byTeam.Total.P99LatencyMS <= 0 {
		t.Errorf("overview latency p50/p99: %s / %s; the usage API says %s / %s", p50, p99, want50, want99)
	}
	b.screenshot("overview")
	b.do(chromedp.Navigate(j.url+"/ui/routing?from=1h"), chromedp.WaitVisible(chromedp.CSS(`#routes`)))
	if n := eval[int](b, `[...document.querySelectorAll('#routes [data-field="requests"]')].reduce((a, td) => a + parseInt(td.textContent), 0)`); n != 5 {
		t.Errorf("routing page counts %d requests by route, want 5", n)
	}
	b.screenshot("routing")

	// A key made and revoked from the page exists, then does not, in the
	// admin API.
	b.do(chromedp.Navigate(j.url+"/ui/keys"),
		chromedp.WaitVisible(chromedp.CSS(`#create-key`)),
		chromedp.SendKeys(chromedp.CSS(`#create-key input[name="name"]`), "from-console"),
		chromedp.SetValue(chromedp.CSS(`#create-key select[name="team"]`), "ads"),
		chromedp.Submit(chromedp.CSS(`#create-key input[name="name"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#created-secret`)))
	secret := b.text(`#created-secret`)
	b.screenshot("keys")
	if status, _, body := j.do("GET", "/v1/models", secret, ""); status != http.StatusOK {
		t.Fatalf("the key made in the console does not work: %d %s", status, body)
	}
	var listed struct {
		Keys []struct{ ID, Name, Team string }
	}
	json.Unmarshal(j.mustDo(200, "GET", "/api/v1/keys", adminKey, ""), &listed)
	var newID string
	for _, k := range listed.Keys {
		if k.Name == "from-console" && k.Team == "ads" {
			newID = k.ID
		}
	}
	if newID == "" {
		t.Fatalf("the admin API does not list the key made in the console: %+v", listed)
	}
	// Its rate limit, set on the page, is the key's in the admin API.
	b.do(chromedp.SetValue(chromedp.CSS(`#key-`+newID+` input[name="rpm"]`), "30"),
		chromedp.Submit(chromedp.CSS(`#key-`+newID+` input[name="rpm"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#create-key`)))
	var limited struct {
		Keys []struct {
			ID  string
			RPM int64
		}
	}
	json.Unmarshal(j.mustDo(200, "GET", "/api/v1/keys", adminKey, ""), &limited)
	rpm := int64(-1)
	for _, k := range limited.Keys {
		if k.ID == newID {
			rpm = k.RPM
		}
	}
	if shown := eval[string](b, `document.querySelector('#key-`+newID+` input[name="rpm"]').value`); rpm != 30 || shown != "30" {
		t.Errorf("RPM set on the page: the API says %d and the page shows %q, want 30", rpm, shown)
	}
	b.do(chromedp.Click(chromedp.CSS(`tr[data-key="`+newID+`"] button.danger`)),
		chromedp.WaitNotPresent(chromedp.CSS(`tr[data-key="`+newID+`"]`)))
	if status, _, _ := j.do("GET", "/v1/models", secret, ""); status != http.StatusUnauthorized {
		t.Errorf("the key revoked in the console still works: %d", status)
	}
	var audited struct {
		Entries []struct{ Path, KeyName string }
	}
	json.Unmarshal(j.mustDo(200, "GET", "/api/v1/audit", adminKey, ""), &audited)
	paths := map[string]bool{}
	for _, e := range audited.Entries {
		paths[e.Path] = true
	}
	if !paths["/ui/keys"] || !paths["/ui/keys/"+newID+"/revoke"] {
		t.Errorf("console changes are not in the audit log: %+v", audited.Entries)
	}

	// Signed in with the search team's key: its own numbers, no one
	// else's, as the usage API filtered to the team gives them.
	searchOnly := j.usageAPI(url.Values{"from": {monthStart}, "tag": {"team=search"}})
	if searchOnly.Total.Requests != 3 || usd(searchOnly.Total.CostUSD) != want["search"] {
		t.Fatalf("usage API for team search: %+v", searchOnly.Total)
	}
	if status, _, body := j.do("GET", "/api/v1/usage?tag=team", adminKey, ""); status != http.StatusBadRequest || !strings.Contains(string(body), "NAME=VALUE") {
		t.Errorf("a tag filter without a value: %d %s", status, body)
	}
	b.do(chromedp.Click(chromedp.CSS(`.who button`)),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
		chromedp.SendKeys(chromedp.CSS(`#key`), search),
		chromedp.Click(chromedp.CSS(`#signin`)),
		chromedp.WaitVisible(chromedp.CSS(`#month`)))
	who, teamRequests, teamCost := b.text(`#who`), b.text(`#month [data-field="requests"]`), b.text(`#month [data-field="per-token"]`)
	if !strings.Contains(who, "team search") || teamRequests != "3" || teamCost != want["search"] {
		t.Errorf("team key overview: %q sees %s requests costing %s; want team search, 3, %s", who, teamRequests, teamCost, want["search"])
	}
	b.do(chromedp.Navigate(j.url+"/ui/spend?from=1h&group_by=tag:team"), chromedp.WaitVisible(chromedp.CSS(`#spend-rows`)))
	groups := eval[[]string](b, `[...document.querySelectorAll('#spend-rows tr[data-group]')].map(r => r.dataset.group)`)
	if strings.Join(groups, ",") != "search,total" {
		t.Errorf("team key's spend page shows groups %v, want only search (and the total)", groups)
	}
	b.do(chromedp.Navigate(j.url+"/ui/endpoints"), chromedp.WaitVisible(chromedp.CSS(`#error`)))
	if got := b.text(`#error`); !strings.Contains(got, "needs an admin key") {
		t.Errorf("team key on the endpoints page: %q", got)
	}
	for _, admOnly := range []string{"advisor", "guardrails", "audit"} {
		b.do(chromedp.Navigate(j.url+"/ui/"+admOnly), chromedp.WaitVisible(chromedp.CSS(`#error`)))
		if got := b.text(`#error`); !strings.Contains(got, "needs an admin key") {
			t.Errorf("team key on the %s page: %q", admOnly, got)
		}
	}
}

// The Endpoints page shows a running endpoint as the hosting API does:
// its status, its variant's instances and the invocations it served.
func TestConsoleEndpointsInBrowser(t *testing.T) {
	b := browser(t)
	j := startHosted(t, t.TempDir(), "", "")
	j.model("m", demoArtifact(t), "byoc", nil)
	j.endpointConfig("c1", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 2})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c1"}, http.StatusCreated, nil)
	j.waitEndpoint("ep", 30*time.Second, inService)
	for range 3 {
		if status, _, body := j.invoke("ep", `{"inputs":"the site is down"}`); status != http.StatusOK {
			t.Fatalf("invoke: %d %s", status, body)
		}
	}
	var ep hosting.Endpoint
	j.admin("GET", "/api/v1/endpoints/ep", nil, http.StatusOK, &ep)

	b.do(chromedp.Navigate(j.url+"/ui/endpoints"),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
		chromedp.SendKeys(chromedp.CSS(`#key`), adminKey),
		chromedp.Click(chromedp.CSS(`#signin`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-endpoint="ep"]`)))
	v := ep.Variants[0]
	if got := b.text(`[data-endpoint="ep"] [data-field="status"]`); got != ep.Status {
		t.Errorf("status %q, the API says %q", got, ep.Status)
	}
	if got, want := b.text(`[data-variant="primary"] [data-field="instances"]`), fmt.Sprintf("%d / %d", v.CurrentInstanceCount, v.DesiredInstanceCount); got != want || want != "2 / 2" {
		t.Errorf("instances %q, the API says %q", got, want)
	}
	if got := b.text(`[data-variant="primary"] [data-field="invocations"]`); got != strconv.FormatInt(v.Invocations, 10) || v.Invocations != 3 {
		t.Errorf("invocations %q, the API says %d (3 sent)", got, v.Invocations)
	}
	if n := eval[int](b, `document.querySelectorAll('[data-endpoint="ep"] tr.instance').length`); n != 2 {
		t.Errorf("%d instance rows, want 2", n)
	}
	// The instances chart: the metered instance time of the last minutes
	// shows in the last bars, and the line asks for the 2 of the config.
	if run := eval[float64](b, `[...document.querySelectorAll('#capacity-ep g.bar')].slice(-2).reduce((s, g) => s + Number(g.dataset.total), 0)`); run <= 0 {
		t.Errorf("the instances chart shows no instance run in the last periods")
	}
	if asked := eval[string](b, `[...document.querySelectorAll('[data-capacity="ep"] tbody tr')].at(-1).lastElementChild.textContent`); asked != "2" {
		t.Errorf("the instances table's last period asks for %q instances, want 2", asked)
	}
	if n := eval[int](b, `document.querySelectorAll('#capacity-ep polyline.overlay').length`); n != 1 {
		t.Errorf("the instances chart has %d desired lines, want 1", n)
	}

	// Invoked from the page, the endpoint answers what InvokeEndpoint
	// answers for the same body, and the call is in the ledger as the
	// signed-in key's, from the console.
	const ask = `{"inputs":"please refund my order"}`
	status, _, want := j.invoke("ep", ask)
	if status != http.StatusOK {
		t.Fatalf("invoke: %d %s", status, want)
	}
	b.do(chromedp.Click(chromedp.CSS(`[data-endpoint="ep"] details.invoke summary`)),
		chromedp.WaitVisible(chromedp.CSS(`#invoke-ep textarea`)),
		chromedp.SendKeys(chromedp.CSS(`#invoke-ep textarea`), ask),
		chromedp.Click(chromedp.CSS(`#invoke-ep button`)),
		chromedp.WaitVisible(chromedp.CSS(`#answer [data-field="answer"]`)))
	if got := b.text(`#answer [data-field="answer"]`); strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
		t.Errorf("answer on the page %q, InvokeEndpoint answers %q", got, want)
	}
	if got := b.text(`#answer [data-field="variant"]`); got != "primary" {
		t.Errorf("answered by variant %q, want primary", got)
	}
	b.screenshot("endpoints")
	var fromConsole int
	for _, r := range j.records(5) {
		if r.Surface == "console" && r.Model == "ep" && r.Status == http.StatusOK && r.KeyName != "" {
			fromConsole++
		}
	}
	if fromConsole != 1 {
		t.Errorf("%d ledger records of the console's invocation, want 1", fromConsole)
	}
	// A variant the endpoint does not have is the runtime's error, on the
	// page.
	b.do(chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector('#invoke-ep select[name="variant"]'); const o = document.createElement('option'); o.text = 'nosuch'; s.add(o); s.value = 'nosuch'; })()`),
		chromedp.Click(chromedp.CSS(`#invoke-ep button`)),
		chromedp.WaitVisible(chromedp.CSS(`#answer [data-field="error"]`)))
	if got := b.text(`#answer [data-field="error"]`); !strings.Contains(got, "nosuch") {
		t.Errorf("invoking a missing variant from the page shows %q", got)
	}
}
