package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/api/admin"
	bedrockapi "github.com/junctionhq/junction/internal/api/bedrock"
	guardrailapi "github.com/junctionhq/junction/internal/api/guardrail"
	"github.com/junctionhq/junction/internal/auth/awscreds"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/auth/secret"
	"github.com/junctionhq/junction/internal/guardrail"
	"github.com/junctionhq/junction/internal/platform/store"
)

// guardrailServer is the guardrail routes wired as server.go wires them,
// over a real SQLite database, with an access-key pair issued for a key
// and an admin key.
type guardrailServer struct {
	url          string
	akid, secret string
	admin        string
}

func startGuardrails(t *testing.T) *guardrailServer {
	t.Helper()
	isolateAWS(t)
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "junction.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ks, err := keys.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := awscreds.Open(ctx, db, filepath.Join(dir, secret.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := ks.Create(ctx, "app", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	cred, sec, err := creds.Create(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, adminSecret, err := ks.Create(ctx, "admin", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	cfg := []guardrail.Config{{ID: "support", Version: 3, Policy: guardrail.Policy{
		Name:                    "support",
		BlockedInputMessaging:   "Sorry, I can't take that request.",
		BlockedOutputsMessaging: "Sorry, I can't answer that.",
		WordPolicy:              guardrail.WordPolicy{ManagedWordLists: []guardrail.ManagedWordList{{Type: guardrail.ManagedProfanity}}},
		SensitiveInformation: guardrail.SensitiveInformationPolicy{
			PIIEntities: []guardrail.PIIEntity{{Type: guardrail.PIIEmail, Actions: guardrail.Actions{Action: guardrail.Anonymize}},
				{Type: guardrail.PIISSN, Actions: guardrail.Actions{Action: guardrail.Block}}},
			Regexes: []guardrail.Regex{{Name: "TICKET", Pattern: `\bTCK-\d{4}\b`, Actions: guardrail.Actions{Action: guardrail.Anonymize}}},
		},
	}}}
	if probs := guardrail.Validate(cfg); len(probs) > 0 {
		t.Fatal(probs)
	}
	reg, err := guardrail.NewRegistry(cfg, &guardrail.Store{DB: db}, guardrail.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := &guardrailapi.Handler{Registry: reg, Auth: api.NewAWSAuth(ks, creds, bedrockapi.SigningName), MaxBodyBytes: 1 << 20}
	mux := http.NewServeMux()
	h.Register(mux, func(next http.Handler) http.Handler { return api.Authenticate(ks, true, admin.WriteError, next) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r.WithContext(api.WithInfo(r.Context(), &api.Info{RequestID: "req-1"})))
	}))
	t.Cleanup(srv.Close)
	return &guardrailServer{url: srv.URL, akid: cred.AccessKeyID, secret: sec, admin: adminSecret}
}

func (g *guardrailServer) client(akid, secret string) *bedrockruntime.Client {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(akid, secret, "")}
	return bedrockruntime.NewFromConfig(cfg, func(o *bedrockruntime.Options) {
		o.BaseEndpoint = aws.String(g.url)
		o.Retryer = aws.NopRetryer{}
	})
}

