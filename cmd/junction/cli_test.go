package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/testkit/junctiontest"
)

const supportGuardrail = `
guardrails:
  - id: support
    name: support
    blocked_input_messaging: "Sorry, I can't take that request."
    blocked_outputs_messaging: "Sorry, I can't answer that."
    sensitive_information_policy:
      pii_entities: [{type: EMAIL, action: ANONYMIZE}]
      regexes: [{name: TICKET, pattern: '\bTCK-\d{4}\b', action: ANONYMIZE}]
`

// TestCLIManagesKeysAndReportsUsage drives a running "junction serve"
// with the CLI as an operator would: a key made with "keys create" calls
// a model, its request lands in "usage" under the key's team, "keys
// aws-credentials" issues, lists and revokes AWS access keys, "keys
// limits" and "keys revoke" take effect, and what the admin did is in
// "audit".
func TestCLIManagesKeysAndReportsUsage(t *testing.T) {
	j := junctiontest.Start(t, junctiontest.Options{Config: gatewayConfig(upstream(t), "")})

	if out := cli(t, j.URL, "", "teams", "create", "search", "--description", "the search team"); !strings.Contains(out, "Created team search") {
		t.Fatalf("teams create: %q", out)
	}
	cli(t, j.URL, "", "teams", "projects", "create", "search", "ranking")
	if out := cli(t, j.URL, "", "teams", "projects", "list", "search"); !strings.Contains(out, "ranking") {
		t.Fatalf("projects list does not show the new project:\n%s", out)
	}
	var teams struct{ Teams []keys.Team }
	decode(t, cli(t, j.URL, "", "teams", "list", "--json"), &teams)
	if len(teams.Teams) != 1 || teams.Teams[0].Name != "search" || teams.Teams[0].Description != "the search team" {
		t.Fatalf("teams list: %+v", teams.Teams)
	}

	var created admin.CreateKeyResponse
	decode(t, cli(t, j.URL, "", "keys", "create", "--name", "ranker", "--team", "search", "--project", "ranking",
		"--tag", "app=faq", "--json"), &created)
	if created.ID == "" || !strings.HasPrefix(created.Secret, created.Prefix) || created.Team != "search" {
		t.Fatalf("keys create: %+v", created)
	}
	for range 3 {
		if st, body := chat(j.URL, created.Secret, "small"); st != 200 {
			t.Fatalf("chat with the new key: %d %s", st, body)
		}
	}
	if out := cli(t, j.URL, "", "keys", "list"); !strings.Contains(out, created.ID) || !strings.Contains(out, "search/ranking") ||
		!strings.Contains(out, "app=faq") {
		t.Fatalf("keys list does not show the new key with its team and tags:\n%s", out)
	}

	// The ledger is written off the request path: poll until the three
	// calls are in, then check them exactly ($0.030 each).
	var usage admin.UsageResponse
	junctiontest.Eventually(t, "three requests in the ledger", func() bool {
		decode(t, cli(t, j.URL, "", "usage", "--since", "1h", "--group-by", "tag:team", "--json"), &usage)
		return usage.Total.Requests >= 3
	})
	if len(usage.Rows) != 1 || usage.Rows[0].Group != "search" || usage.Rows[0].Requests != 3 ||
		usage.Rows[0].InputTokens != 36 || usage.Rows[0].OutputTokens != 27 || !near(usage.Rows[0].CostUSD, 0.09) {
		t.Fatalf("usage by team: %+v", usage.Rows)
	}
	table := cli(t, j.URL, "", "usage", "--since", "1h", "--group-by", "model")
	if !strings.Contains(table, "small") || !strings.Contains(table, "0.090000") {
		t.Fatalf("usage table:\n%s", table)
	}

	// AWS access keys for SDK clients that sign with SigV4: issued, listed
	// without their secret, revoked.
	var cred admin.CreateAWSCredentialResponse
	decode(t, cli(t, j.URL, "", "keys", "aws-credentials", "create", created.ID, "--json"), &cred)
	if cred.Credential == nil || cred.AccessKeyID == "" || cred.SecretAccessKey == "" || cred.KeyID != created.ID {
		t.Fatalf("aws-credentials create: %+v", cred)
	}
	listed := cli(t, j.URL, "", "keys", "aws-credentials", "list", created.ID)
	if !strings.Contains(listed, cred.AccessKeyID) || !strings.Contains(listed, "active") || strings.Contains(listed, cred.SecretAccessKey) {
		t.Fatalf("aws-credentials list:\n%s", listed)
	}
	cli(t, j.URL, "", "keys", "aws-credentials", "revoke", cred.AccessKeyID)
	if listed := cli(t, j.URL, "", "keys", "aws-credentials", "list", created.ID); !strings.Contains(listed, "revoked") {
		t.Fatalf("aws-credentials list after revoke:\n%s", listed)
	}

	if out := cli(t, j.URL, "", "keys", "limits", created.ID, "--rpm", "1"); !strings.Contains(out, "rpm 1") {
		t.Fatalf("keys limits: %q", out)
	}
	// The key's own limit of one request a minute admits one, then
	// refuses.
	if st, body := chat(j.URL, created.Secret, "small"); st != 200 {
		t.Fatalf("the first request under the key's rpm of 1: %d %s", st, body)
	}
	if st, body := chat(j.URL, created.Secret, "small"); st != 429 {
		t.Fatalf("over the key's rpm of 1: %d %s, want 429", st, body)
	}
	cli(t, j.URL, "", "keys", "revoke", created.ID)
	if st, body := chat(j.URL, created.Secret, "small"); st != 401 {
		t.Fatalf("a revoked key: %d %s, want 401", st, body)
	}

	var entries admin.AuditList
	decode(t, cli(t, j.URL, "", "audit", "--json"), &entries)
	var actions []string
	for _, e := range entries.Entries {
		actions = append(actions, e.Method+" "+strings.SplitN(e.Resource, "/", 2)[0])
	}
	for _, want := range []string{"POST teams", "POST keys", "PUT keys", "DELETE keys", "DELETE aws-credentials"} {
		if !strings.Contains(strings.Join(actions, ","), want) {
			t.Errorf("audit has no %q: %v", want, actions)
		}
	}
}

