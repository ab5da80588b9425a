package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
	"github.com/junctionhq/junction/internal/hosting/refmodel"
)

// batchingModel creates a reference-server model whose invocations
// Junction batches; env sets the server's knobs.
func (j *junction) batchingModel(name, artifact string, b hosting.Batching, env map[string]string) {
	j.t.Helper()
	j.admin("POST", "/api/v1/models", hosting.Model{Name: name, Artifact: "file://" + artifact,
		Server: hosting.Server{Type: "byoc", Command: "junction", Args: []string{"model-server"}, Env: env,
			StartupTimeoutSeconds: 30, Batching: &b}},
		http.StatusCreated, nil)
}

// instanceBatches reads the batch sizes each instance of an endpoint's
// first variant has served, from the reference server's GET /stats.
func instanceBatches(t *testing.T, ep *hosting.Endpoint) [][]int {
	t.Helper()
	var out [][]int
	for _, in := range ep.Variants[0].Instances {
		resp, err := http.Get("http://" + in.Addr + "/stats")
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			BatchSizes []int `json:"batch_sizes"`
		}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		out = append(out, st.BatchSizes)
	}
	return out
}

func TestBatchingGivesEveryCallerItsOwnAnswer(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	art := demoArtifact(t)
	model, err := refmodel.Load(art)
	if err != nil {
		t.Fatal(err)
	}
	j.batchingModel("batched", art, hosting.Batching{MaxBatchSize: 8, MaxQueueDelay: "20ms"},
		map[string]string{modelserver.EnvCallCost: "2ms", modelserver.EnvItemCost: "100us"})
	j.endpointConfig("batched-v1", hosting.Variant{Name: "primary", Model: "batched", InstanceType: "ml.g6.xlarge", InstanceCount: 2})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "batched", "config": "batched-v1"}, http.StatusCreated, nil)
	ep := j.waitEndpoint("batched", 30*time.Second, inService)

	// 64 callers at once, each with its own text; one sends an item the
	// model refuses.
	const callers, poisoned = 64, 13
	texts := make([]string, callers)
	for i := range texts {
		texts[i] = fmt.Sprintf("ticket %d: I was charged twice and the API returns 503 on page %d", i, i*7)
	}
	type answer struct {
		status int
		body   string
	}
	answers := make([]answer, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"inputs": %q}`, texts[i])
			if i == poisoned {
				body = `{"inputs": ""}`
			}
			req, _ := http.NewRequest("POST", j.url+"/endpoints/batched/invocations", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+adminKey)
			req.Header.Set("Content-Type", "application/json")
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answers[i] = answer{0, err.Error()}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers[i] = answer{resp.StatusCode, string(b)}
		}()
	}
	close(start)
	wg.Wait()
	for i, a := range answers {
		if i == poisoned {
			if a.status != http.StatusFailedDependency || !strings.Contains(a.body, "inputs is empty") {
				t.Fatalf("the poisoned caller got %d %s, want 424 with the model's own message", a.status, a.body)
			}
			continue
		}
		var p struct {
			Predictions []struct {
				Label string  `json:"label"`
				Score float64 `json:"score"`
			} `json:"predictions"`
		}
		if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &p) != nil || len(p.Predictions) != 1 {
			t.Fatalf("caller %d got %d %s", i, a.status, a.body)
		}
		want := model.Classify(texts[i])
		if p.Predictions[0].Label != want.Label || fmt.Sprintf("%.5f", p.Predictions[0].Score) != fmt.Sprintf("%.5f", want.Score) {
			t.Fatalf("caller %d got %+v, its own text gives %s %.5f", i, p.Predictions[0], want.Label, want.Score)
		}
	}

	// The instances saw batches of at most 8 holding the 64 items, and
	// least-outstanding spread them over both.
	total, largest := 0, 0
	for k, sizes := range instanceBatches(t, ep) {
		if len(sizes) == 0 {
			t.Fatalf("instance %d served no batch", k)
		}
		for _, n := range sizes {
			if n < 1 || n > 8 {
				t.Fatalf("a batch of %d: %v", n, sizes)
			}
			total += n
			largest = max(largest, n)
		}
	}
	if total != callers {
		t.Fatalf("the instances' batches hold %d items, want %d", total, callers)
	}
	if largest < 2 {
		t.Fatalf("64 concurrent callers were never batched together")
	}

	// A lone caller is not held for a full batch: the delay sends it
	// alone.
	before := instanceBatches(t, ep)
	if st, _, b := j.invoke("batched", `{"inputs": "where is my invoice"}`); st != http.StatusOK {
		t.Fatalf("a lone call: %d %s", st, b)
	}
	after := instanceBatches(t, ep)
	grew := 0
	for k := range after {
		for _, n := range after[k][len(before[k]):] {
			if n != 1 {
				t.Fatalf("the lone call went in a batch of %d", n)
			}
			grew++
		}
	}
	if grew != 1 {
		t.Fatalf("the lone call made %d batches", grew)
	}

	_, _, metrics := j.do("GET", "/metrics", "", "")
	for _, m := range []string{`junction_sagemaker_batch_size_count{endpoint="batched",variant="primary"}`,
		`junction_sagemaker_batch_queue_delay_seconds_count{endpoint="batched",variant="primary"}`} {
		if !strings.Contains(string(metrics), m) {
			t.Fatalf("/metrics has no %s", m)
		}
	}
}
