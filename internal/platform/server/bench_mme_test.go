package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
)

// BenchmarkMultiModel compares, in one run and serially, an invocation
// of a single-model endpoint with a warm one of a multi-model endpoint
// (the target already loaded: what routing by target adds) and a cold
// one (each call loads its target into the instance and evicts the one
// before: SageMaker's ModelLoadingWaitTime plus the call). Each reports
// p50-µs and p99-µs.
//
//	go test ./internal/platform/server -run '^$' -bench MultiModel -benchtime 200x
func BenchmarkMultiModel(b *testing.B) {
	j := startHosted(b, b.TempDir(), "", "")
	j.model("single", demoArtifact(b), "byoc", nil)
	j.endpointConfig("single-c", hosting.Variant{Name: "primary", Model: "single", InstanceType: "ml.g6.xlarge"})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "single", "config": "single-c"}, http.StatusCreated, nil)
	prefix, size := modelPrefix(b, 3)
	j.multiModelServer("mms", prefix, nil)
	// warm has room for every model; cold for one, so alternating two
	// targets loads one on every call.
	for name, budget := range map[string]int64{"warm": 4 * size, "cold": size + size/2} {
		j.endpointConfig(name+"-c", hosting.Variant{Name: "primary", Model: "mms", InstanceType: "ml.g6.xlarge",
			Mode: hosting.ModeMultiModel, ModelDataPrefix: "file://" + prefix, ModelCache: &hosting.ModelCache{MemoryBudgetBytes: budget}})
		j.admin("POST", "/api/v1/endpoints", map[string]string{"name": name, "config": name + "-c"}, http.StatusCreated, nil)
	}
	for _, name := range []string{"single", "warm", "cold"} {
		j.waitEndpoint(name, 30*time.Second, inService)
	}
	body := []byte(`{"inputs":"I was charged twice for my subscription"}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	call := func(endpoint, target string) {
		req, _ := http.NewRequest("POST", j.url+"/endpoints/"+endpoint+"/invocations", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+adminKey)
		if target != "" {
			req.Header.Set("X-Amzn-SageMaker-Target-Model", target)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s %s: %d", endpoint, target, resp.StatusCode)
		}
	}
	call("warm", "m00.tar.gz") // loaded before the measurement
	for _, c := range []struct {
		name, endpoint string
		target         func(i int) string
	}{
		{"single-model", "single", func(int) string { return "" }},
		{"multi-model-warm", "warm", func(int) string { return "m00.tar.gz" }},
		{"multi-model-cold", "cold", func(i int) string { return fmt.Sprintf("m%02d.tar.gz", 1+i%2) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for i := range b.N {
				start := time.Now()
				call(c.endpoint, c.target(i))
				lat = append(lat, time.Since(start))
			}
			if c.endpoint == "cold" {
				// Every call must have loaded its target, or the
				// figure is not a cold one.
				var events struct{ Events []hosting.Event }
				j.admin("GET", "/api/v1/endpoints/cold/events?limit=10000", nil, http.StatusOK, &events)
				loads := 0
				for _, e := range events.Events {
					if loadEvent.MatchString(e.Message) {
						loads++
					}
				}
				if loads < b.N {
					b.Fatalf("%d loads for %d cold calls", loads, b.N)
				}
			}
			sort.Slice(lat, func(i, k int) bool { return lat[i] < lat[k] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
