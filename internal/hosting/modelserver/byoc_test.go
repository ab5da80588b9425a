package modelserver

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/hosting/refmodel"
	"github.com/junctionhq/junction/internal/wire/jsonenc"
)

type prediction struct {
	Label  string             `json:"label"`
	Score  float64            `json:"score"`
	Scores map[string]float64 `json:"scores"`
}

func predictions(t *testing.T, r reply) []prediction {
	t.Helper()
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d type %q body %q", r.status, r.header.Get("Content-Type"), r.body)
	}
	var out struct {
		Predictions []prediction `json:"predictions"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		t.Fatalf("%q: %v", r.body, err)
	}
	return out.Predictions
}

func TestPingIsEmpty200WhenReady(t *testing.T) {
	ts := start(t, nil)
	r := do(t, "GET", ts.url+"/ping", "")
	if r.status != http.StatusOK || r.body != "" {
		t.Fatalf("ping: %d %q, want 200 with an empty body", r.status, r.body)
	}
}

func TestClassifyAnswersFromTheModel(t *testing.T) {
	ts := start(t, nil)
	m, err := refmodel.Load(artifactDir)
	if err != nil {
		t.Fatal(err)
	}
	text := "I was charged twice for my subscription"
	want := m.Classify(text)

	got := predictions(t, invoke(t, ts, `{"inputs": "`+text+`"}`))
	if len(got) != 1 || got[0].Label != "billing" || got[0].Label != want.Label {
		t.Fatalf("predictions %+v, want billing", got)
	}
	if math.Abs(got[0].Score-want.Score) > 1e-5 || len(got[0].Scores) != 5 {
		t.Fatalf("score %v (model says %v), scores %v", got[0].Score, want.Score, got[0].Scores)
	}
	sum := 0.0
	for _, p := range got[0].Scores {
		sum += p
	}
	if math.Abs(sum-1) > 1e-4 {
		t.Fatalf("scores sum to %v", sum)
	}

	batch := predictions(t, invoke(t, ts, `{"inputs": ["the api is down with 503 errors", "please add dark mode"], "task": "classify"}`))
	if len(batch) != 2 || batch[0].Label != "outage" || batch[1].Label != "feature_request" {
		t.Fatalf("batch %+v", batch)
	}

	plain := do(t, "POST", ts.url+"/invocations", "thanks, your support team is wonderful", "Content-Type: text/plain; charset=utf-8")
	if p := predictions(t, plain); p[0].Label != "praise" {
		t.Fatalf("text/plain: %+v", p)
	}
}

func TestClassifyAsCSV(t *testing.T) {
	ts := start(t, nil)
	r := invoke(t, ts, `{"inputs": ["I forgot my password", "refund the double charge"]}`, "Accept: text/csv")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/csv" {
		t.Fatalf("%d %q %q", r.status, r.header.Get("Content-Type"), r.body)
	}
	lines := strings.Split(strings.TrimSuffix(r.body, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "account,") || !strings.HasPrefix(lines[1], "billing,") {
		t.Fatalf("csv %q", r.body)
	}
	if p, err := strconv.ParseFloat(strings.TrimPrefix(lines[0], "account,"), 64); err != nil || p <= 0.5 || p > 1 {
		t.Fatalf("score in %q", lines[0])
	}
	// Preferences are honoured: CSV is preferred here, JSON is the fallback.
	if r := invoke(t, ts, `{"inputs": "hi"}`, "Accept: application/json;q=0.5, text/csv"); r.header.Get("Content-Type") != "text/csv" {
		t.Fatalf("q-values ignored: %q", r.header.Get("Content-Type"))
	}
	if r := invoke(t, ts, `{"inputs": "hi"}`, "Accept: */*"); r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("*/* gave %q", r.header.Get("Content-Type"))
	}
}

func TestGenerate(t *testing.T) {
	ts := start(t, nil)
	m, err := refmodel.Load(artifactDir)
	if err != nil {
		t.Fatal(err)
	}
	var g generation
	r := invoke(t, ts, `{"inputs": "tell me what the keeper", "task": "generate"}`)
	if err := json.Unmarshal([]byte(r.body), &g); err != nil || r.status != http.StatusOK {
		t.Fatalf("%d %q: %v", r.status, r.body, err)
	}
	want := m.Generate("tell me what the keeper", refmodel.GenerateOptions{})
	if g.GeneratedText != want.Text || g.FinishReason != refmodel.FinishStop || g.GeneratedTokens != want.Tokens || g.PromptTokens != 5 {
		t.Fatalf("got %+v, the model says %+v", g, want)
	}

	r = invoke(t, ts, `{"inputs": "the keeper", "task": "generate", "parameters": {"max_new_tokens": 3, "temperature": 0.8, "seed": 7}}`)
	var sampled generation
	json.Unmarshal([]byte(r.body), &sampled)
	if sampled.GeneratedTokens != 3 && sampled.FinishReason != refmodel.FinishStop || sampled.GeneratedTokens > 3 {
		t.Fatalf("limited generation %+v", sampled)
	}
	again := invoke(t, ts, `{"inputs": "the keeper", "task": "generate", "parameters": {"max_new_tokens": 3, "temperature": 0.8, "seed": 7}}`)
	if again.body != r.body {
		t.Fatalf("same seed, different answers: %q vs %q", r.body, again.body)
	}

	r = invoke(t, ts, `{"inputs": ["the keeper", "the sea is"], "task": "generate"}`)
	var batch struct {
		Generations []generation `json:"generations"`
	}
	if err := json.Unmarshal([]byte(r.body), &batch); err != nil || len(batch.Generations) != 2 {
		t.Fatalf("batch %q: %v", r.body, err)
	}

	r = invoke(t, ts, `{"inputs": "the sea is", "task": "generate"}`, "Accept: text/plain")
	if r.header.Get("Content-Type") != "text/plain; charset=utf-8" || !strings.HasPrefix(r.body, "never the same") {
		t.Fatalf("text answer %q %q", r.header.Get("Content-Type"), r.body)
	}
}

func TestCustomAttributesAreEchoed(t *testing.T) {
	ts := start(t, nil)
	attrs := "trace=abc-123;tenant=blue"
	r := invoke(t, ts, `{"inputs": "hello"}`, customAttributes+": "+attrs)
	if r.status != http.StatusOK || r.header.Get(customAttributes) != attrs {
		t.Fatalf("status %d, echoed %q", r.status, r.header.Get(customAttributes))
	}
	if r := invoke(t, ts, `{"inputs": "hello"}`); r.header.Get(customAttributes) != "" {
		t.Fatalf("echoed a header that was not sent: %q", r.header.Get(customAttributes))
	}
}

func TestInvocationErrorsSayWhatToFix(t *testing.T) {
	ts := start(t, nil)
	for _, tc := range []struct {
		name, contentType, accept, body string
		status                          int
		mention                         string
	}{
		{"no content type", "", "", `{"inputs": "x"}`, 415, "Content-Type is missing"},
		{"form content type", "application/x-www-form-urlencoded", "", "a=b", 415, "application/json"},
		{"xml accept", "application/json", "application/xml", `{"inputs": "x"}`, 406, "application/json"},
		{"csv for generate", "application/json", "text/csv", `{"inputs": "x", "task": "generate"}`, 406, "task generate"},
		{"text for classify", "application/json", "text/plain", `{"inputs": "x"}`, 406, "task classify"},
		{"bad json", "application/json", "", `{"inputs": `, 400, "not a valid invocation"},
		{"unknown field", "application/json", "", `{"input": "x"}`, 400, `unknown field "input"`},
		{"no inputs", "application/json", "", `{"task": "classify"}`, 400, `"inputs" is missing`},
		{"empty text", "application/json", "", `{"inputs": "  "}`, 400, "inputs is empty"},
		{"empty array", "application/json", "", `{"inputs": []}`, 400, "empty array"},
		{"empty element", "application/json", "", `{"inputs": ["a", ""]}`, 400, "inputs[1] is empty"},
		{"number input", "application/json", "", `{"inputs": 42}`, 400, "string or an array"},
		{"unknown task", "application/json", "", `{"inputs": "x", "task": "translate"}`, 400, `task "translate"`},
		{"bad max tokens", "application/json", "", `{"inputs": "x", "task": "generate", "parameters": {"max_new_tokens": 0}}`, 400, "max_new_tokens"},
		{"bad temperature", "application/json", "", `{"inputs": "x", "task": "generate", "parameters": {"temperature": 9}}`, 400, "temperature"},
		{"unknown parameter", "application/json", "", `{"inputs": "x", "parameters": {"top_k": 3}}`, 400, `unknown field "top_k"`},
		{"two values", "application/json", "", `{"inputs": "x"} {"inputs": "y"}`, 400, "more than one"},
		{"empty text/plain", "text/plain", "", "   ", 400, "body is empty"},
	} {
		headers := []string{"Accept: " + tc.accept}
		if tc.contentType != "" {
			headers = append(headers, "Content-Type: "+tc.contentType)
		}
		r := do(t, "POST", ts.url+"/invocations", tc.body, headers...)
		if r.status != tc.status || !strings.Contains(r.body, tc.mention) {
			t.Errorf("%s: %d %q, want %d mentioning %q", tc.name, r.status, r.body, tc.status, tc.mention)
		}
	}
	big := `{"inputs": "` + strings.Repeat("a", maxBody) + `"}`
	if r := invoke(t, ts, big); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d %q", r.status, r.body)
	}
	if r := do(t, "GET", ts.url+"/invocations", ""); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /invocations: %d", r.status)
	}
	if r := do(t, "POST", ts.url+"/v1/chat/completions", "{}"); r.status != http.StatusNotFound {
		t.Errorf("openai route in byoc mode: %d", r.status)
	}
}

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct{ accept, want string }{
		{"", typeJSON},
		{"*/*", typeJSON},
		{"text/*", typeCSV},
		{"TEXT/CSV; charset=utf-8", typeCSV},
		{"text/csv;q=0.2, application/json;q=0.9", typeJSON},
		{"application/json;q=0, */*", typeCSV},
		{"image/png", ""},
		{"text/csv;q=0", ""},
	} {
		if got := negotiate(tc.accept, typeJSON, typeCSV); got != tc.want {
			t.Errorf("Accept %q → %q, want %q", tc.accept, got, tc.want)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"plain", `q"uote\back`, "tab\tnew\nline\x01", "café ✓", "bad \xff utf8"} {
		got := jsonenc.AppendString(nil, s)
		want, _ := json.Marshal(s)
		var back, wantBack string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q → invalid JSON %s", s, got)
		}
		json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q → %s, decodes to %q, want %q", s, got, back, wantBack)
		}
	}
}
