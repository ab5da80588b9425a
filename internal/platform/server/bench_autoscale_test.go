package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/autoscale"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// BenchmarkColdStartFirstAnswer times the first answer of an endpoint
// scaled to zero (the reference server in OpenAI mode, its real start: a
// process, the model load, /ping), held (held-ms) and spilled to a
// managed model by a route (spilled-ms), against two baselines from the
// same run: the warm endpoint's answer (warm-ms) and the managed model
// called directly (managed-ms). spilled/managed near 1 means a spilled
// first answer costs the managed model's latency, not the start. The
// managed model is a fake that answers at once, or after 50 ms as a real
// one would at the least.
//
//	go test ./internal/platform/server -run '^$' -bench ColdStartFirstAnswer -benchtime 5x
func BenchmarkColdStartFirstAnswer(b *testing.B) {
	for _, delay := range []time.Duration{0, 50 * time.Millisecond} {
		b.Run("managed="+delay.String(), func(b *testing.B) { benchColdStart(b, delay) })
	}
}

func benchColdStart(b *testing.B, managedDelay time.Duration) {
	fake := &fakeopenai.Server{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(managedDelay) // a managed model's own latency
		fake.ServeHTTP(w, r)
	}))
	defer up.Close()
	j := startHosted(b, b.TempDir(), up.URL, strings.Replace(scalingHosting, "serverless_idle: 1s", "serverless_idle: 10m", 1)+`
models:
  - {name: local-lm, provider: endpoint, upstream_model: lm}
  - {name: cloud-mini, provider: cloud, upstream_model: gpt-4o-mini}
routes:
  - {name: support, deployments: [{model: local-lm}], spill: cloud-mini}
`)
	j.model("lm", demoArtifact(b), "openai", nil)
	j.endpointConfig("lm-c", hosting.Variant{Name: "v", Model: "lm", InstanceType: "ml.g6.xlarge", InstanceCount: 1})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "lm", "config": "lm-c"}, http.StatusCreated, nil)
	j.waitEndpoint("lm", 30*time.Second, inService)

	ask := func(model string) time.Duration {
		start := time.Now()
		status, _, body := j.do("POST", "/v1/chat/completions", adminKey,
			`{"model":"`+model+`","messages":[{"role":"user","content":"the keeper climbs the stairs"}],"max_tokens":8,"temperature":0}`)
		if status != 200 {
			b.Fatalf("%s: %d %s", model, status, body)
		}
		return time.Since(start)
	}
	count := func(n int) {
		j.admin("PUT", "/api/v1/endpoints/lm/variants", map[string]any{"variants": []map[string]any{{"variant": "v", "instance_count": n}}}, http.StatusOK, nil)
		j.waitEndpoint("lm", 30*time.Second, func(ep *hosting.Endpoint) bool {
			return converged(ep) && len(ep.Variants[0].Instances) == n && ep.Variants[0].CurrentInstanceCount == n
		})
	}
	ask("local-lm")
	ask("cloud-mini")
	var held, spilled, warm, managed time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		count(0)
		b.StartTimer()
		spilled += ask("support") // cold: answered by cloud-mini, and starts an instance
		b.StopTimer()
		j.waitEndpoint("lm", 30*time.Second, func(ep *hosting.Endpoint) bool { return converged(ep) && ep.Variants[0].CurrentInstanceCount == 1 })
		warm += ask("local-lm")
		managed += ask("cloud-mini")
		count(0)
		b.StartTimer()
		held += ask("local-lm") // cold: held until the instance it starts is ready
		b.StopTimer()
		j.waitEndpoint("lm", 30*time.Second, func(ep *hosting.Endpoint) bool { return converged(ep) && ep.Variants[0].CurrentInstanceCount == 1 })
		b.StartTimer()
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(ms(held), "held-ms")
	b.ReportMetric(ms(spilled), "spilled-ms")
	b.ReportMetric(ms(warm), "warm-ms")
	b.ReportMetric(ms(managed), "managed-ms")
	b.ReportMetric(float64(spilled)/float64(managed), "spilled/managed")
	b.ReportMetric(float64(held)/float64(warm), "held/warm")
}

