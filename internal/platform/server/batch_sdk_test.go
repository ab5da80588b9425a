package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// batchConfig makes retries and polling quick in tests.
const batchConfig = "batch: {retry_backoff: 1ms, poll_interval: 20ms}"

// chatLines returns n batch input lines calling model, custom ids
// req-0 … req-(n-1).
func chatLines(n int, model string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":%q,"messages":[{"role":"user","content":"record %d"}]}}`+"\n", i, model, i)
	}
	return b.String()
}

// outputLine is a line of an output or error file.
type outputLine struct {
	ID       string `json:"id"`
	CustomID string `json:"custom_id"`
	Response *struct {
		StatusCode int             `json:"status_code"`
		RequestID  string          `json:"request_id"`
		Body       json.RawMessage `json:"body"`
	} `json:"response"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// waitBatch polls a batch through the SDK until it reaches a final status.
func waitBatch(t *testing.T, client openai.Client, id string, within time.Duration) *openai.Batch {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		b, err := client.Batches.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		switch b.Status {
		case openai.BatchStatusCompleted, openai.BatchStatusFailed, openai.BatchStatusExpired, openai.BatchStatusCancelled:
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch %s still %s after %s: %+v", id, b.Status, within, b.RequestCounts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fileLines downloads a file through the SDK and decodes its lines.
func fileLines(t *testing.T, client openai.Client, id string) []outputLine {
	t.Helper()
	if id == "" {
		return nil
	}
	resp, err := client.Files.Content(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []outputLine
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l outputLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func uploadBatch(t *testing.T, client openai.Client, content string) *openai.FileObject {
	t.Helper()
	f, err := client.Files.New(context.Background(), openai.FileNewParams{
		File: openai.File(strings.NewReader(content), "requests.jsonl", "application/jsonl"), Purpose: openai.FilePurposeBatch})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSDKDrivesFilesAndBatchesEndToEnd(t *testing.T) {
	fake := &fakeopenai.Server{PromptTokens: 100, CompletionTokens: 50}
	j := start(t, fake, batchConfig)
	_, secret := j.createKey("batcher", map[string]string{"team": "research"})
	client := j.sdk(secret)
	ctx := context.Background()

	input := chatLines(5, "priced")
	f := uploadBatch(t, client, input)
	if f.Purpose != "batch" || f.Bytes != int64(len(input)) || f.Filename != "requests.jsonl" || f.Status != "processed" {
		t.Fatalf("file %+v", f)
	}
	got, err := client.Files.Get(ctx, f.ID)
	if err != nil || got.ID != f.ID || got.Bytes != f.Bytes {
		t.Fatalf("get file: %+v %v", got, err)
	}
	b, err := client.Batches.New(ctx, openai.BatchNewParams{InputFileID: f.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
		CompletionWindow: openai.BatchNewParamsCompletionWindow24h, Metadata: map[string]string{"purpose": "nightly eval"}})
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != openai.BatchStatusValidating || b.InputFileID != f.ID || b.Metadata["purpose"] != "nightly eval" || b.ExpiresAt-b.CreatedAt != 86400 {
		t.Fatalf("new batch %+v", b)
	}
	done := waitBatch(t, client, b.ID, 30*time.Second)
	if done.Status != openai.BatchStatusCompleted || done.RequestCounts.Total != 5 || done.RequestCounts.Completed != 5 || done.RequestCounts.Failed != 0 {
		t.Fatalf("finished batch %+v", done)
	}
	if done.InProgressAt == 0 || done.FinalizingAt == 0 || done.CompletedAt == 0 || done.ErrorFileID != "" || done.OutputFileID == "" {
		t.Fatalf("timestamps or files: %+v", done)
	}
	if done.Usage.InputTokens != 500 || done.Usage.OutputTokens != 250 {
		t.Fatalf("usage %+v", done.Usage)
	}
	lines := fileLines(t, client, done.OutputFileID)
	if len(lines) != 5 {
		t.Fatalf("%d output lines, want 5", len(lines))
	}
	for i, l := range lines {
		if l.CustomID != fmt.Sprintf("req-%d", i) || l.Response == nil || l.Response.StatusCode != 200 || l.Error != nil || !strings.HasPrefix(l.ID, "batch_req_") {
			t.Fatalf("line %d: %+v", i, l)
		}
		var cc openai.ChatCompletion
		if err := json.Unmarshal(l.Response.Body, &cc); err != nil || cc.Choices[0].Message.Content == "" || cc.Usage.PromptTokens != 100 {
			t.Fatalf("line %d body %s: %v", i, l.Response.Body, err)
		}
	}

	// Each record is in the ledger on surface batch, at half the
	// on-demand price (priced: $1 in, $2 out per 1K).
	recs := j.records(5)
	for _, r := range recs {
		want := wantCost(100, 0, 50, 1, 2) * 0.5
		if r.Surface != "batch" || r.KeyName != "batcher" || r.Tags["team"] != "research" || r.CostUSD == nil || math.Abs(*r.CostUSD-want) > 1e-12 {
			t.Fatalf("ledger record %+v (cost %v, want %v)", r, r.CostUSD, want)
		}
	}

	// Another key sees neither the batch nor its files.
	_, other := j.createKey("other", nil)
	oc := j.sdk(other)
	if _, err := oc.Batches.Get(ctx, b.ID); !isStatus(err, 404) {
		t.Fatalf("another key's batch: %v", err)
	}
	if _, err := oc.Files.Content(ctx, done.OutputFileID); !isStatus(err, 404) {
		t.Fatalf("another key's file: %v", err)
	}
	if _, err := oc.Batches.New(ctx, openai.BatchNewParams{InputFileID: f.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
		CompletionWindow: openai.BatchNewParamsCompletionWindow24h}); !isStatus(err, 400) {
		t.Fatalf("a batch over another key's file: %v", err)
	}
	page, err := oc.Batches.List(ctx, openai.BatchListParams{})
	if err != nil || len(page.Data) != 0 {
		t.Fatalf("another key lists %d batches: %v", len(page.Data), err)
	}

	// Cursor pagination: three more batches, listed one per page.
	for range 3 {
		if _, err := client.Batches.New(ctx, openai.BatchNewParams{InputFileID: f.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions,
			CompletionWindow: openai.BatchNewParamsCompletionWindow24h}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	iter := client.Batches.ListAutoPaging(ctx, openai.BatchListParams{Limit: openai.Int(1)})
	for iter.Next() {
		ids = append(ids, iter.Current().ID)
	}
	if err := iter.Err(); err != nil || len(ids) != 4 || ids[3] != b.ID {
		t.Fatalf("paged list %v: %v", ids, err)
	}

	// Deleting a file removes it for good.
	if del, err := client.Files.Delete(ctx, done.OutputFileID); err != nil || !del.Deleted {
		t.Fatalf("delete: %+v %v", del, err)
	}
	if _, err := client.Files.Get(ctx, done.OutputFileID); !isStatus(err, 404) {
		t.Fatalf("deleted file: %v", err)
	}
}

func TestBatchValidationNamesTheBadLine(t *testing.T) {
	j := start(t, &fakeopenai.Server{}, batchConfig)
	client := j.sdk(adminKey)
	cases := []struct {
		name, input, param, want string
		line                     int64
	}{
		{"not JSON", chatLines(2, "priced") + "{oops\n", "", "not a JSON object", 3},
		{"duplicate id", chatLines(2, "priced") + strings.Replace(chatLines(1, "priced"), "req-0", "req-1", 1), "custom_id", `"req-1" is used by an earlier line`, 3},
		{"wrong url", strings.Replace(chatLines(2, "priced"), `"url":"/v1/chat/completions"`, `"url":"/v1/embeddings"`, 1), "url", "not the batch's endpoint", 1},
		{"two models", chatLines(1, "priced") + "\n" + strings.Replace(chatLines(1, "gpt-4o-mini"), "req-0", "req-9", 1), "body.model", "a batch calls one model", 3},
		{"bad body", chatLines(1, "priced") + `{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{"model":"priced"}}` + "\n", "body", "messages", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := uploadBatch(t, client, c.input)
			b, err := client.Batches.New(context.Background(), openai.BatchNewParams{InputFileID: f.ID,
				Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
			if err != nil {
				t.Fatal(err)
			}
			done := waitBatch(t, client, b.ID, 20*time.Second)
			if done.Status != openai.BatchStatusFailed || len(done.Errors.Data) != 1 || done.FailedAt == 0 {
				t.Fatalf("batch %+v", done)
			}
			e := done.Errors.Data[0]
			if e.Line != c.line || e.Param != c.param || !strings.Contains(e.Message, c.want) || !strings.Contains(e.Message, fmt.Sprintf("line %d", c.line)) {
				t.Fatalf("error %+v, want line %d param %q containing %q", e, c.line, c.param, c.want)
			}
		})
	}
}

func TestBatchCreateRejectsBadRequests(t *testing.T) {
	j := start(t, &fakeopenai.Server{}, batchConfig)
	client := j.sdk(adminKey)
	f := uploadBatch(t, client, chatLines(1, "priced"))
	for _, c := range []struct{ body, param string }{
		{`{"endpoint":"/v1/chat/completions","completion_window":"24h"}`, "input_file_id"},
		{`{"input_file_id":"` + f.ID + `","endpoint":"/v1/responses","completion_window":"24h"}`, "endpoint"},
		{`{"input_file_id":"` + f.ID + `","endpoint":"/v1/chat/completions","completion_window":"1h"}`, "completion_window"},
		{`{"input_file_id":"file-nope","endpoint":"/v1/chat/completions","completion_window":"24h"}`, "input_file_id"},
	} {
		status, _, b := j.do("POST", "/v1/batches", adminKey, c.body)
		if e := decodeError(t, b); status != 400 || e.Error.Param == nil || *e.Error.Param != c.param {
			t.Errorf("%s: %d %s", c.body, status, b)
		}
	}
	// A purpose other than batch is refused, naming the field.
	_, err := client.Files.New(context.Background(), openai.FileNewParams{File: openai.File(bytes.NewReader([]byte("x")), "a.txt", "text/plain"),
		Purpose: openai.FilePurposeFineTune})
	if e, ok := err.(*openai.Error); !ok || e.StatusCode != 400 || e.Param != "purpose" {
		t.Fatalf("fine-tune upload: %v", err)
	}
}
