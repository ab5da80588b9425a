package server_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
	"github.com/junctionhq/junction/internal/hosting/refmodel"
)

// modelPrefix writes n reference models, m00.tar.gz to m{n-1}.tar.gz,
// each answering with labels prefixed by its own name, and returns the
// directory and the size of one unpacked model.
func modelPrefix(t testing.TB, n int) (string, int64) {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		if err := refmodel.WriteNamedTarGz(filepath.Join(dir, fmt.Sprintf("m%02d.tar.gz", i)), fmt.Sprintf("m%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(filepath.Join(dir, "m00.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := tar.NewReader(zr).Next()
	if err != nil {
		t.Fatal(err)
	}
	return dir, hdr.Size
}

// multiModelServer creates the reference server in multi-model mode.
func (j *junction) multiModelServer(name, prefix string, env map[string]string) {
	j.t.Helper()
	all := map[string]string{modelserver.EnvMode: modelserver.ModeMultiModel}
	for k, v := range env {
		all[k] = v
	}
	j.admin("POST", "/api/v1/models", hosting.Model{Name: name, Artifact: "file://" + prefix,
		Server: hosting.Server{Type: "byoc", Command: "junction", Args: []string{"model-server"}, Env: all, StartupTimeoutSeconds: 30}},
		http.StatusCreated, nil)
}

// loadedModels lists the targets an instance's server holds, from its
// GET /models (model names are the target, "-", a hash).
func loadedModels(t *testing.T, addr string) []string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Models []struct {
			ModelName string `json:"modelName"`
		} `json:"models"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	var names []string
	for _, m := range out.Models {
		names = append(names, m.ModelName[:strings.LastIndexByte(m.ModelName, '-')])
	}
	slices.Sort(names)
	return names
}

// serverLoads sums the model loads the instances' servers report.
func serverLoads(t *testing.T, ep *hosting.Endpoint) int64 {
	t.Helper()
	var n int64
	for _, in := range ep.Variants[0].Instances {
		resp, err := http.Get("http://" + in.Addr + "/stats")
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			ModelLoads int64 `json:"model_loads"`
		}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		n += st.ModelLoads
	}
	return n
}

var loadEvent = regexp.MustCompile(`^model (\S+) loaded on instance (\S+) in `)

func TestMultiModelEndpointLoadsOnDemandAndEvictsLeastRecentlyUsed(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	prefix, size := modelPrefix(t, 20)
	demo, err := refmodel.Demo()
	if err != nil {
		t.Fatal(err)
	}
	j.multiModelServer("mms", prefix, nil)
	// Room for five models on each of two instances; m00 is pinned.
	j.endpointConfig("mme-v1", hosting.Variant{Name: "primary", Model: "mms", InstanceType: "ml.g6.xlarge", InstanceCount: 2,
		Mode: hosting.ModeMultiModel, ModelDataPrefix: "file://" + prefix,
		ModelCache: &hosting.ModelCache{MemoryBudgetBytes: 5*size + size/2, Pinned: []string{"m00.tar.gz"}}})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "mme", "config": "mme-v1"}, http.StatusCreated, nil)
	ep := j.waitEndpoint("mme", 30*time.Second, inService)
	sm := j.sagemakerClient()
	invoke := func(target, text string) (*sagemakerruntime.InvokeEndpointOutput, error) {
		return sm.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
			EndpointName: aws.String("mme"), TargetModel: aws.String(target), ContentType: aws.String("application/json"),
			Body: []byte(fmt.Sprintf(`{"inputs": %q}`, text))})
	}
	// check invokes a model and checks that the answer is that model's.
	check := func(i int) {
		t.Helper()
		text := fmt.Sprintf("ticket %d: I was charged twice for my subscription", i)
		out, err := invoke(fmt.Sprintf("m%02d.tar.gz", i), text)
		if err != nil {
			t.Fatalf("m%02d: %v", i, err)
		}
		var p predictions
		json.Unmarshal(out.Body, &p)
		if want := fmt.Sprintf("m%02d:%s", i, demo.Classify(text).Label); len(p.Predictions) != 1 || p.Predictions[0].Label != want {
			t.Fatalf("m%02d answered %s, want label %s", i, out.Body, want)
		}
	}
	for i := range 20 {
		check(i)
	}

	// Each instance holds what LRU leaves: the pinned model where it was
	// loaded, and the most recently used of those loaded there after it.
	var events struct{ Events []hosting.Event }
	j.admin("GET", "/api/v1/endpoints/mme/events?limit=1000", nil, http.StatusOK, &events)
	order := map[string][]string{} // instance -> targets in load order
	for _, e := range events.Events {
		if m := loadEvent.FindStringSubmatch(e.Message); m != nil {
			order[m[2]] = append(order[m[2]], m[1])
		}
	}
	loads := 0
	for _, in := range ep.Variants[0].Instances {
		loaded := order[in.ID]
		loads += len(loaded)
		want := []string{}
		room := 5
		if slices.Contains(loaded, "m00.tar.gz") {
			want, room = append(want, "m00.tar.gz"), 4
		}
		var rest []string
		for _, m := range loaded {
			if m != "m00.tar.gz" {
				rest = append(rest, m)
			}
		}
		want = append(want, rest[max(0, len(rest)-room):]...)
		slices.Sort(want)
		if got := loadedModels(t, in.Addr); !slices.Equal(got, want) {
			t.Fatalf("instance %s holds %v; loaded in order %v, LRU with m00 pinned leaves %v", in.ID, got, loaded, want)
		}
	}
	if loads != 20 || len(order) != 2 {
		t.Fatalf("%d loads over %d instances, want 20 over 2: %v", loads, len(order), order)
	}

	// A loaded model is a cache hit: no load.
	before := serverLoads(t, ep)
	check(19)
	check(0)
	if n := serverLoads(t, ep); n != before {
		t.Fatalf("invoking loaded models loaded %d", n-before)
	}

	// A burst of first requests for an evicted model loads it once.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for k := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := invoke("m03.tar.gz", fmt.Sprintf("burst %d: the API returns 503", k))
			if err == nil && !strings.Contains(string(out.Body), `"m03:`) {
				err = fmt.Errorf("m03 answered %s", out.Body)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := serverLoads(t, ep); n != before+1 {
		t.Fatalf("16 concurrent first requests made %d loads, want 1", n-before)
	}

	// An unknown model and a missing TargetModel are SageMaker's 400s.
	_, err = invoke("nope.tar.gz", "hello")
	var ve *smtypes.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(ve.ErrorMessage(), "nope.tar.gz") {
		t.Fatalf("unknown model: %v", err)
	}
	_, err = sm.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("mme"),
		ContentType: aws.String("application/json"), Body: []byte(`{"inputs": "hi"}`)})
	if !errors.As(err, &ve) || !strings.Contains(ve.ErrorMessage(), "X-Amzn-SageMaker-Target-Model") {
		t.Fatalf("no target model: %v", err)
	}

	// Metrics, and the ledger names each invocation's model.
	_, _, metrics := j.do("GET", "/metrics", "", "")
	for _, m := range []string{`junction_sagemaker_model_loads_total{endpoint="mme",variant="primary"} 21`,
		`junction_sagemaker_model_unloads_total{endpoint="mme",variant="primary"}`,
		`junction_sagemaker_model_cache_hits_total{endpoint="mme",variant="primary"}`,
		`junction_sagemaker_model_loading_wait_seconds_count{endpoint="mme",variant="primary"}`} {
		if !strings.Contains(string(metrics), m) {
			t.Fatalf("/metrics has no %s", m)
		}
	}
	byModel := map[string]int{}
	for _, r := range j.records(20 + 2 + 16 + 2) {
		byModel[r.UpstreamModel]++
	}
	if byModel["m03.tar.gz"] != 17 || byModel["m19.tar.gz"] != 2 || byModel["m07.tar.gz"] != 1 {
		t.Fatalf("ledger records by model: %v", byModel)
	}
}

