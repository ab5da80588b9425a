package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/testkit/s3test"
)

// BenchmarkTransformJob runs batch transform jobs of n records (one S3
// object of ~300-byte JSON lines) on one instance of the reference model
// with no added latency, SingleRecord and MultiRecord (1 MB requests),
// four invocations in flight, and reports records/s (from CreateTransformJob
// to Completed: the transient instance's start included) beside
// direct-records/s: the same records sent as single invocations of an
// endpoint of the same model through the SageMaker runtime surface by four
// workers, in the same run. The peak heap is sampled while a job runs.
//
//	go test -run XXX -bench TransformJob -benchtime 1x ./internal/platform/server
func BenchmarkTransformJob(b *testing.B) {
	const n = 20_000
	bucket := s3test.Bucket(b)
	var data bytes.Buffer
	var bodies [][]byte
	for i := range n {
		text := fmt.Sprintf("ticket %d: the site is down again and nobody answers the phone", i)
		text += strings.Repeat(" please", (300-len(text))/7)
		line, _ := json.Marshal(map[string]string{"inputs": text})
		data.Write(line)
		data.WriteByte('\n')
		bodies = append(bodies, line)
	}
	s3test.Put(b, bucket, "bench/records.jsonl", data.Bytes())
	j := startHosted(b, b.TempDir(), "", s3YAML(b)+"batch: {poll_interval: 20ms}\n")
	j.model("intent", demoArtifact(b), "byoc", nil)
	j.endpointConfig("intent-c", hosting.Variant{Name: "a", Model: "intent", InstanceType: "ml.g6.xlarge"})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "intent", "config": "intent-c"}, http.StatusCreated, nil)
	j.waitEndpoint("intent", 60*time.Second, inService)
	direct := directInvocations(b, j, bodies, 4)
	jobs := 0
	for _, strategy := range []string{"SingleRecord", "MultiRecord"} {
		b.Run(strategy, func(b *testing.B) {
			for range b.N {
				jobs++
				rate, peak := runBenchTransform(b, j, bucket, fmt.Sprintf("bench-%d", jobs), strategy, n)
				b.ReportMetric(rate, "records/s")
				b.ReportMetric(direct, "direct-records/s")
				b.ReportMetric(rate/direct, "ratio")
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			}
		})
	}
}

// directInvocations sends each body as one invocation of the endpoint
// intent from workers goroutines and returns invocations per second.
func directInvocations(b *testing.B, j *junction, bodies [][]byte, workers int) float64 {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(bodies)); i = next.Add(1) - 1 {
				req, _ := http.NewRequest("POST", j.url+"/endpoints/intent/invocations", bytes.NewReader(bodies[i]))
				req.Header.Set("Authorization", "Bearer "+adminKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("direct invocation: %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(len(bodies)) / time.Since(start).Seconds()
}

// runBenchTransform runs one job over the bench object and returns
// records/s from its creation to its end, and the peak heap meanwhile.
func runBenchTransform(b *testing.B, j *junction, bucket, name, strategy string, n int) (float64, uint64) {
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	job := fmt.Sprintf(`{"TransformJobName": %q, "ModelName": "intent", "BatchStrategy": %q, "MaxPayloadInMB": 1, "MaxConcurrentTransforms": 4,
		"TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://%s/bench/"}},
			"ContentType": "application/jsonlines", "SplitType": "Line"},
		"TransformOutput": {"S3OutputPath": "s3://%s/out/%s/", "AssembleWith": "Line"},
		"TransformResources": {"InstanceType": "ml.g6.xlarge", "InstanceCount": 1}}`, name, strategy, bucket, bucket, name)
	if strategy == "SingleRecord" {
		job = strings.Replace(job, "application/jsonlines", "application/json", 1)
	}
	j.admin("POST", "/api/v1/transform-jobs", json.RawMessage(job), http.StatusOK, nil)
	var v transformView
	for {
		j.admin("GET", "/api/v1/transform-jobs/"+name, nil, http.StatusOK, &v)
		if v.TransformJobStatus != "InProgress" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	if v.TransformJobStatus != "Completed" {
		b.Fatalf("%s ended %s: %s", name, v.TransformJobStatus, v.FailureReason)
	}
	b.Logf("%s: %d requests, %s", strategy, v.Progress.Requests, elapsed.Round(time.Millisecond))
	return float64(n) / elapsed.Seconds(), peak.Load()
}
