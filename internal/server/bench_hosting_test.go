package server_test

import (
	"bytes"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
)

// BenchmarkInvocation compares an invocation through Junction
// (/endpoints/NAME/invocations, bearer key, ledger record) with the same
// call sent straight to the model server, in one run. Each reports
// throughput with RunParallel (ns/op) and the serial p50 as p50-µs.
//
//	go test ./internal/server -run '^$' -bench Invocation -benchtime 3s
func BenchmarkInvocation(b *testing.B) {
	j := startHosted(b, b.TempDir(), "", "")
	j.model("m", demoArtifact(b), "byoc", nil)
	j.endpointConfig("c", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge"})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c"}, http.StatusCreated, nil)
	ep := j.waitEndpoint("ep", 30*time.Second, inService)
	direct := "http://" + ep.Variants[0].Instances[0].Addr + "/invocations"
	via := j.url + "/endpoints/ep/invocations"
	body := []byte(`{"inputs":"I was charged twice for my subscription"}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	call := func(url string, auth bool) error {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth {
			req.Header.Set("Authorization", "Bearer "+adminKey)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %d", url, resp.StatusCode)
		}
		return nil
	}
	for _, c := range []struct {
		name string
		url  string
		auth bool
	}{{"direct", direct, false}, {"junction", via, true}} {
		b.Run(c.name+"/throughput", func(b *testing.B) {
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := call(c.url, c.auth); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(c.name+"/latency", func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for range b.N {
				start := time.Now()
				if err := call(c.url, c.auth); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			sort.Slice(lat, func(i, k int) bool { return lat[i] < lat[k] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