func TestMultiModelServerOutOfMemoryEvicts(t *testing.T) {
	j := startHosted(t, t.TempDir(), "", "")
	prefix, size := modelPrefix(t, 6)
	// Junction sets no budget; the server has memory for three models and
	// answers 507 to a fourth.
	j.multiModelServer("mms", prefix, map[string]string{modelserver.EnvMemory: fmt.Sprint(3*size + size/2)})
	j.endpointConfig("mme-v1", hosting.Variant{Name: "primary", Model: "mms", InstanceType: "ml.g6.xlarge",
		Mode: hosting.ModeMultiModel, ModelDataPrefix: prefix})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "mme", "config": "mme-v1"}, http.StatusCreated, nil)
	ep := j.waitEndpoint("mme", 30*time.Second, inService)
	for i := range 6 {
		target := fmt.Sprintf("m%02d.tar.gz", i)
		st, _, b := j.invoke("mme", `{"inputs": "where is my invoice"}`, "X-Amzn-SageMaker-Target-Model", target)
		if st != http.StatusOK || !strings.Contains(string(b), fmt.Sprintf(`"m%02d:`, i)) {
			t.Fatalf("%s: %d %s", target, st, b)
		}
	}
	if got, want := loadedModels(t, ep.Variants[0].Instances[0].Addr), []string{"m03.tar.gz", "m04.tar.gz", "m05.tar.gz"}; !slices.Equal(got, want) {
		t.Fatalf("the server holds %v after 507s, want the three most recent %v", got, want)
	}
}
