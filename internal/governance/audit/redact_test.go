package audit

import (
	"strings"
	"testing"
)

func TestRedactRemovesSecretsAtAnyDepth(t *testing.T) {
	in := `{"name":"app","key":"jk-plain","tags":{"team":"ml"},
		"credentials":[{"access_key_id":"JKIA1","secret_access_key":"s3cr3t"}],
		"spec":{"env":{"HF_TOKEN":"hf_x","MODE":"fast"},"Api_Key":"sk-1"},
		"webhook":"https://hooks.example/T/B/abc","limit_usd":1.50,"empty_token":""}`
	got := string(Redact([]byte(in)))
	for _, secret := range []string{"jk-plain", "s3cr3t", "hf_x", "sk-1", "hooks.example"} {
		if strings.Contains(got, secret) {
			t.Fatalf("%q survived: %s", secret, got)
		}
	}
	for _, kept := range []string{`"name":"app"`, `"team":"ml"`, `"MODE":"fast"`, `"limit_usd":1.50`, `"empty_token":""`} {
		if !strings.Contains(got, kept) {
			t.Fatalf("%s was lost: %s", kept, got)
		}
	}
	// "credentials" names a secret, so the whole list goes.
	if !strings.Contains(got, `"credentials":"[redacted]"`) {
		t.Fatalf("credentials: %s", got)
	}
	if got := string(Redact([]byte(`{"a":`))); strings.Contains(got, `"a"`) {
		t.Fatalf("unreadable JSON kept: %s", got)
	}
}

// TestRedactRecognisesSecretsByValue: a model's args and env hold secrets
// under names that say nothing; their shape gives them away.
func TestRedactRecognisesSecretsByValue(t *testing.T) {
	in := `{"name":"m","spec":{
		"args":["--port","8080","--api-key","plain-looking-value","--hf-token=hf_abcdefghijklmnop","--model","llama"],
		"env":{"DATABASE_URL":"postgres://junction:hunter2@db.internal:5432/junction?sslmode=disable",
			"UPSTREAM":"https://api.example.com/v1?api_key=qwertyuiop&region=eu",
			"OPENAI":"sk-proj-AbCdEfGhIjKlMnOpQrSt","CLAUDE":"sk-ant-api03-AbCdEfGhIjKlMnOp",
			"JUNCTION":"jk-0123456789abcdef0123","AWS":"AKIAIOSFODNN7EXAMPLE",
			"HEADER":"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig"},
		"command":"serve --token abc MY_CREDENTIALS=opensesame --threads 4"}}`
	got := string(Redact([]byte(in)))
	for _, secret := range []string{"plain-looking-value", "hf_abcdefghijklmnop", "hunter2", "qwertyuiop",
		"sk-proj-AbCd", "sk-ant-api03", "jk-0123456789", "AKIAIOSFODNN7EXAMPLE", "eyJhbGciOiJIUzI1NiJ9", "opensesame"} {
		if strings.Contains(got, secret) {
			t.Errorf("%q survived: %s", secret, got)
		}
	}
	for _, kept := range []string{`"--port","8080"`, `"--model","llama"`, `"--api-key","[redacted]"`, `--hf-token=[redacted]`,
		`postgres://junction:[redacted]@db.internal:5432/junction?sslmode=disable`, `region=eu`, `--threads 4`, `Bearer [redacted]`} {
		if !strings.Contains(got, kept) {
			t.Errorf("%s was lost: %s", kept, got)
		}
	}
}
