package server_test

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
)

// BenchmarkAsync compares async invocations (InvokeEndpointAsync with an
// inline body, the answer written to a file) with real-time ones
// (InvokeEndpoint) of the same reference model server, in one run, on the
// default SQLite store. Both are allowed the same concurrency at the
// model: 4×GOMAXPROCS clients for real-time calls,
// max_concurrent_invocations_per_instance of the same number for the
// queue.
//
//   - MODEL/realtime/throughput and MODEL/async/throughput: ns/op from
//     4×GOMAXPROCS clients; an async op ends when its output is written,
//     so this is sustained throughput, not the rate of 202s.
//   - MODEL/realtime/latency and MODEL/async/latency: one request at a
//     time, until the answer (real-time) or until the output object is
//     there (async), as p50-µs and p99-µs; async/latency also reports
//     queue-wait-µs, the mean time from enqueue to dispatch
//     (junction_async_queue_wait_seconds; enqueue times are stored to the
//     millisecond, so it reads up to 1 ms high).
//
// MODEL is "instant" (the server answers in microseconds: the numbers are
// Junction's overhead alone) and "model-10ms".
//
//	go test ./internal/platform/server -run '^$' -bench 'Async$' -benchtime 2000x
func BenchmarkAsync(b *testing.B) {
	dir := b.TempDir()
	j := startHosted(b, dir, "", "async: {lease_ttl: 5s}\n")
	conc := 4 * runtime.GOMAXPROCS(0)
	models := []struct{ name, delay string }{{"instant", ""}, {"model-10ms", "10ms"}}
	for _, m := range models {
		env := map[string]string{}
		if m.delay != "" {
			env[modelserver.EnvDelay] = m.delay
		}
		j.model(m.name, demoArtifact(b), "byoc", env)
		variants := []hosting.Variant{{Name: "a", Model: m.name, InstanceType: "ml.g6.xlarge"}}
		j.admin("POST", "/api/v1/endpoint-configs", hosting.EndpointConfig{Name: m.name + "-rt", Variants: variants}, http.StatusCreated, nil)
		j.admin("POST", "/api/v1/endpoint-configs", hosting.EndpointConfig{Name: m.name + "-aq", Variants: variants,
			AsyncInference: &hosting.AsyncInference{OutputPath: "file://" + dir + "/out/" + m.name, MaxConcurrentInvocationsPerInstance: conc}},
			http.StatusCreated, nil)
		for _, kind := range []string{"-rt", "-aq"} {
			j.admin("POST", "/api/v1/endpoints", map[string]string{"name": m.name + kind, "config": m.name + kind}, http.StatusCreated, nil)
		}
	}
	body := []byte(`{"inputs":"I was charged twice for my subscription"}`)
	for _, m := range models {
		j.waitEndpoint(m.name+"-rt", 60*time.Second, inService)
		j.waitEndpoint(m.name+"-aq", 60*time.Second, inService)
		rt := j.url + "/endpoints/" + m.name + "-rt/invocations"
		aq := j.url + "/endpoints/" + m.name + "-aq/async-invocations"
		realtime := func() error {
			_, err := postInvocation(b, rt, true, body, http.StatusOK)
			return err
		}
		enqueue := func() (string, error) {
			h, err := postInvocation(b, aq, true, body, http.StatusAccepted, "X-Amzn-SageMaker-Content-Type", "application/json")
			if err != nil {
				return "", err
			}
			u, err := url.Parse(h.Get("X-Amzn-SageMaker-OutputLocation"))
			if err != nil {
				return "", err
			}
			return u.Path, nil
		}

		b.Run(m.name+"/realtime/throughput", func(b *testing.B) { parallelCalls(b, realtime) })
		b.Run(m.name+"/async/throughput", func(b *testing.B) {
			before := j.asyncSucceeded(m.name + "-aq")
			parallelCalls(b, func() error { _, err := enqueue(); return err })
			deadline := time.Now().Add(5 * time.Minute)
			for j.asyncSucceeded(m.name+"-aq") < before+b.N {
				if time.Now().After(deadline) {
					b.Fatalf("%d requests queued, %d done after 5 minutes", b.N, j.asyncSucceeded(m.name+"-aq")-before)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
		b.Run(m.name+"/realtime/latency", func(b *testing.B) { serialLatency(b, realtime) })
		b.Run(m.name+"/async/latency", func(b *testing.B) {
			sum0, n0 := j.queueWait()
			serialLatency(b, func() error {
				out, err := enqueue()
				if err != nil {
					return err
				}
				for {
					if _, err := os.Stat(out); err == nil {
						return nil
					}
					time.Sleep(100 * time.Microsecond)
				}
			})
			b.StopTimer()
			// The histogram is observed before the output is written, so
			// it holds every request by now.
			sum1, n1 := j.queueWait()
			if n1 > n0 {
				b.ReportMetric((sum1-sum0)/(n1-n0)*1e6, "queue-wait-µs")
			}
		})
	}
}

// asyncSucceeded is the number of an endpoint's async requests that
// succeeded.
func (j *junction) asyncSucceeded(endpoint string) int {
	var s struct{ Succeeded int }
	j.admin("GET", "/api/v1/endpoints/"+endpoint+"/async", nil, http.StatusOK, &s)
	return s.Succeeded
}

// queueWait reads junction_async_queue_wait_seconds's sum and count from
// /metrics.
func (j *junction) queueWait() (sum, count float64) {
	_, _, m := j.do("GET", "/metrics", "", "")
	sc := bufio.NewScanner(bytes.NewReader(m))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(value, 64)
		switch name {
		case "junction_async_queue_wait_seconds_sum":
			sum = v
		case "junction_async_queue_wait_seconds_count":
			count = v
		}
	}
	return sum, count
}
