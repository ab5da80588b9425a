package modelserver

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStartupDelayHoldsPing(t *testing.T) {
	ts := start(t, map[string]string{EnvStartupDelay: "300ms"})
	began := time.Now()
	if got := pingStatus(ts.url); got != http.StatusServiceUnavailable {
		t.Fatalf("ping during the startup delay: %d, want 503", got)
	}
	if r := invoke(t, ts, `{"inputs": "hello"}`); r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "/ping") {
		t.Fatalf("invocation before ready: %d %q", r.status, r.body)
	}
	waitFor(t, 5*time.Second, "ping 200", func() bool { return pingStatus(ts.url) == http.StatusOK })
	if waited := time.Since(began); waited < 250*time.Millisecond {
		t.Fatalf("ready after %v, before the 300ms delay", waited)
	}
}

func TestEnvDelayAddsLatency(t *testing.T) {
	ts := start(t, map[string]string{EnvDelay: "150ms"})
	began := time.Now()
	if r := invoke(t, ts, `{"inputs": "hello"}`); r.status != http.StatusOK {
		t.Fatalf("%d %q", r.status, r.body)
	}
	if took := time.Since(began); took < 150*time.Millisecond {
		t.Fatalf("answered in %v despite a 150ms delay", took)
	}
	if r := do(t, "GET", ts.url+"/ping", ""); r.status != http.StatusOK {
		t.Fatal("the delay must not apply to /ping")
	}
}

func TestFailRate(t *testing.T) {
	all := start(t, map[string]string{EnvFailRate: "1"})
	for range 5 {
		if r := invoke(t, all, `{"inputs": "hello"}`); r.status != http.StatusInternalServerError || !strings.Contains(r.body, "fail_rate") {
			t.Fatalf("fail rate 1: %d %q", r.status, r.body)
		}
	}
	half := start(t, map[string]string{EnvFailRate: "0.5"})
	failed := 0
	for range 200 {
		if invoke(t, half, `{"inputs": "hello"}`).status == http.StatusInternalServerError {
			failed++
		}
	}
	// Binomial(200, 0.5): 60..140 holds with overwhelming probability.
	if failed < 60 || failed > 140 {
		t.Fatalf("fail rate 0.5 failed %d of 200", failed)
	}
}

func TestCrashAfterN(t *testing.T) {
	ts := start(t, map[string]string{EnvCrashAfter: "3"})
	for i := 1; i <= 2; i++ {
		if r := invoke(t, ts, `{"inputs": "hello"}`); r.status != http.StatusOK {
			t.Fatalf("invocation %d: %d", i, r.status)
		}
	}
	if _, err := send(context.Background(), "POST", ts.url+"/invocations", `{"inputs": "hello"}`, "Content-Type: application/json"); err == nil {
		t.Fatal("the third invocation was answered; want the connection dropped")
	}
	if code := <-ts.crashes; code != CrashExitCode {
		t.Fatalf("exit code %d, want %d", code, CrashExitCode)
	}
}

// faultsOn is the environment that turns on the request knobs.
var faultsOn = map[string]string{EnvFaults: "1"}

func TestRequestFaults(t *testing.T) {
	ts := start(t, faultsOn)
	t.Run("error", func(t *testing.T) {
		r := invoke(t, ts, `{"inputs": "hello"}`, customAttributes+": fault=error")
		if r.status != 500 || !strings.Contains(r.body, "fault=error") || r.header.Get(customAttributes) != "fault=error" {
			t.Fatalf("%d %q %v", r.status, r.body, r.header)
		}
	})
	t.Run("status", func(t *testing.T) {
		for _, status := range []int{429, 503, 424, 200} {
			r := invoke(t, ts, `{"inputs": "hello"}`, customAttributes+": tenant=a; status="+strconv.Itoa(status))
			if r.status != status || !strings.Contains(r.body, "injected status "+strconv.Itoa(status)) {
				t.Fatalf("status=%d: %d %q", status, r.status, r.body)
			}
		}
	})
	t.Run("delay", func(t *testing.T) {
		began := time.Now()
		r := invoke(t, ts, `{"inputs": "hello"}`, customAttributes+": delay_ms=120, trace=x")
		if r.status != 200 || time.Since(began) < 120*time.Millisecond {
			t.Fatalf("%d after %v", r.status, time.Since(began))
		}
	})
	t.Run("hang", func(t *testing.T) {
		began := time.Now() // before the deadline is set, so that it is measured from no later than it starts
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := send(ctx, "POST", ts.url+"/invocations", `{"inputs": "hello"}`, "Content-Type: application/json", customAttributes+": fault=hang")
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(began) < 200*time.Millisecond {
			t.Fatalf("hang ended with %v after %v; want the client to give up", err, time.Since(began))
		}
		waitFor(t, 2*time.Second, "the hung handler to return", func() bool { return serverStats(t, ts.url).InFlight == 0 })
	})
	t.Run("crash", func(t *testing.T) {
		_, err := send(context.Background(), "POST", ts.url+"/invocations", `{"inputs": "hello"}`, "Content-Type: application/json", customAttributes+": fault=crash")
		if err == nil {
			t.Fatal("answered; want the connection dropped")
		}
		if code := <-ts.crashes; code != CrashExitCode {
			t.Fatalf("exit code %d", code)
		}
	})
	t.Run("bad values", func(t *testing.T) {
		for _, attr := range []string{"fault=explode", "delay_ms=soon", "delay_ms=-1", "status=99", "status=abc"} {
			r := invoke(t, ts, `{"inputs": "hello"}`, customAttributes+": "+attr)
			key, _, _ := strings.Cut(attr, "=")
			if r.status != 400 || !strings.Contains(r.body, key+"=") {
				t.Errorf("%s: %d %q", attr, r.status, r.body)
			}
		}
	})
}

