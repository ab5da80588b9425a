package server_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

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

// A guardrail created, refused, edited and deleted from the Guardrails
// page is so in the admin API: the page's forms go through the checks
// and answers of POST, PUT and DELETE /api/v1/guardrails.
func TestConsoleGuardrailEditingInBrowser(t *testing.T) {
	b := browser(t)
	j := start(t, &fakeopenai.Server{}, "")
	policy := func(word string) string {
		return `{"name":"faq","blockedInputMessaging":"no","blockedOutputsMessaging":"no","wordPolicy":{"words":[{"text":"` + word + `"}]}}`
	}
	stored := func() []guardrail.Record {
		var listed struct{ Guardrails []guardrail.Record }
		json.Unmarshal(j.mustDo(200, "GET", "/api/v1/guardrails", adminKey, ""), &listed)
		var out []guardrail.Record
		for _, g := range listed.Guardrails {
			if g.Source == "api" {
				out = append(out, g)
			}
		}
		return out
	}
	// until polls the admin API's stored guardrails until ok holds.
	until := func(what string, ok func([]guardrail.Record) bool) []guardrail.Record {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			got := stored()
			if ok(got) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the admin API lists %+v", what, got)
			}
		}
	}
	words := func(g guardrail.Record) string {
		var ws []string
		for _, w := range g.Policy.WordPolicy.Words {
			ws = append(ws, w.Text)
		}
		return strings.Join(ws, ",")
	}

	b.do(chromedp.Navigate(j.url+"/ui/guardrails"),
		chromedp.WaitVisible(chromedp.CSS(`#key`)),
		chromedp.SendKeys(chromedp.CSS(`#key`), adminKey),
		chromedp.Click(chromedp.CSS(`#signin`)),
		chromedp.WaitVisible(chromedp.CSS(`#create-guardrail`)),
		chromedp.SetValue(chromedp.CSS(`#create-guardrail textarea`), policy("alpha")),
		chromedp.Submit(chromedp.CSS(`#create-guardrail textarea`)),
		chromedp.WaitVisible(chromedp.CSS(`#guardrails tr[data-name="faq"]`)))
	made := until("created", func(gs []guardrail.Record) bool { return len(gs) == 1 })[0]
	if made.Policy.Name != "faq" || words(made) != "alpha" || made.Version != "DRAFT" {
		t.Fatalf("the guardrail made on the page: %+v", made)
	}

	// A policy the API refuses is refused with its message, and the text
	// is kept to be fixed.
	const bad = `{"name":"bad"}`
	b.do(chromedp.SetValue(chromedp.CSS(`#create-guardrail textarea`), bad),
		chromedp.Submit(chromedp.CSS(`#create-guardrail textarea`)),
		chromedp.WaitVisible(chromedp.CSS(`#error`)))
	if msg := b.text(`#error`); !strings.Contains(msg, "policy.blocked_input_messaging: required") {
		t.Errorf("a refused policy shows %q, not the API's message", msg)
	}
	if kept := eval[string](b, `document.querySelector('#create-guardrail textarea').value`); kept != bad {
		t.Errorf("the refused text is not kept: %q", kept)
	}
	b.screenshot("guardrails-refused")
	if gs := stored(); len(gs) != 1 {
		t.Fatalf("a refused policy was stored: %+v", gs)
	}

	// Its draft, edited on the page, is the API's; version 1, frozen
	// before, is not changed.
	j.mustDo(201, "POST", "/api/v1/guardrails/"+made.ID+"/versions", adminKey, "")
	b.do(chromedp.Navigate(j.url+"/ui/guardrails"),
		chromedp.Click(chromedp.CSS(`#guardrails tr[data-guardrail="`+made.ID+`"] summary`)),
		chromedp.WaitVisible(chromedp.CSS(`#edit-`+made.ID+` textarea`)),
		chromedp.SetValue(chromedp.CSS(`#edit-`+made.ID+` textarea`), policy("beta")),
		chromedp.Submit(chromedp.CSS(`#edit-`+made.ID+` textarea`)))
	until("edited", func(gs []guardrail.Record) bool { return len(gs) == 1 && words(gs[0]) == "beta" })
	var v1 guardrail.Record
	json.Unmarshal(j.mustDo(200, "GET", "/api/v1/guardrails/"+made.ID+"/versions/1", adminKey, ""), &v1)
	if words(v1) != "alpha" {
		t.Errorf("version 1 changed with the draft: %+v", v1)
	}
	b.do(chromedp.WaitVisible(chromedp.CSS(`#guardrails tr[data-guardrail="` + made.ID + `"] [data-field="latest"]`)))
	if latest := b.text(`#guardrails tr[data-guardrail="` + made.ID + `"] [data-field="latest"]`); latest != "1" {
		t.Errorf("the page gives latest version %q, want 1", latest)
	}

	// Deleted on the page, it is gone from the API and the page, and the
	// three changes are in the audit log.
	b.do(chromedp.Click(chromedp.CSS(`#delete-`+made.ID+` button`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#guardrails tr[data-guardrail="`+made.ID+`"]`)))
	until("deleted", func(gs []guardrail.Record) bool { return len(gs) == 0 })
	j.mustDo(404, "GET", "/api/v1/guardrails/"+made.ID, adminKey, "")
	var audited admin.AuditList
	json.Unmarshal(j.mustDo(200, "GET", "/api/v1/audit?limit=20", adminKey, ""), &audited)
	changes := map[string]bool{}
	for _, e := range audited.Entries {
		changes[e.Method+" "+e.Path] = true
	}
	for _, want := range []string{"POST /ui/guardrails", "POST /ui/guardrails/" + made.ID, "POST /ui/guardrails/" + made.ID + "/delete"} {
		if !changes[want] {
			t.Errorf("the audit log has no %q: %+v", want, audited.Entries)
		}
	}
}
