package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/promptroute"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// wordsEmbed is a deterministic fake embedding: hashed bag of words.
func wordsEmbed(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		v := make([]float32, 64)
		for _, w := range strings.Fields(strings.ToLower(t)) {
			h := fnv.New32a()
			h.Write([]byte(w))
			v[h.Sum32()%64]++
		}
		out[i] = v
	}
	return out, nil
}

type feedbackServer struct {
	srv   *httptest.Server
	fs    *promptroute.FeedbackStore
	dir   string
	fails error // when set, the embedder fails with it
}

func newFeedbackServer(t *testing.T, dir string) *feedbackServer {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(dir, "junction.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &feedbackServer{dir: dir}
	s.fs, err = promptroute.OpenFeedback(context.Background(), db, func(ctx context.Context, texts []string) ([][]float32, error) {
		if s.fails != nil {
			return nil, s.fails
		}
		return wordsEmbed(ctx, texts)
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h := &Handler{DB: db}
	h.RegisterFeedback(mux, func(h http.Handler) http.Handler { return h }, s.fs)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *feedbackServer) do(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.srv.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: body is not JSON: %s", method, path, raw)
	}
	return resp.StatusCode, out
}

func errorOf(body map[string]any) (msg, param string) {
	e, _ := body["error"].(map[string]any)
	msg, _ = e["message"].(string)
	param, _ = e["param"].(string)
	return msg, param
}

func TestFeedbackCreate(t *testing.T) {
	s := newFeedbackServer(t, t.TempDir())
	code, body := s.do(t, "POST", "/api/v1/feedback", `{"prompt":"Translate this clause into legal Japanese","model":"gpt-4o-mini","good":false}`)
	if code != http.StatusCreated || body["stored"] != 1.0 || body["examples"] != 1.0 {
		t.Fatalf("POST = %d %v", code, body)
	}
	for _, tc := range []struct {
		body, param, msg string
	}{
		{`{"prompt":"p","model":"m"}`, "good", "good: required"},
		{`{"model":"m","good":true}`, "prompt", "prompt: required"},
		{`{"prompt":"p","model":"  ","good":true}`, "model", "model: required"},
		{`{"prompt":"p","model":"m","good":"yes"}`, "", "not a JSON feedback object"},
		{`{"prompt":"p","model":"m","good":true,"request_id":"r1"}`, "", `unknown field "request_id"`},
		{`{"prompt":"p","model":"m","good":true} {}`, "", "more than one JSON value"},
		{`not json`, "", "not a JSON feedback object"},
	} {
		code, body := s.do(t, "POST", "/api/v1/feedback", tc.body)
		msg, param := errorOf(body)
		if code != http.StatusBadRequest || param != tc.param || !strings.Contains(msg, tc.msg) {
			t.Errorf("POST %s = %d param %q %q; want 400 param %q containing %q", tc.body, code, param, msg, tc.param, tc.msg)
		}
	}
	if s.fs.Len() != 1 {
		t.Errorf("bad requests stored feedback: %d", s.fs.Len())
	}
}

func TestFeedbackImport(t *testing.T) {
	dir := t.TempDir()
	s := newFeedbackServer(t, dir)
	good := strings.Join([]string{
		`{"prompt":"What is the capital of France?","model":"gpt-4o-mini","good":true}`,
		``,
		`{"prompt":"Prove Fermat's little theorem","model":"gpt-4o-mini","good":false}`,
		"{\"prompt\":\"Prove Fermat's little theorem\",\"model\":\"gpt-4o\",\"good\":true}\r",
		``,
	}, "\n")
	code, body := s.do(t, "POST", "/api/v1/feedback/import", good)
	if code != http.StatusOK || body["stored"] != 3.0 || body["examples"] != 3.0 {
		t.Fatalf("import = %d %v", code, body)
	}

	bad := strings.Join([]string{
		`{"prompt":"ok line","model":"gpt-4o","good":true}`,
		`{"prompt":"no model","good":true}`,
		`{"prompt":"ok line 2","model":"gpt-4o","good":false}`,
		`{"prompt": "broken json`,
		`{"prompt":"no label","model":"gpt-4o"}`,
	}, "\n")
	code, body = s.do(t, "POST", "/api/v1/feedback/import", bad)
	msg, param := errorOf(body)
	if code != http.StatusBadRequest || param != "body" || !strings.HasPrefix(msg, "3 of 5 lines are not valid feedback; nothing was imported; line 2: model: required; line 4: ") {
		t.Fatalf("import with bad lines = %d %q %q", code, param, msg)
	}
	lines := body["error"].(map[string]any)["lines"].([]any)
	var got []string
	for _, l := range lines {
		m := l.(map[string]any)
		field, _, _ := strings.Cut(m["message"].(string), ":")
		got = append(got, fmt.Sprintf("%s@%v", field, m["line"]))
	}
	if strings.Join(got, ",") != "model@2,not a JSON feedback object@4,good@5" {
		t.Errorf("lines = %v", got)
	}
	if s.fs.Len() != 3 {
		t.Errorf("a rejected import stored feedback: %d", s.fs.Len())
	}

	code, body = s.do(t, "POST", "/api/v1/feedback/import", "\n\n")
	if msg, _ := errorOf(body); code != http.StatusBadRequest || !strings.Contains(msg, "no feedback") {
		t.Errorf("empty import = %d %q", code, msg)
	}

	code, body = s.do(t, "GET", "/api/v1/feedback", "")
	models, _ := body["models"].(map[string]any)
	if code != http.StatusOK || body["examples"] != 3.0 || body["dimensions"] != 64.0 || len(models) != 2 {
		t.Errorf("GET = %d %v", code, body)
	}
	if m := models["gpt-4o-mini"].(map[string]any); m["good"] != 1.0 || m["bad"] != 1.0 {
		t.Errorf("gpt-4o-mini counts = %v", m)
	}

	// The labels survive a restart.
	s.srv.Close()
	s2 := newFeedbackServer(t, dir)
	if code, body := s2.do(t, "GET", "/api/v1/feedback", ""); code != http.StatusOK || body["examples"] != 3.0 {
		t.Errorf("after reopen: %d %v", code, body)
	}
}

func TestFeedbackEmbedFailure(t *testing.T) {
	s := newFeedbackServer(t, t.TempDir())
	s.fails = &llm.Error{Status: http.StatusUnauthorized, Type: llm.ErrAuthentication, Message: "invalid api key", Provider: "openai"}
	code, body := s.do(t, "POST", "/api/v1/feedback", `{"prompt":"p","model":"m","good":true}`)
	msg, _ := errorOf(body)
	if code != http.StatusBadGateway || msg != "could not embed the feedback: provider openai: invalid api key" {
		t.Errorf("embed failure = %d %q", code, msg)
	}
	s.fails = errors.New("connection refused")
	code, body = s.do(t, "POST", "/api/v1/feedback/import", `{"prompt":"p","model":"m","good":true}`)
	if msg, _ := errorOf(body); code != http.StatusBadGateway || !strings.Contains(msg, "connection refused") {
		t.Errorf("import embed failure = %d %q", code, msg)
	}
	if s.fs.Len() != 0 {
		t.Error("failed embeddings stored feedback")
	}
}
