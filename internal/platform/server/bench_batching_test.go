package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
)

// BenchmarkBatching measures invocations per second through Junction
// against one reference-server instance whose calls cost 2 ms plus 0.1 ms
// per item, spent one call at a time (as a GPU runs one batch at a time),
// with and without Junction's batching, 64 callers at once, in one run:
//
//	go test -run '^$' -bench BenchmarkBatching -benchtime 3s ./internal/platform/server
func BenchmarkBatching(b *testing.B) {
	j := startHosted(b, b.TempDir(), "", "")
	art := demoArtifact(b)
	cost := map[string]string{modelserver.EnvCallCost: "2ms", modelserver.EnvItemCost: "100us"}
	j.model("unbatched", art, "byoc", cost)
	j.batchingModel("batched", art, hosting.Batching{MaxBatchSize: 64, MaxQueueDelay: "2ms"}, cost)
	for _, name := range []string{"unbatched", "batched"} {
		j.endpointConfig(name+"-c", hosting.Variant{Name: "primary", Model: name, InstanceType: "ml.g6.xlarge"})
		j.admin("POST", "/api/v1/endpoints", map[string]string{"name": name, "config": name + "-c"}, http.StatusCreated, nil)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	var n atomic.Int64
	for _, name := range []string{"unbatched", "batched"} {
		j.waitEndpoint(name, 30*time.Second, inService)
		url := j.url + "/endpoints/" + name + "/invocations"
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					body := fmt.Sprintf(`{"inputs":"ticket %d: I was charged twice for my subscription"}`, n.Add(1))
					req, _ := http.NewRequest("POST", url, bytes.NewReader([]byte(body)))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", "Bearer "+adminKey)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("%s: %d", name, resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}