// TestRequestFaultsNeedTheSwitch: without --faults or
// JUNCTION_MODEL_SERVER_FAULTS, a caller's custom attributes are only
// echoed (fault=crash does not end the process) and /faults is not there.
func TestRequestFaultsNeedTheSwitch(t *testing.T) {
	for _, env := range []map[string]string{nil, {EnvFaults: "0"}} {
		ts := start(t, env)
		for _, attr := range []string{"fault=crash", "fault=error", "status=503", "fault=explode"} {
			r := invoke(t, ts, `{"inputs": "hello"}`, customAttributes+": "+attr)
			if r.status != http.StatusOK || r.header.Get(customAttributes) != attr {
				t.Fatalf("%v %s: %d %q", env, attr, r.status, r.body)
			}
		}
		select {
		case code := <-ts.crashes:
			t.Fatalf("%v: fault=crash exited with %d", env, code)
		default:
		}
		for _, method := range []string{"GET", "POST"} {
			if r := do(t, method, ts.url+"/faults", `{"ping_fail": true}`); r.status != http.StatusNotFound || !strings.Contains(r.body, EnvFaults) {
				t.Fatalf("%v %s /faults: %d %q", env, method, r.status, r.body)
			}
		}
		if got := pingStatus(ts.url); got != http.StatusOK {
			t.Fatalf("%v: ping %d after POST /faults", env, got)
		}
	}
}

func TestLiveFaults(t *testing.T) {
	ts := start(t, faultsOn)
	r := do(t, "POST", ts.url+"/faults", `{"ping_fail": true, "delay_ms": 80}`)
	if r.status != 200 || !strings.Contains(r.body, `"ping_fail":true`) || !strings.Contains(r.body, `"delay_ms":80`) {
		t.Fatalf("%d %q", r.status, r.body)
	}
	if got := pingStatus(ts.url); got != http.StatusInternalServerError {
		t.Fatalf("ping with ping_fail: %d", got)
	}
	began := time.Now()
	if r := invoke(t, ts, `{"inputs": "hi"}`); r.status != 200 || time.Since(began) < 80*time.Millisecond {
		t.Fatalf("live delay: %d after %v", r.status, time.Since(began))
	}
	do(t, "POST", ts.url+"/faults", `{"fail_rate": 1}`)
	if r := invoke(t, ts, `{"inputs": "hi"}`); r.status != 500 {
		t.Fatalf("live fail rate: %d", r.status)
	}
	r = do(t, "POST", ts.url+"/faults", `{"ping_fail": false, "delay_ms": 0, "fail_rate": 0}`)
	if r.body != `{"ping_fail":false,"delay_ms":0,"fail_rate":0}`+"\n" {
		t.Fatalf("reset: %q", r.body)
	}
	if pingStatus(ts.url) != 200 || invoke(t, ts, `{"inputs": "hi"}`).status != 200 {
		t.Fatal("knobs did not reset")
	}
	if r := do(t, "GET", ts.url+"/faults", ""); r.body != `{"ping_fail":false,"delay_ms":0,"fail_rate":0}`+"\n" {
		t.Fatalf("GET /faults %q", r.body)
	}
	for body, mention := range map[string]string{
		`{"fail_rate": 2}`:   "fail_rate",
		`{"delay_ms": -5}`:   "delay_ms",
		`{"pingfail": true}`: "unknown field",
		`not json`:           "ping_fail",
	} {
		if r := do(t, "POST", ts.url+"/faults", body); r.status != 400 || !strings.Contains(r.body, mention) {
			t.Errorf("%s: %d %q", body, r.status, r.body)
		}
	}
}

func TestStatsCountInvocations(t *testing.T) {
	ts := start(t, nil)
	for range 3 {
		invoke(t, ts, `{"inputs": "hi"}`)
	}
	if s := serverStats(t, ts.url); !s.Ready || s.Invocations != 3 || s.InFlight != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestParseAttributes(t *testing.T) {
	a, err := parseAttributes(" Fault = hang ; delay_ms=5,status=503;junk;x=y")
	if err != nil || a.fault != faultHang || a.delay != 5*time.Millisecond || a.status != 503 {
		t.Fatalf("%+v %v", a, err)
	}
	if a, err := parseAttributes(""); err != nil || a != (attributes{}) {
		t.Fatalf("%+v %v", a, err)
	}
}

// TestExecutionParameters: GET /execution-parameters answers the JSON the
// environment gives, and is not served without it.
func TestExecutionParameters(t *testing.T) {
	ts := start(t, map[string]string{EnvExecutionParameters: `{"MaxConcurrentTransforms": 4, "BatchStrategy": "MultiRecord"}`})
	if r := do(t, "GET", ts.url+"/execution-parameters", ""); r.status != http.StatusOK || r.body != `{"MaxConcurrentTransforms": 4, "BatchStrategy": "MultiRecord"}` {
		t.Fatalf("execution parameters: %d %q", r.status, r.body)
	}
	if r := do(t, "GET", start(t, nil).url+"/execution-parameters", ""); r.status != http.StatusNotFound {
		t.Fatalf("without them: %d %q", r.status, r.body)
	}
}
