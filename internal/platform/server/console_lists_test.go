package server_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/guardrail"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// The Guardrails and Audit log pages list what GET /api/v1/guardrails
// and GET /api/v1/audit give: each guardrail's version, latest frozen
// version and source, and each change's key, method, path and status.
func TestConsoleGuardrailsAndAuditInBrowser(t *testing.T) {
	b := browser(t)
	j := start(t, &fakeopenai.Server{}, "")
	policy := func(name, word string) string {
		return `{"name":"` + name + `","blockedInputMessaging":"no","blockedOutputsMessaging":"no",` +
			`"wordPolicy":{"words":[{"text":"` + word + `"}]}}`
	}
	var first guardrail.Record
	json.Unmarshal(j.mustDo(201, "POST", "/api/v1/guardrails", adminKey, policy("faq", "alpha")), &first)
	j.mustDo(201, "POST", "/api/v1/guardrails/"+first.ID+"/versions", adminKey, "")
	j.mustDo(201, "POST", "/api/v1/guardrails", adminKey, policy("support", "beta"))
	j.do("POST", "/api/v1/guardrails", adminKey, `{"name":"bad"}`) // refused, and audited
	var listed struct{ Guardrails []guardrail.Record }
	json.Unmarshal(j.mustDo(200, "GET", "/api/v1/guardrails", adminKey, ""), &listed)
	if len(listed.Guardrails) != 2 {
		t.Fatalf("the API lists %d guardrails, want 2: %+v", len(listed.Guardrails), listed)
	}

	b.do(chromedp.Navigate(j.url+"/ui/guardrails"),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
		chromedp.SendKeys(chromedp.CSS(`#key`), adminKey),
		chromedp.Click(chromedp.CSS(`#signin`)),
		chromedp.WaitVisible(chromedp.CSS(`#guardrails`)))
	rows := eval[[][]string](b, `[...document.querySelectorAll('#guardrails tr[data-guardrail]')].map(r => [r.dataset.guardrail,
		...['name', 'version', 'latest', 'source'].map(f => r.querySelector('[data-field="' + f + '"]').textContent)])`)
	if len(rows) != len(listed.Guardrails) {
		t.Fatalf("the page lists %d guardrails, the API %d: %v", len(rows), len(listed.Guardrails), rows)
	}
	for i, g := range listed.Guardrails {
		want := []string{g.ID, g.Policy.Name, g.Version, g.LatestVersion, g.Source}
		if got := rows[i]; len(got) != 5 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] || got[4] != want[4] {
			t.Errorf("guardrail %d: the page says %q, the API %q", i, got, want)
		}
	}
	b.screenshot("guardrails")

	var audited admin.AuditList
	json.Unmarshal(j.mustDo(200, "GET", "/api/v1/audit?limit=3", adminKey, ""), &audited)
	if len(audited.Entries) != 3 {
		t.Fatalf("the audit API gives %d entries, want 3 (of 4 changes): %+v", len(audited.Entries), audited)
	}
	b.do(chromedp.Navigate(j.url+"/ui/audit?limit=3"), chromedp.WaitVisible(chromedp.CSS(`#audit`)))
	entries := eval[[][]string](b, `[...document.querySelectorAll('#audit tr[data-entry]')].map(r => [r.dataset.entry,
		...['key', 'method', 'path', 'status'].map(f => r.querySelector('[data-field="' + f + '"]').textContent)])`)
	if len(entries) != len(audited.Entries) {
		t.Fatalf("the page shows %d entries, the API %d: %v", len(entries), len(audited.Entries), entries)
	}
	statuses := map[string]bool{}
	for i, e := range audited.Entries {
		want := []string{strconv.FormatInt(e.ID, 10), e.KeyName, e.Method, e.Path, strconv.Itoa(e.Status)}
		got := entries[i]
		if len(got) != 5 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] || got[4] != want[4] {
			t.Errorf("entry %d: the page says %q, the API %q", i, got, want)
		}
		statuses[want[4]] = true
	}
	if !statuses["400"] || !statuses["201"] {
		t.Errorf("the latest three entries should include the refused create and a made one: %+v", audited.Entries)
	}
	b.screenshot("audit")

	b.do(chromedp.Navigate(j.url+"/ui/audit?limit=0"), chromedp.WaitVisible(chromedp.CSS(`#error`)))
	if got := b.text(`#error`); got == "" {
		t.Error("a bad limit shows no error")
	}
}
