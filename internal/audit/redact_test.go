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