// BenchmarkScaleOutReaction times a target-tracking policy's answer to a
// step load (1 to 8 clients, 50 ms calls, target 2 in flight per
// instance, max 3): from the step to the scale-out decision (decide-ms)
// and to all three instances ready (ready-ms). The baseline in the same
// run is the same scale-out asked by hand (manual-ms: PUT instance_count
// 3 until three are ready), so ready/manual is what reacting costs over
// starting the instances.
//
//	go test ./internal/platform/server -run '^$' -bench ScaleOutReaction -benchtime 5x
func BenchmarkScaleOutReaction(b *testing.B) {
	j := startHosted(b, b.TempDir(), "", scalingHosting)
	j.model("m", demoArtifact(b), "byoc", map[string]string{modelserver.EnvDelay: "50ms"})
	j.endpointConfig("c", hosting.Variant{Name: "v", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 1})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c"}, http.StatusCreated, nil)
	j.waitEndpoint("ep", 30*time.Second, inService)
	path := "/api/v1/endpoints/ep/variants/v/scaling"
	ready := func(n int) func(*hosting.Endpoint) bool {
		return func(ep *hosting.Endpoint) bool {
			return converged(ep) && ep.Variants[0].CurrentInstanceCount == n && len(ep.Variants[0].Instances) == n
		}
	}
	count := func(n int) {
		j.admin("PUT", "/api/v1/endpoints/ep/variants", map[string]any{"variants": []map[string]any{{"variant": "v", "instance_count": n}}}, http.StatusOK, nil)
	}
	zero := 0.0
	policy := autoscale.Policy{MinCapacity: 1, MaxCapacity: 3, TargetTracking: &autoscale.TargetTracking{
		Metric: autoscale.ConcurrentRequestsPerInstance, TargetValue: 2, ScaleOutCooldown: &zero, DisableScaleIn: true}}
	var decide, react, manual time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		start := time.Now()
		count(3)
		j.waitEndpoint("ep", 30*time.Second, ready(3))
		manual += time.Since(start)
		count(1)
		j.waitEndpoint("ep", 30*time.Second, ready(1))
		// The autoscaler averages over a 1 s window: let the last
		// iteration's load leave it, or the policy acts on that at once.
		time.Sleep(1500 * time.Millisecond)
		j.admin("PUT", path, policy, http.StatusOK, nil)
		newest := func() autoscale.Activity {
			var acts struct{ Activities []autoscale.Activity }
			j.admin("GET", "/api/v1/endpoints/ep/scaling/activities?limit=1", nil, http.StatusOK, &acts)
			if len(acts.Activities) == 0 {
				return autoscale.Activity{}
			}
			return acts.Activities[0]
		}
		before := newest().ID
		b.StartTimer()
		start = time.Now()
		l := startLoad(j, "ep", 8)
		waitFor(b, 30*time.Second, "a scale-out decision", func() bool {
			a := newest()
			return a.ID != before && strings.HasSuffix(a.Cause, "scale-out")
		})
		decide += time.Since(start)
		j.waitEndpoint("ep", 30*time.Second, ready(3))
		react += time.Since(start)
		b.StopTimer()
		if ok, failed, errs := l.finish(); failed != 0 {
			b.Fatalf("%d of %d requests failed while scaling out: %v", failed, ok+failed, errs)
		}
		j.admin("DELETE", path, nil, http.StatusNoContent, nil)
		count(1)
		j.waitEndpoint("ep", 30*time.Second, ready(1))
	}
	n := float64(b.N)
	b.ReportMetric(float64(decide.Milliseconds())/n, "decide-ms")
	b.ReportMetric(float64(react.Milliseconds())/n, "ready-ms")
	b.ReportMetric(float64(manual.Milliseconds())/n, "manual-ms")
	b.ReportMetric(float64(react)/float64(manual), "ready/manual")
}
