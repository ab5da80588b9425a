package process

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServersSeeNoSecretsAndNotTheDataDir runs a real server under a
// runtime rooted in a data directory, as Junction does, with secrets in
// Junction's environment: the server's environment holds only the
// allow-listed variables and its model's own, and from its working
// directory it finds no master.key or junction.db above it.
func TestServersSeeNoSecretsAndNotTheDataDir(t *testing.T) {
	secrets := map[string]string{
		"DATABASE_URL":          "postgres://junction:hunter2@db:5432/junction",
		"MY_CREDENTIALS":        "opensesame",
		"OPENAI_API_KEY":        "sk-secret-openai",
		"JUNCTION_ADMIN_KEY":    "jk-secret-admin",
		"AWS_SECRET_ACCESS_KEY": "aws-secret",
		"SENTRY_DSN":            "https://abc@sentry.example/1",
	}
	allowed := map[string]string{"LANG": "C.UTF-8", "TZ": "UTC", "SAGEMAKER_PROGRAM": "serve.py",
		"CUDA_MODULE_LOADING": "LAZY", "LC_ALL": "C.UTF-8"}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	for k, v := range allowed {
		t.Setenv(k, v)
	}
	data := t.TempDir()
	for _, name := range []string{"master.key", "junction.db"} {
		if err := os.WriteFile(filepath.Join(data, name), []byte("private"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r, err := New(filepath.Join(data, "instances"), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(r.workRoot) })
	// What the model's config sets reaches the server.
	in := start(t, r, childSpec(t, "envcheck", map[string]string{"HOSTRT_TEST_CHILD": "1", "MODEL_OPTION": "fast"}))
	st := waitReady(t, in)

	var env map[string]string
	if err := json.Unmarshal([]byte(get(t, st.Addr, "/env")), &env); err != nil {
		t.Fatal(err)
	}
	for k, v := range env {
		for sk, sv := range secrets {
			if strings.Contains(v, sv) || k == sk {
				t.Errorf("the server sees %s=%s", k, v)
			}
		}
	}
	for k, v := range allowed {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if env["MODEL_OPTION"] != "fast" || env["PATH"] != os.Getenv("PATH") || env["SAGEMAKER_BIND_TO_PORT"] == "" {
		t.Errorf("server environment lacks the model's, PATH or the port: %v", env)
	}
	for _, name := range []string{"master.key", "junction.db"} {
		if found := get(t, st.Addr, "/find?name="+name); found != "" {
			t.Errorf("the server read %s from its working directory", found)
		}
	}
}