// TestCLIManagesBudgets creates, lists, updates and deletes a budget with
// the CLI and sees a bad one refused with the reason.
func TestCLIManagesBudgets(t *testing.T) {
	j := junctiontest.Start(t, junctiontest.Options{Config: gatewayConfig(upstream(t), "")})
	out := cli(t, j.URL, "", "budgets", "create", "--scope", "model:small", "--period", "daily", "--limit-usd", "0.04")
	rest, ok := strings.CutPrefix(out, "Created budget ")
	id, _, _ := strings.Cut(rest, ":")
	if !ok || id == "" || !strings.Contains(rest, "hard daily model:small $0.04") {
		t.Fatalf("budgets create: %q", out)
	}
	// $0.04 covers one call's worst case (max_tokens 10: under $0.03) and
	// its actual $0.030; the second's worst case no longer fits.
	if st, body := chat(j.URL, adminKey, "small"); st != 200 {
		t.Fatalf("first call under the budget: %d %s", st, body)
	}
	if st, body := chat(j.URL, adminKey, "small"); st != 429 {
		t.Fatalf("second call over a hard $0.04 budget: %d %s, want 429", st, body)
	}
	var list admin.BudgetList
	decode(t, cli(t, j.URL, "", "budgets", "list", "--json"), &list)
	if len(list.Budgets) != 1 || list.Budgets[0].ID != id || list.Budgets[0].Status == nil || list.Budgets[0].Status.SpentUSD != "0.03" {
		t.Fatalf("budgets list: %+v", list.Budgets)
	}
	cli(t, j.URL, "", "budgets", "update", id, "--scope", "model:small", "--period", "daily", "--limit-usd", "1")
	if st, body := chat(j.URL, adminKey, "small"); st != 200 {
		t.Fatalf("a call after raising the budget to $1: %d %s", st, body)
	}
	if msg := cliFails(t, j.URL, adminKey, "budgets", "create", "--scope", "planet:mars", "--limit-usd", "1"); !strings.Contains(msg, "scope") {
		t.Fatalf("a bad scope's error does not say what is wrong: %q", msg)
	}
	cli(t, j.URL, "", "budgets", "delete", id)
	decode(t, cli(t, j.URL, "", "budgets", "list", "--json"), &list)
	if len(list.Budgets) != 0 {
		t.Fatalf("budgets after delete: %+v", list.Budgets)
	}
}

// TestCLIGuardrailsTest applies a policy file offline and a guardrail
// stored on the server to text on stdin.
func TestCLIGuardrailsTest(t *testing.T) {
	j := junctiontest.Start(t, junctiontest.Options{Config: gatewayConfig(upstream(t), supportGuardrail)})
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte(supportGuardrail), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{policy, "support"} {
		out := cli(t, j.URL, "mail jane@example.com re TCK-1234", "guardrails", "test", "--policy", p)
		if !strings.Contains(out, "action: GUARDRAIL_INTERVENED") || !strings.Contains(out, "output: mail {EMAIL} re {TICKET}") {
			t.Fatalf("guardrails test --policy %s:\n%s", p, out)
		}
	}
	if msg := cliFails(t, j.URL, adminKey, "guardrails", "test", "--policy", "nosuch"); !strings.Contains(msg, "neither a file nor a guardrail") {
		t.Fatalf("an unknown policy: %q", msg)
	}
}

// TestCLIErrorsSayWhatToFix runs commands that cannot succeed: each exits
// 1 with a message that names the problem.
func TestCLIErrorsSayWhatToFix(t *testing.T) {
	j := junctiontest.Start(t, junctiontest.Options{Config: gatewayConfig(upstream(t), "")})
	for _, tc := range []struct {
		name, url, key string
		args           []string
		want           string
	}{
		{"no key", j.URL, "", []string{"keys", "list"}, "no admin key: pass --key or set JUNCTION_ADMIN_KEY"},
		{"wrong key", j.URL, "jk-wrong", []string{"keys", "list"}, "(HTTP 401)"},
		{"no server", "http://127.0.0.1:1", adminKey, []string{"usage"}, "cannot reach Junction at http://127.0.0.1:1"},
		{"bad since", j.URL, adminKey, []string{"usage", "--since", "yesterday-ish"}, "from:"},
		{"missing flag", j.URL, adminKey, []string{"keys", "create"}, `"name" not set`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if msg := cliFails(t, tc.url, tc.key, tc.args...); !strings.Contains(msg, tc.want) {
				t.Fatalf("stderr %q does not contain %q", msg, tc.want)
			}
		})
	}
	if out := cli(t, j.URL, "", "version"); strings.TrimSpace(out) != "dev" {
		t.Fatalf("version: %q", out)
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