func (g *guardrailServer) adminDo(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, g.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+g.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func applyText(source types.GuardrailContentSource, texts ...string) *bedrockruntime.ApplyGuardrailInput {
	in := &bedrockruntime.ApplyGuardrailInput{Source: source}
	for _, s := range texts {
		in.Content = append(in.Content, &types.GuardrailContentBlockMemberText{Value: types.GuardrailTextBlock{Text: aws.String(s)}})
	}
	return in
}

func TestApplyGuardrailSDK(t *testing.T) {
	g := startGuardrails(t)
	client := g.client(g.akid, g.secret)
	ctx := context.Background()

	t.Run("anonymize", func(t *testing.T) {
		in := applyText(types.GuardrailContentSourceInput, "Mail jane@example.com about TCK-1234.")
		in.GuardrailIdentifier, in.GuardrailVersion = aws.String("support"), aws.String("3")
		out, err := client.ApplyGuardrail(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if out.Action != types.GuardrailActionGuardrailIntervened || len(out.Outputs) != 1 || *out.Outputs[0].Text != "Mail {EMAIL} about {TICKET}." {
			t.Fatalf("action %s outputs %+v", out.Action, out.Outputs)
		}
		si := out.Assessments[0].SensitiveInformationPolicy
		if len(si.PiiEntities) != 1 || si.PiiEntities[0].Type != types.GuardrailPiiEntityTypeEmail || *si.PiiEntities[0].Match != "jane@example.com" ||
			si.PiiEntities[0].Action != types.GuardrailSensitiveInformationPolicyActionAnonymized {
			t.Errorf("pii %+v", si.PiiEntities)
		}
		if len(si.Regexes) != 1 || *si.Regexes[0].Name != "TICKET" || *si.Regexes[0].Match != "TCK-1234" {
			t.Errorf("regexes %+v", si.Regexes)
		}
		if *out.Usage.SensitiveInformationPolicyUnits != 1 || *out.Usage.WordPolicyUnits != 1 || *out.Usage.TopicPolicyUnits != 0 {
			t.Errorf("usage %+v", out.Usage)
		}
		if c := out.GuardrailCoverage.TextCharacters; *c.Guarded != 37 || *c.Total != 37 {
			t.Errorf("coverage %d/%d", *c.Guarded, *c.Total)
		}
	})

	t.Run("block", func(t *testing.T) {
		in := applyText(types.GuardrailContentSourceOutput, "Sure, you bastard.")
		in.GuardrailIdentifier, in.GuardrailVersion = aws.String("support"), aws.String("DRAFT")
		out, err := client.ApplyGuardrail(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		w := out.Assessments[0].WordPolicy
		if out.Action != types.GuardrailActionGuardrailIntervened || *out.Outputs[0].Text != "Sorry, I can't answer that." ||
			len(w.ManagedWordLists) != 1 || *w.ManagedWordLists[0].Match != "bastard" || w.ManagedWordLists[0].Type != types.GuardrailManagedWordTypeProfanity {
			t.Errorf("%s %+v %+v", out.Action, out.Outputs, w)
		}
	})

	t.Run("clean", func(t *testing.T) {
		in := applyText(types.GuardrailContentSourceInput, "What are your hours?")
		in.GuardrailIdentifier, in.GuardrailVersion = aws.String("support"), aws.String("3")
		out, err := client.ApplyGuardrail(ctx, in)
		if err != nil || out.Action != types.GuardrailActionNone || len(out.Outputs) != 0 {
			t.Errorf("%v %+v", err, out)
		}
	})

	t.Run("errors", func(t *testing.T) {
		cases := []struct {
			name, id, version, code string
			c                       *bedrockruntime.Client
		}{
			{"unknown guardrail", "nope", "1", "ResourceNotFoundException", client},
			{"unknown config version", "support", "2", "ResourceNotFoundException", client},
			{"bad version", "nope", "v1", "ValidationException", client},
			{"bad signature", "support", "3", "InvalidSignatureException", g.client(g.akid, "wrong-secret-0123456789")},
			{"unknown access key", "support", "3", "UnrecognizedClientException", g.client("JKAKXXXXXXXXXXXXXXXX", g.secret)},
		}
		for _, tc := range cases {
			in := applyText(types.GuardrailContentSourceInput, "hello")
			in.GuardrailIdentifier, in.GuardrailVersion = aws.String(tc.id), aws.String(tc.version)
			_, err := tc.c.ApplyGuardrail(ctx, in)
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			}
		}
	})
}

// TestGuardrailVersions makes a draft through the admin API, freezes it,
// changes the draft, and checks that each version answers as it was.
func TestGuardrailVersions(t *testing.T) {
	g := startGuardrails(t)
	client := g.client(g.akid, g.secret)
	ctx := context.Background()
	policy := func(word string) string {
		return `{"name":"faq","blockedInputMessaging":"no","blockedOutputsMessaging":"no",` +
			`"wordPolicy":{"words":[{"text":"` + word + `"}]}}`
	}
	status, b := g.adminDo(t, "POST", "/api/v1/guardrails", policy("alpha"))
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, b)
	}
	var rec guardrail.Record
	json.Unmarshal(b, &rec)
	if rec.ID == "" || rec.Version != "DRAFT" {
		t.Fatalf("create: %s", b)
	}
	if status, b := g.adminDo(t, "POST", "/api/v1/guardrails", policy("x")); status != http.StatusConflict {
		t.Errorf("duplicate name: %d %s", status, b)
	}
	if status, b := g.adminDo(t, "POST", "/api/v1/guardrails", `{"name":"bad","wordPolicy":{"words":[{"text":"a","action":"MASK"}]}}`); status != http.StatusBadRequest ||
		!strings.Contains(string(b), "policy.blocked_input_messaging: required") || !strings.Contains(string(b), `action \"MASK\"`) {
		t.Errorf("invalid policy: %d %s", status, b)
	}
	if status, b := g.adminDo(t, "POST", "/api/v1/guardrails/"+rec.ID+"/versions", ""); status != http.StatusCreated || !strings.Contains(string(b), `"version": "1"`) {
		t.Fatalf("freeze: %d %s", status, b)
	}
	if status, b := g.adminDo(t, "PUT", "/api/v1/guardrails/"+rec.ID, policy("beta")); status != http.StatusOK {
		t.Fatalf("update: %d %s", status, b)
	}
	blocked := func(version, text string) bool {
		t.Helper()
		in := applyText(types.GuardrailContentSourceInput, text)
		in.GuardrailIdentifier, in.GuardrailVersion = aws.String(rec.ID), aws.String(version)
		out, err := client.ApplyGuardrail(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return out.Action == types.GuardrailActionGuardrailIntervened
	}
	if !blocked("1", "say alpha") || blocked("1", "say beta") {
		t.Error("version 1 changed with the draft")
	}
	if blocked("DRAFT", "say alpha") || !blocked("DRAFT", "say beta") {
		t.Error("the draft does not answer as updated")
	}
	// Named by its name, too.
	in := applyText(types.GuardrailContentSourceInput, "alpha")
	in.GuardrailIdentifier, in.GuardrailVersion = aws.String("faq"), aws.String("1")
	if out, err := client.ApplyGuardrail(ctx, in); err != nil || out.Action != types.GuardrailActionGuardrailIntervened {
		t.Errorf("by name: %v", err)
	}
	status, b = g.adminDo(t, "GET", "/api/v1/guardrails", "")
	if status != http.StatusOK || !strings.Contains(string(b), `"latestVersion": "1"`) || !strings.Contains(string(b), `"source": "config"`) {
		t.Errorf("list: %d %s", status, b)
	}
	if status, _ := g.adminDo(t, "GET", "/api/v1/guardrails/"+rec.ID+"/versions/1", ""); status != http.StatusOK {
		t.Errorf("get version: %d", status)
	}
	if status, _ := g.adminDo(t, "POST", "/api/v1/guardrails/nope/versions", ""); status != http.StatusNotFound {
		t.Errorf("freeze unknown: %d", status)
	}

	// Deleted, it is gone with every version, cached ones included; the
	// config's guardrails are deleted in the config, not here.
	if status, b := g.adminDo(t, "DELETE", "/api/v1/guardrails/"+rec.ID, ""); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, b)
	}
	for _, version := range []string{"1", "DRAFT"} {
		in := applyText(types.GuardrailContentSourceInput, "alpha")
		in.GuardrailIdentifier, in.GuardrailVersion = aws.String(rec.ID), aws.String(version)
		if _, err := client.ApplyGuardrail(ctx, in); err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("version %s answers after the delete: %v", version, err)
		}
	}
	if status, _ := g.adminDo(t, "GET", "/api/v1/guardrails/"+rec.ID+"/versions/1", ""); status != http.StatusNotFound {
		t.Errorf("get a deleted version: %d", status)
	}
	if status, b := g.adminDo(t, "DELETE", "/api/v1/guardrails/"+rec.ID, ""); status != http.StatusNotFound {
		t.Errorf("delete twice: %d %s", status, b)
	}
	if status, b := g.adminDo(t, "DELETE", "/api/v1/guardrails/support", ""); status != http.StatusBadRequest || !strings.Contains(string(b), "config") {
		t.Errorf("delete a config guardrail: %d %s", status, b)
	}
	if status, b := g.adminDo(t, "POST", "/api/v1/guardrails", policy("gamma")); status != http.StatusCreated {
		t.Errorf("its name is free again: %d %s", status, b)
	}
}
