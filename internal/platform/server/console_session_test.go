package server_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// consoleClient is a browser-like HTTP client of the console: it keeps
// cookies and does not follow redirects.
type consoleClient struct {
	t    *testing.T
	j    *junction
	http *http.Client
}

func newConsoleClient(t *testing.T, j *junction) *consoleClient {
	jar, _ := cookiejar.New(nil)
	return &consoleClient{t: t, j: j, http: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// send makes a request; form, when not nil, is posted with the given
// Origin ("" sends none).
func (c *consoleClient) send(method, path string, form url.Values, origin string) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.j.url+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// The console's session: a sealed cookie that scripts cannot read and
// other sites cannot send, changes only with the session's CSRF token
// from this origin, keys without a team refused, and a revoked key's
// session over at once.
func TestConsoleSessionGuards(t *testing.T) {
	j := start(t, &fakeopenai.Server{}, "")
	self := j.url
	c := newConsoleClient(t, j)

	if resp, _ := c.send("GET", "/ui/spend", nil, ""); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login?next=%2Fui%2Fspend" {
		t.Fatalf("signed out: %d to %q, want the login page", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := c.send("POST", "/ui/login", url.Values{"key": {"jk-wrong"}}, self); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not valid") {
		t.Errorf("a wrong key: %d", resp.StatusCode)
	}
	_, loner := j.createKey("no-team", nil)
	if resp, body := c.send("POST", "/ui/login", url.Values{"key": {loner}}, self); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "belongs to no team") {
		t.Errorf("a key without a team: %d", resp.StatusCode)
	}
	if resp, _ := c.send("POST", "/ui/login", url.Values{"key": {adminKey}}, "http://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in posted from another site: %d, want 403", resp.StatusCode)
	}

	resp, _ := c.send("POST", "/ui/login", url.Values{"key": {adminKey}, "next": {"//evil.example/x"}}, self)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("sign-in: %d to %q, want /ui/ (never another site)", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookie := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/ui"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %s", cookie, want)
		}
	}
	if strings.Contains(cookie, adminKey) {
		t.Errorf("the session cookie holds the key itself: %q", cookie)
	}
	_, page := c.send("GET", "/ui/keys", nil, "")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the keys page:\n%s", page)
	}
	keysNamed := func(name string) int {
		_, _, b := j.do("GET", "/api/v1/keys", adminKey, "")
		return strings.Count(string(b), `"name": "`+name+`"`)
	}
	if resp, _ := c.send("POST", "/ui/keys", url.Values{"name": {"forged"}}, self); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a change without the CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := c.send("POST", "/ui/keys", url.Values{"name": {"forged"}, "csrf": {m[1]}}, "http://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a change from another origin: %d, want 403", resp.StatusCode)
	}
	if n := keysNamed("forged"); n != 0 {
		t.Fatalf("forged requests made %d keys", n)
	}
	if resp, body := c.send("POST", "/ui/keys", url.Values{"name": {"real"}, "csrf": {m[1]}}, self); resp.StatusCode != http.StatusCreated || keysNamed("real") != 1 {
		t.Fatalf("a change with the token: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := c.send("POST", "/ui/keys", url.Values{"name": {"bad-team"}, "team": {"nope"}, "csrf": {m[1]}}, self); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a key for a missing team: %d, want 400", resp.StatusCode)
	}

	// A team's key: its pages, not the admin's; revoking it ends the session.
	id, team := j.teamKey("ops-bot", "ops", "")
	tc := newConsoleClient(t, j)
	if resp, _ := tc.send("POST", "/ui/login", url.Values{"key": {team}}, self); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("team sign-in: %d", resp.StatusCode)
	}
	if resp, _ := tc.send("GET", "/ui/spend", nil, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("team key on the spend page: %d", resp.StatusCode)
	}
	if resp, _ := tc.send("GET", "/ui/endpoints", nil, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("team key on the endpoints page: %d, want 403", resp.StatusCode)
	}
	_, tpage := tc.send("GET", "/ui/keys", nil, "")
	if tm := csrfField.FindStringSubmatch(tpage); tm == nil {
		t.Fatal("no CSRF token for the team key")
	} else if resp, _ := tc.send("POST", "/ui/keys", url.Values{"name": {"team-made"}, "csrf": {tm[1]}}, self); resp.StatusCode != http.StatusForbidden || keysNamed("team-made") != 0 {
		t.Errorf("team key creating a key: %d, want 403", resp.StatusCode)
	}
	j.mustDo(http.StatusNoContent, "DELETE", "/api/v1/keys/"+id, adminKey, "")
	if resp, _ := tc.send("GET", "/ui/spend", nil, ""); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a revoked key's session still opens pages: %d", resp.StatusCode)
	}
	if resp, body := c.send("GET", "/ui/spend?group_by=colour", nil, ""); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "group_by") {
		t.Errorf("a bad group_by: %d", resp.StatusCode)
	}
	if resp, body := c.send("GET", "/ui/spend?from=90d&bucket=hour", nil, ""); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "coarser") {
		t.Errorf("too many periods: %d", resp.StatusCode)
	}
}

// The Keys page shows each budget with what the budgets API says was
// spent; a team's key sees its own team's budget only.
func TestConsoleShowsBudgets(t *testing.T) {
	j := startGov(t, &fakeopenai.Server{PromptTokens: 100, CompletionTokens: 50}, t.TempDir(),
		`budgets: [{scope: "team:ml", period: daily, limit_usd: 5, mode: hard}, {scope: "team:web", period: monthly, limit_usd: 9, mode: soft}]`)
	_, ml := j.teamKey("ml-app", "ml", "")
	if status, _, b := j.do("POST", "/v1/chat/completions", ml, hiBody("priced")); status != http.StatusOK {
		t.Fatalf("chat: %d %s", status, b)
	}
	var spent string
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, b := range j.budgets() {
			if b.Scope == "team:ml" && b.Status != nil {
				spent = b.Status.SpentUSD
			}
		}
		if spent != "" && spent != "0" && spent != "0.000000" || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	row := regexp.MustCompile(`<tr data-budget="[^"]*"><td>(team:[a-z]+)</td>[\s\S]*?data-field="spent">\$([0-9.]+)</td>`)
	seen := func(key string) map[string]string {
		c := newConsoleClient(t, j)
		if resp, _ := c.send("POST", "/ui/login", url.Values{"key": {key}}, j.url); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in: %d", resp.StatusCode)
		}
		_, page := c.send("GET", "/ui/keys", nil, "")
		out := map[string]string{}
		for _, m := range row.FindAllStringSubmatch(page, -1) {
			out[m[1]] = m[2]
		}
		return out
	}
	if got := seen(adminKey); got["team:ml"] != spent || spent == "0" || got["team:web"] == "" {
		t.Errorf("admin sees budgets %v; the budgets API says team:ml spent %s", got, spent)
	}
	if got := seen(ml); len(got) != 1 || got["team:ml"] != spent {
		t.Errorf("team ml's key sees budgets %v, want only team:ml (spent %s)", got, spent)
	}
}
