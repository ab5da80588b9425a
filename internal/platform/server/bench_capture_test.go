package server_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
)

// captureRound rotates the order of BenchmarkCaptureOverhead's cases.
var captureRound int

// BenchmarkCaptureOverhead measures what data capture costs an
// invocation, in one run: the same reference model behind an endpoint
// without data_capture (off, the baseline) and behind endpoints capturing
// input and output of 10% and of 100% of their invocations to files.
// Run it with -count 3 or more and compare the means. Each reports throughput from 4×GOMAXPROCS clients (ns/op) and the
// serial p50 and p99. The capture writer shares the machine's cores with
// Junction and the model server, so the 100% case includes encoding and
// writing every record.
//
//	go test ./internal/platform/server -run '^$' -bench CaptureOverhead -benchtime 5000x -count 6
func BenchmarkCaptureOverhead(b *testing.B) {
	dir := b.TempDir()
	j := startHosted(b, dir, "", "capture: {window: 1s}\n")
	j.model("m", demoArtifact(b), "byoc", nil)
	cases := []struct {
		name    string
		percent int
	}{{"off", -1}, {"sampled-10", 10}, {"sampled-100", 100}}
	for _, c := range cases {
		cfg := hosting.EndpointConfig{Name: c.name, Variants: []hosting.Variant{{Name: "a", Model: "m", InstanceType: "ml.g6.xlarge"}}}
		if c.percent >= 0 {
			cfg.DataCapture = &hosting.DataCapture{InitialSamplingPercentage: &c.percent, DestinationS3URI: "file://" + dir + "/capture",
				CaptureOptions:           []hosting.CaptureOption{{CaptureMode: hosting.CaptureInputAndOutput}},
				CaptureContentTypeHeader: &hosting.CaptureContentTypeHeader{JsonContentTypes: []string{"application/json"}}}
		}
		j.admin("POST", "/api/v1/endpoint-configs", cfg, http.StatusCreated, nil)
		j.admin("POST", "/api/v1/endpoints", map[string]string{"name": c.name, "config": c.name}, http.StatusCreated, nil)
	}
	body := []byte(`{"inputs":"I was charged twice for my subscription"}`)
	// Later cases run on a fuller ledger and a warmer machine: each run
	// (-count) starts at the next case, so that no case is always first.
	captureRound++
	for i := range cases {
		c := cases[(i+captureRound)%len(cases)]
		j.waitEndpoint(c.name, 60*time.Second, inService)
		call := func() error {
			_, err := postInvocation(b, fmt.Sprintf("%s/endpoints/%s/invocations", j.url, c.name), true, body, http.StatusOK)
			return err
		}
		b.Run(c.name+"/throughput", func(b *testing.B) { parallelCalls(b, call) })
		b.Run(c.name+"/latency", func(b *testing.B) { serialLatency(b, call) })
	}
}
