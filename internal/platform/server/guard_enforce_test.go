package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// TestEnforcedGuardrailCannotBeSwapped: a guardrail an admin enforces on a
// model, a route or a key cannot be replaced by the request (the header,
// its mode, X-Junction-Tags or Converse's guardrailConfig): the request
// gets 403 and never reaches the model. An enforced guardrail asked for by
// name is fine, and a guardrail that is not enforced can still be chosen.
func TestEnforcedGuardrailCannotBeSwapped(t *testing.T) {
	fake := &fakeopenai.Server{Record: true}
	j := start(t, fake, `  - {name: enforced, provider: openai, upstream_model: small-v1, guardrail: support, guardrail_enforced: true}
  - {name: open, provider: openai, upstream_model: small-v1, guardrail: support}
routes:
  - {name: strict-route, deployments: [{model: open}], guardrail: support, guardrail_enforced: true}
`+guardYAML+`  - id: lax
    name: lax
    blocked_input_messaging: "no"
    blocked_outputs_messaging: "no"
    word_policy:
      words: [{text: "zzz"}]
`)
	_, keySecret := j.createKey("strict", map[string]string{"guardrail": "support", "guardrail_enforced": "true"})
	chat := func(model string) string {
		return `{"model":"` + model + `","messages":[{"role":"user","content":"Tell me about Project Falcon"}]}`
	}
	blocked := func(b []byte) bool { return strings.Contains(string(b), "Sorry, I can't take that request.") }

	for _, tc := range []struct {
		name, key, model string
		hdr              []string
		by               string
	}{
		{"model, header", adminKey, "enforced", []string{"X-Junction-Guardrail", "lax"}, "model or route enforced"},
		{"model, mode", adminKey, "enforced", []string{"X-Junction-Guardrail-Mode", "async"}, "model or route enforced"},
		{"route, header", adminKey, "strict-route", []string{"X-Junction-Guardrail", "lax"}, "model or route strict-route"},
		{"key, header", keySecret, "gpt-4o-mini", []string{"X-Junction-Guardrail", "lax"}, "the API key"},
		{"key, tags", keySecret, "gpt-4o-mini", []string{"X-Junction-Tags", "guardrail=lax"}, "the API key"},
	} {
		before := len(fake.Requests())
		status, _, b := j.do("POST", "/v1/chat/completions", tc.key, chat(tc.model), tc.hdr...)
		if status != http.StatusForbidden || !strings.Contains(string(b), `guardrail \"support\"`) || !strings.Contains(string(b), tc.by) {
			t.Errorf("%s: %d %s; want 403 saying support is enforced by %s", tc.name, status, b, tc.by)
		}
		if len(fake.Requests()) != before {
			t.Errorf("%s: the refused request reached the model", tc.name)
		}
	}
	// Converse's guardrailConfig is a request's choice too.
	status, hdr, b := j.do("POST", "/model/enforced/converse", adminKey,
		`{"messages":[{"role":"user","content":[{"text":"hi"}]}],"guardrailConfig":{"guardrailIdentifier":"lax","guardrailVersion":"DRAFT"}}`)
	if status != http.StatusForbidden || hdr.Get("X-Amzn-Errortype") != "AccessDeniedException" {
		t.Errorf("converse with guardrailConfig: %d %v %s", status, hdr.Get("X-Amzn-Errortype"), b)
	}

	// The enforced guardrail applies, also when the request names it.
	for _, tc := range []struct {
		key, model string
		hdr        []string
	}{
		{adminKey, "enforced", nil},
		{adminKey, "enforced", []string{"X-Junction-Guardrail", "support"}},
		{adminKey, "strict-route", nil},
		{keySecret, "gpt-4o-mini", nil},
		{keySecret, "gpt-4o-mini", []string{"X-Junction-Guardrail-Mode", "sync"}},
	} {
		if status, _, b := j.do("POST", "/v1/chat/completions", tc.key, chat(tc.model), tc.hdr...); status != 200 || !blocked(b) {
			t.Errorf("%s %v: %d %s; want the input blocked by support", tc.model, tc.hdr, status, b)
		}
	}
	// Not enforced: the request's choice wins, as documented.
	if status, _, b := j.do("POST", "/v1/chat/completions", adminKey, chat("open"), "X-Junction-Guardrail", "lax"); status != 200 || blocked(b) {
		t.Errorf("open model with lax: %d %s", status, b)
	}
}
