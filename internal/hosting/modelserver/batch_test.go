package modelserver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// The batch contract: every item's prediction is the body it would get
// alone, a bad item fails alone, in both formats.
func TestABatchAnswersEachItemAsItsOwnInvocation(t *testing.T) {
	ts := start(t, nil)
	items := []string{
		`{"inputs": "I was charged twice for my subscription"}`,
		`{"inputs": "the API returns 503 since this morning"}`,
		`{"inputs": ""}`,
		`{"inputs": "tell me about the keeper", "task": "generate", "parameters": {"seed": 7, "max_new_tokens": 5}}`,
	}
	alone := make([]string, len(items))
	for i, it := range items {
		r := invoke(t, ts, it)
		alone[i] = strings.TrimSpace(r.body)
		if i == 2 && r.status != http.StatusBadRequest {
			t.Fatalf("the empty item alone: %d %s", r.status, r.body)
		}
	}

	r := invoke(t, ts, `{"instances": [`+strings.Join(items, ",")+`]}`)
	var doc struct {
		Predictions []json.RawMessage `json:"predictions"`
		Errors      []*itemError      `json:"errors"`
	}
	if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &doc) != nil || len(doc.Predictions) != 4 || len(doc.Errors) != 4 {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	for i := range items {
		if i == 2 {
			if doc.Errors[i] == nil || doc.Errors[i].Status != 400 || !strings.Contains(alone[i], doc.Errors[i].Message) || string(doc.Predictions[i]) != "null" {
				t.Fatalf("the empty item in the batch: %+v %s; alone: %s", doc.Errors[i], doc.Predictions[i], alone[i])
			}
			continue
		}
		if doc.Errors[i] != nil || string(doc.Predictions[i]) != alone[i] {
			t.Fatalf("item %d: %s (error %+v), alone %s", i, doc.Predictions[i], doc.Errors[i], alone[i])
		}
	}

	r = do(t, "POST", ts.url+"/invocations", strings.Join(items, "\n")+"\n", "Content-Type: application/jsonlines")
	lines := strings.Split(strings.TrimSpace(r.body), "\n")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != typeJSONLines || len(lines) != 4 {
		t.Fatalf("jsonlines batch: %d %s", r.status, r.body)
	}
	for i, line := range lines {
		var l struct {
			Prediction json.RawMessage `json:"prediction"`
			Error      *itemError      `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if (i == 2) != (l.Error != nil) || (i != 2 && string(l.Prediction) != alone[i]) {
			t.Fatalf("line %d: %s, alone %s", i, line, alone[i])
		}
	}

	var st struct {
		BatchSizes []int `json:"batch_sizes"`
	}
	json.Unmarshal([]byte(do(t, "GET", ts.url+"/stats", "").body), &st)
	if len(st.BatchSizes) != 2 || st.BatchSizes[0] != 4 || st.BatchSizes[1] != 4 {
		t.Fatalf("stats batch sizes %v, want [4 4]", st.BatchSizes)
	}
	if r := invoke(t, ts, `{"instances": []}`); r.status != http.StatusBadRequest || !strings.Contains(r.body, "no items") {
		t.Fatalf("empty batch: %d %s", r.status, r.body)
	}
}
