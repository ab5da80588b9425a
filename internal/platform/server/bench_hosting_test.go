package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
)

// BenchmarkInvocation compares an invocation through Junction
// (/endpoints/NAME/invocations, bearer key, ledger record) with the same
// call sent straight to the model server and through a bare reverse
// proxy, in one run. Each reports
// throughput with RunParallel (ns/op) and the serial p50 as p50-µs.
//
//	go test ./internal/platform/server -run '^$' -bench Invocation -benchtime 3s
func BenchmarkInvocation(b *testing.B) {
	j := startHosted(b, b.TempDir(), "", "")
	art := demoArtifact(b)
	// "instant" answers in microseconds, so the comparison measures HTTP
	// overhead alone; "model-2ms" spends 2 ms per invocation, as even a
	// small real model does.
	for _, m := range []struct {
		name  string
		delay string
	}{{"instant", ""}, {"model-2ms", "2ms"}} {
		env := map[string]string{}
		if m.delay != "" {
			env["JUNCTION_MODEL_SERVER_DELAY"] = m.delay
		}
		j.model(m.name, art, "byoc", env)
		j.endpointConfig(m.name+"-c", hosting.Variant{Name: "primary", Model: m.name, InstanceType: "ml.g6.xlarge"})
		j.admin("POST", "/api/v1/endpoints", map[string]string{"name": m.name, "config": m.name + "-c"}, http.StatusCreated, nil)
	}
	body := []byte(`{"inputs":"I was charged twice for my subscription"}`)
	call := func(url string, auth bool) error {
		_, err := postInvocation(b, url, auth, body, http.StatusOK)
		return err
	}
	for _, m := range []string{"instant", "model-2ms"} {
		ep := j.waitEndpoint(m, 30*time.Second, inService)
		// A bare reverse proxy to the same instance: what any separate
		// HTTP hop costs on this machine, the floor for Junction's.
		target, _ := url.Parse("http://" + ep.Variants[0].Instances[0].Addr)
		rp := httputil.NewSingleHostReverseProxy(target)
		rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
		proxy := httptest.NewServer(rp)
		defer proxy.Close()
		for _, c := range []struct {
			name string
			url  string
			auth bool
		}{{"direct", "http://" + ep.Variants[0].Instances[0].Addr + "/invocations", false},
			{"proxy", proxy.URL + "/invocations", false},
			{"junction", j.url + "/endpoints/" + m + "/invocations", true}} {
			b.Run(m+"/"+c.name+"/throughput", func(b *testing.B) {
				parallelCalls(b, func() error { return call(c.url, c.auth) })
			})
			b.Run(m+"/"+c.name+"/latency", func(b *testing.B) {
				serialLatency(b, func() error { return call(c.url, c.auth) })
			})
		}
	}
}

// benchClient calls Junction and model servers in benchmarks.
var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

// postInvocation posts a JSON body to url, with the admin key when auth and
// the header pairs in hdr, and returns the answer's headers; an answer
// other than want fails b.
func postInvocation(b *testing.B, url string, auth bool, body []byte, want int, hdr ...string) (http.Header, error) {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth {
		req.Header.Set("Authorization", "Bearer "+adminKey)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := benchClient.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		b.Errorf("%s: %d, want %d", url, resp.StatusCode, want)
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.Header, nil
}

// parallelCalls runs call b.N times from 4×GOMAXPROCS goroutines: ns/op
// is the inverse of throughput.
func parallelCalls(b *testing.B, call func() error) {
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// serialLatency runs call b.N times one after another and reports the
// 50th and 99th percentile latencies.
func serialLatency(b *testing.B, call func() error) {
	lat := make([]time.Duration, 0, b.N)
	for range b.N {
		start := time.Now()
		if err := call(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, k int) bool { return lat[i] < lat[k] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkEndpointLifecycle times, with the reference server, an
// endpoint's creation to InService (create-ms) and the replacement of a
// killed instance until it is ready again (replace-ms; the first restart
// waits the runtime's first backoff, 250 ms).
//
//	go test ./internal/platform/server -run '^$' -bench EndpointLifecycle -benchtime 10x
func BenchmarkEndpointLifecycle(b *testing.B) {
	j := startHosted(b, b.TempDir(), "", "")
	j.model("m", demoArtifact(b), "byoc", nil)
	j.endpointConfig("c", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge"})
	var create, replace time.Duration
	for i := range b.N {
		name := fmt.Sprintf("ep%d", i)
		start := time.Now()
		j.admin("POST", "/api/v1/endpoints", map[string]string{"name": name, "config": "c"}, http.StatusCreated, nil)
		ep := j.waitEndpoint(name, 30*time.Second, inService)
		create += time.Since(start)

		in := ep.Variants[0].Instances[0]
		start = time.Now()
		if err := syscall.Kill(in.PID, syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		j.waitEndpoint(name, 30*time.Second, func(e *hosting.Endpoint) bool {
			got := e.Variants[0].Instances[0]
			return got.Restarts == 1 && got.State == "Ready"
		})
		replace += time.Since(start)
		j.admin("DELETE", "/api/v1/endpoints/"+name, nil, http.StatusAccepted, nil)
	}
	b.ReportMetric(float64(create.Milliseconds())/float64(b.N), "create-ms")
	b.ReportMetric(float64(replace.Milliseconds())/float64(b.N), "replace-ms")
}
