package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// invocationJob polls GET /api/v1/model-invocation-jobs/{arn} until the
// job ends.
func (j *junction) invocationJob(arn string, within time.Duration) map[string]any {
	j.t.Helper()
	deadline := time.Now().Add(within)
	for {
		status, _, b := j.do("GET", "/api/v1/model-invocation-jobs/"+arn, adminKey, "")
		var v map[string]any
		if status != 200 || json.Unmarshal(b, &v) != nil {
			j.t.Fatalf("get job: %d %s", status, b)
		}
		switch v["status"] {
		case "Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired":
			return v
		}
		if time.Now().After(deadline) {
			j.t.Fatalf("job still %v after %s", v["status"], within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func createInvocationJob(t *testing.T, j *junction, name, model, in, out, typ string) string {
	t.Helper()
	body := fmt.Sprintf(`{"jobName":%q,"roleArn":"arn:aws:iam::123456789012:role/batch","modelId":%q,
		"inputDataConfig":{"s3InputDataConfig":{"s3Uri":"file://%s"}},"outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"file://%s/"}},
		"modelInvocationType":%q}`, name, model, in, out, typ)
	status, _, b := j.do("POST", "/api/v1/model-invocation-jobs", adminKey, body)
	var v struct{ JobArn string }
	if status != 200 || json.Unmarshal(b, &v) != nil || !strings.Contains(v.JobArn, ":model-invocation-job/") {
		t.Fatalf("create: %d %s", status, b)
	}
	return v.JobArn
}

func readJSONL(t *testing.T, path string) []map[string]json.RawMessage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]json.RawMessage
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// TestBedrockBatchOf2000UnderRateLimitAndFaults runs a 2,000-record model
// invocation job (Anthropic and OpenAI-style native bodies) against a
// provider that rate-limits and fails: every record is in the output once,
// in input order, with modelOutput or error, and the manifest counts them.
func TestBedrockBatchOf2000UnderRateLimitAndFaults(t *testing.T) {
	up := &limitedUpstream{fake: &fakeopenai.Server{PromptTokens: 7, CompletionTokens: 3, Fault: func(*fakeopenai.Request) fakeopenai.Fault {
		return fakeopenai.Fault{Delay: time.Millisecond}
	}}, limit: 6}
	srv := httptest.NewServer(up)
	defer srv.Close()
	dir := t.TempDir()
	j := runYAML(t, fmt.Sprintf(`
server: {addr: "127.0.0.1:0", data_dir: %q, upstream_timeout: 5s, shutdown_timeout: 5s}
auth: {admin_key: %q}
log: {level: warn}
hosting: {disabled: true}
providers:
  - {name: limited, type: openai, base_url: "%s/v1", api_key: sk-up}
models:
  - {name: claude-batch, provider: limited, upstream_model: m1}
batch: {retry_backoff: 1ms, poll_interval: 20ms, max_attempts: 20}
`, dir, adminKey, srv.URL), dir)
	const n = 2000
	var in strings.Builder
	for i := range n {
		if i%2 == 0 {
			fmt.Fprintf(&in, `{"recordId":"REC%08d","modelInput":{"anthropic_version":"bedrock-2023-05-31","max_tokens":50,"messages":[{"role":"user","content":"record %d"}]}}`+"\n", i, i)
		} else {
			fmt.Fprintf(&in, `{"recordId":"REC%08d","modelInput":{"messages":[{"role":"user","content":"record %d"}],"max_tokens":50}}`+"\n", i, i)
		}
	}
	data := t.TempDir()
	input := filepath.Join(data, "in", "records.jsonl")
	os.MkdirAll(filepath.Dir(input), 0o755)
	if err := os.WriteFile(input, []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	arn := createInvocationJob(t, j, "nightly-1", "claude-batch", input, filepath.Join(data, "out"), "InvokeModel")
	v := j.invocationJob(arn, 3*time.Minute)
	if v["status"] != "Completed" && v["status"] != "PartiallyCompleted" || v["totalRecordCount"] != float64(n) || v["processedRecordCount"] != float64(n) {
		t.Fatalf("job %v", v)
	}
	id := arn[strings.LastIndex(arn, "/")+1:]
	lines := readJSONL(t, filepath.Join(data, "out", id, "records.jsonl.out"))
	if len(lines) != n {
		t.Fatalf("%d output lines, want %d", len(lines), n)
	}
	var ok, failed int
	for i, l := range lines {
		var rid string
		json.Unmarshal(l["recordId"], &rid)
		if rid != fmt.Sprintf("REC%08d", i) || l["modelInput"] == nil {
			t.Fatalf("line %d: %s %s (out of order or without its input)", i, l["recordId"], l["modelInput"])
		}
		switch {
		case l["modelOutput"] != nil && l["error"] == nil:
			ok++
			var out map[string]any
			json.Unmarshal(l["modelOutput"], &out)
			if i%2 == 0 && (out["type"] != "message" || out["role"] != "assistant") {
				t.Fatalf("line %d: an Anthropic input answered %s", i, l["modelOutput"])
			}
			if i%2 == 1 && out["object"] != "chat.completion" {
				t.Fatalf("line %d: an OpenAI-style input answered %s", i, l["modelOutput"])
			}
		case l["error"] != nil && l["modelOutput"] == nil:
			failed++
		default:
			t.Fatalf("line %d has neither or both of modelOutput and error: %v", i, l)
		}
	}
	var m map[string]int
	b, err := os.ReadFile(filepath.Join(data, "out", id, "manifest.json.out"))
	if err != nil || json.Unmarshal(b, &m) != nil {
		t.Fatalf("manifest: %v %s", err, b)
	}
	if m["totalRecordCount"] != n || m["processedRecordCount"] != n || m["successRecordCount"] != ok || m["errorRecordCount"] != failed ||
		m["inputTokenCount"] != 7*ok || m["outputTokenCount"] != 3*ok {
		t.Fatalf("manifest %v for %d ok, %d failed", m, ok, failed)
	}
	if up.got429.Load() == 0 || up.got500.Load() == 0 {
		t.Fatalf("the fake injected %d 429s and %d 500s; the test needs both", up.got429.Load(), up.got500.Load())
	}
	if jv := j.job(id); up.calls.Load()-jv.Retries != n {
		t.Fatalf("%d calls, %d retries: want %d records called once each", up.calls.Load(), jv.Retries, n)
	}
}

// TestBedrockBatchConverseAndValidation runs a Converse-type job and shows
// that a bad record fails the job naming its line.
func TestBedrockBatchConverseAndValidation(t *testing.T) {
	j := start(t, &fakeopenai.Server{}, batchConfig)
	data := t.TempDir()
	good := filepath.Join(data, "converse.jsonl")
	os.WriteFile(good, []byte(`{"recordId":"a1","modelInput":{"messages":[{"role":"user","content":[{"text":"hi"}]}],"inferenceConfig":{"maxTokens":20}}}`+"\n"+
		`{"modelInput":{"messages":[{"role":"user","content":[{"text":"there"}]}]}}`+"\n"), 0o644)
	arn := createInvocationJob(t, j, "conv", "gpt-4o-mini", good, filepath.Join(data, "out"), "Converse")
	if v := j.invocationJob(arn, 30*time.Second); v["status"] != "Completed" || v["successRecordCount"] != float64(2) {
		t.Fatalf("job %v", v)
	}
	lines := readJSONL(t, filepath.Join(data, "out", arn[strings.LastIndex(arn, "/")+1:], "converse.jsonl.out"))
	var out struct {
		Output     struct{ Message struct{ Role string } }
		StopReason string
	}
	if len(lines) != 2 || string(lines[0]["recordId"]) != `"a1"` || string(lines[1]["recordId"]) != `"2"` ||
		json.Unmarshal(lines[0]["modelOutput"], &out) != nil || out.Output.Message.Role != "assistant" || out.StopReason != "end_turn" {
		t.Fatalf("converse output %v / %+v", lines, out)
	}

	bad := filepath.Join(data, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"recordId":"a1","modelInput":{"messages":[{"role":"user","content":[{"text":"hi"}]}]}}`+"\n"+`{"recordId":"a2"}`+"\n"), 0o644)
	arn = createInvocationJob(t, j, "bad", "gpt-4o-mini", bad, filepath.Join(data, "out"), "Converse")
	if v := j.invocationJob(arn, 30*time.Second); v["status"] != "Failed" || !strings.Contains(v["message"].(string), "line 2: modelInput is required") {
		t.Fatalf("job %v", v)
	}
	for _, c := range []struct{ body, param string }{
		{`{"jobName":"x","modelId":"m","inputDataConfig":{"s3InputDataConfig":{"s3Uri":"s3://b/in.jsonl"}},"outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"file:///tmp/o/"}}}`, "inputDataConfig.s3InputDataConfig.s3Uri"},
		{`{"jobName":"-x","modelId":"m"}`, "jobName"},
		{`{"jobName":"x","modelId":"m","inputDataConfig":{"s3InputDataConfig":{"s3Uri":"file:///i"}},"outputDataConfig":{"s3OutputDataConfig":{"s3Uri":"file:///o"}},"timeoutDurationInHours":2}`, "timeoutDurationInHours"},
	} {
		status, _, b := j.do("POST", "/api/v1/model-invocation-jobs", adminKey, c.body)
		if !strings.Contains(string(b), `"param": "`+c.param+`"`) || status != 400 {
			t.Errorf("%s: %d %s", c.body, status, b)
		}
	}
}
