package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// The Keys page changes what governs spending as the admin API does: a
// key's rate limit set there refuses the key's next request over it, and
// budgets made, edited and deleted there are the API's budgets, each
// change audited; bad values and config-file budgets are refused with
// the reason, and a team key can change nothing.
func TestConsoleEditsRateLimitsAndBudgets(t *testing.T) {
	j := startGov(t, &fakeopenai.Server{PromptTokens: 100, CompletionTokens: 50}, t.TempDir(),
		`budgets: [{scope: "team:web", period: monthly, limit_usd: 9, mode: soft}]`)
	mlID, ml := j.teamKey("ml-app", "ml", "")

	c := newConsoleClient(t, j)
	if resp, _ := c.send("POST", "/ui/login", url.Values{"key": {adminKey}}, j.url); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	_, page := c.send("GET", "/ui/keys", nil, "")
	m := csrfField.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `id="create-budget"`) || !strings.Contains(page, `action="/ui/keys/`+mlID+`/limits"`) {
		t.Fatalf("the admin's Keys page has no budget or limit forms:\n%s", page)
	}
	csrf := m[1]
	post := func(path string, form url.Values, want int) string {
		t.Helper()
		form.Set("csrf", csrf)
		resp, body := c.send("POST", path, form, j.url)
		if resp.StatusCode != want {
			t.Fatalf("POST %s %v: %d, want %d\n%s", path, form, resp.StatusCode, want, body)
		}
		return body
	}

	// A rate limit of one request a minute, set from the page, holds.
	if body := post("/ui/keys/"+mlID+"/limits", url.Values{"rpm": {"many"}}, http.StatusBadRequest); !strings.Contains(body, "RPM: a whole number") {
		t.Errorf("a bad RPM is refused without saying why:\n%s", body)
	}
	post("/ui/keys/"+mlID+"/limits", url.Values{"rpm": {"1"}, "tpm": {""}}, http.StatusSeeOther)
	if status, _, b := j.do("POST", "/v1/chat/completions", ml, hiBody("priced")); status != http.StatusOK {
		t.Fatalf("first request under RPM 1: %d %s", status, b)
	}
	if status, _, _ := j.do("POST", "/v1/chat/completions", ml, hiBody("priced")); status != http.StatusTooManyRequests {
		t.Errorf("second request in the minute under an RPM of 1 set in the console: %d, want 429", status)
	}

	// A budget made, changed and deleted on the page, seen through the API.
	if body := post("/ui/budgets", url.Values{"scope": {"team:ml"}, "period": {"monthly"}, "limit_usd": {"lots"}, "mode": {"hard"}},
		http.StatusBadRequest); !strings.Contains(body, "Limit: a number of dollars") {
		t.Errorf("a bad limit is refused without saying why:\n%s", body)
	}
	if body := post("/ui/budgets", url.Values{"scope": {"team:"}, "period": {"monthly"}, "limit_usd": {"5"}}, http.StatusBadRequest); !strings.Contains(body, "scope") {
		t.Errorf("a bad scope is refused without saying why:\n%s", body)
	}
	post("/ui/budgets", url.Values{"scope": {"team:ml"}, "period": {"monthly"}, "limit_usd": {"$3.50"}, "mode": {"hard"}}, http.StatusSeeOther)
	var id string
	for _, b := range j.budgets() {
		if b.Scope == "team:ml" {
			if id = b.ID; b.LimitUSD != 3.5 || b.Mode != "hard" || b.Period != "monthly" || b.Source != "api" {
				t.Errorf("budget made in the console: %+v", b)
			}
		}
	}
	if id == "" {
		t.Fatalf("the budgets API does not list the budget made in the console: %+v", j.budgets())
	}
	post("/ui/budgets/"+id, url.Values{"limit_usd": {"7"}, "mode": {"soft"}}, http.StatusSeeOther)
	for _, b := range j.budgets() {
		if b.ID == id && (b.LimitUSD != 7 || b.Mode != "soft" || b.Scope != "team:ml" || b.Period != "monthly") {
			t.Errorf("budget after its edit in the console: %+v", b)
		}
	}
	for _, b := range j.budgets() {
		if b.Source == "config" {
			if body := post("/ui/budgets/"+b.ID, url.Values{"limit_usd": {"1"}}, http.StatusConflict); !strings.Contains(body, "config file") {
				t.Errorf("editing a config-file budget: %s", body)
			}
		}
	}
	post("/ui/budgets/"+id+"/delete", url.Values{}, http.StatusSeeOther)
	for _, b := range j.budgets() {
		if b.ID == id {
			t.Errorf("budget deleted in the console is still listed: %+v", b)
		}
	}
	post("/ui/budgets/bud_missing/delete", url.Values{}, http.StatusNotFound)

	// Every change is in the audit log, with what it replaced.
	var audited struct {
		Entries []struct {
			Path   string
			Status int
			Before json.RawMessage `json:"before"`
		}
	}
	json.Unmarshal(j.mustDo(200, "GET", "/api/v1/audit?limit=100", adminKey, ""), &audited)
	withBefore := map[string]bool{}
	for _, e := range audited.Entries {
		if e.Status < 400 {
			withBefore[e.Path] = len(e.Before) > 0 && string(e.Before) != "null"
		}
	}
	for _, p := range []string{"/ui/keys/" + mlID + "/limits", "/ui/budgets/" + id, "/ui/budgets/" + id + "/delete"} {
		if !withBefore[p] {
			t.Errorf("%s is not in the audit log with the state before it: %+v", p, audited.Entries)
		}
	}

	// A team key sees no forms and can change nothing.
	tc := newConsoleClient(t, j)
	if resp, _ := tc.send("POST", "/ui/login", url.Values{"key": {ml}}, j.url); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("team sign-in: %d", resp.StatusCode)
	}
	_, teamPage := tc.send("GET", "/ui/keys", nil, "")
	if strings.Contains(teamPage, `id="create-budget"`) || strings.Contains(teamPage, `/limits"`) {
		t.Errorf("a team key's Keys page offers changes")
	}
	tm := csrfField.FindStringSubmatch(teamPage)
	if tm == nil {
		t.Fatal("no CSRF token on the team's page")
	}
	resp, _ := tc.send("POST", "/ui/budgets", url.Values{"csrf": {tm[1]}, "scope": {"team:ml"}, "period": {"daily"}, "limit_usd": {"1000"}}, j.url)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a team key creating a budget in the console: %d, want 403", resp.StatusCode)
	}
}
