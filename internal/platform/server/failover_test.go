package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
	"github.com/junctionhq/junction/internal/testkit/fakeupstream"
)

// Failover and streams, end to end: each test names a misbehaving model
// of internal/testkit/fakeupstream (the model name is the fault) behind a route,
// and talks to Junction with the official SDK.

// startFaulty starts Junction with provider "faulty" (OpenAI wire) and
// "faultyclaude" (Anthropic wire), both served by fake, plus the given
// models (YAML list items) and the rest of the config after them.
func startFaulty(t *testing.T, fake *fakeupstream.Server, models, rest string) *junction {
	t.Helper()
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	return startWith(t, &fakeopenai.Server{},
		fmt.Sprintf(`  - {name: faulty, type: openai, base_url: "%s/v1"}
  - {name: faultyclaude, type: anthropic, base_url: "%s", api_key: "sk-ant"}`, up.URL, up.URL),
		models+"\n"+rest)
}

// streamText reads a whole stream with the SDK: its text, the model its
// chunks named, and the stream's error.
func streamText(client openai.Client, model string, opts ...option.RequestOption) (text, served string, finish string, err error) {
	s := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell me about the fox.")},
	}, opts...)
	var b strings.Builder
	for s.Next() {
		ch := s.Current()
		served = ch.Model
		for _, c := range ch.Choices {
			b.WriteString(c.Delta.Content)
			if c.FinishReason != "" {
				finish = c.FinishReason
			}
		}
	}
	return b.String(), served, finish, s.Err()
}

func TestServedModelIsNamedOnEverySurface(t *testing.T) {
	fake := &fakeupstream.Server{}
	j := startFaulty(t, fake, `  - {name: broken, provider: faulty, upstream_model: "503"}
  - {name: spare, provider: faulty, upstream_model: spare-model}`, `routes:
  - {name: chat, deployments: [{model: broken}], fallbacks: [spare]}
router: {retry_backoff: 1ms}`)
	client := j.sdk(adminKey)
	var hdr *http.Response
	resp, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    "chat",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	}, option.WithResponseInto(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Model != "spare" || hdr.Header.Get("X-Junction-Requested-Model") != "chat" || hdr.Header.Get("X-Junction-Served-Model") != "spare" {
		t.Fatalf("plain: model %q, headers %v", resp.Model, hdr.Header)
	}
	text, served, _, err := streamText(client, "chat")
	if err != nil || text != fakeupstream.DefaultReply || served != "spare" {
		t.Fatalf("stream: %q served by %q, %v", text, served, err)
	}
	claude := j.claude(adminKey)
	msg, err := claude.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: "chat", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	if err != nil || string(msg.Model) != "spare" {
		t.Fatalf("anthropic: %v %v", msg, err)
	}
	st := claude.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
		Model: "chat", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	var acc anthropic.Message
	for st.Next() {
		acc.Accumulate(st.Current())
	}
	if st.Err() != nil || string(acc.Model) != "spare" {
		t.Fatalf("anthropic stream: model %q, %v", acc.Model, st.Err())
	}
}

// chat sends one plain request with the SDK and returns the answer's
// text, the headers and the error.
func chat(client openai.Client, model string) (string, http.Header, error) {
	var hr *http.Response
	resp, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	}, option.WithResponseInto(&hr))
	var h http.Header
	if hr != nil {
		h = hr.Header
	}
	if err != nil {
		return "", h, err
	}
	return resp.Choices[0].Message.Content, h, nil
}

func TestRetriesTheSameDeploymentFirst(t *testing.T) {
	fake := &fakeupstream.Server{}
	j := startFaulty(t, fake, `  - {name: limited, provider: faulty, upstream_model: "429-once-retry-after-1"}
  - {name: limited-long, provider: faulty, upstream_model: "429-retry-after-30"}
  - {name: limited-bare, provider: faulty, upstream_model: "429"}
  - {name: hiccup, provider: faulty, upstream_model: "500-once"}
  - {name: dropped, provider: faulty, upstream_model: "reset-once"}
  - {name: down, provider: faulty, upstream_model: "503"}
  - {name: spare, provider: faulty, upstream_model: spare-model}`, `routes:
  - {name: r-limited, deployments: [{model: limited}], fallbacks: [spare], retries_per_deployment: 1}
  - {name: r-limited-long, deployments: [{model: limited-long}], fallbacks: [spare], retries_per_deployment: 1}
  - {name: r-limited-bare, deployments: [{model: limited-bare}], fallbacks: [spare], retries_per_deployment: 1}
  - {name: r-hiccup, deployments: [{model: hiccup}], fallbacks: [spare], retries_per_deployment: 1}
  - {name: r-dropped, deployments: [{model: dropped}], fallbacks: [spare], retries_per_deployment: 1}
  - {name: r-down, deployments: [{model: down}], fallbacks: [spare], retries_per_deployment: 2}
  - {name: r-noretry, deployments: [{model: hiccup}], fallbacks: [spare]}
router: {retry_backoff: 1ms, failure_threshold: 10, max_retry_wait: 5s, max_attempts: 5}`)
	client := j.sdk(adminKey)
	// A 429 with Retry-After, a 500 once and a reset before headers are
	// retried on the same deployment, which then answers.
	for _, c := range []struct{ route, upstream, deployment string }{
		{"r-limited", "429-once-retry-after-1", "limited"},
		{"r-hiccup", "500-once", "hiccup"},
		{"r-dropped", "reset-once", "dropped"},
	} {
		text, h, err := chat(client, c.route)
		if err != nil || text != fakeupstream.DefaultReply {
			t.Fatalf("%s: %q %v", c.route, text, err)
		}
		if h.Get("X-Junction-Served-Model") != c.deployment || h.Get("X-Junction-Attempts") != "2" ||
			!strings.Contains(h.Get("X-Junction-Route-Reason"), "retried after") || fake.Count(c.upstream) != 2 {
			t.Fatalf("%s: served by %s after %s attempts (%s), upstream saw %d", c.route, h.Get("X-Junction-Served-Model"),
				h.Get("X-Junction-Attempts"), h.Get("X-Junction-Route-Reason"), fake.Count(c.upstream))
		}
	}
	// The wait for Retry-After was kept: the retry came a second later.
	seen := fake.Requests()
	if gap := seen[1].Time.Sub(seen[0].Time); gap < 900*time.Millisecond {
		t.Fatalf("retried after %v, before the upstream's Retry-After of 1s", gap)
	}
	// A Retry-After beyond max_retry_wait, a 429 without one, and a 503
	// (overloaded) go to the fallback at once.
	for _, c := range []struct{ route, upstream string }{{"r-limited-long", "429-retry-after-30"}, {"r-limited-bare", "429"}} {
		text, h, err := chat(client, c.route)
		if err != nil || text != fakeupstream.DefaultReply || h.Get("X-Junction-Served-Model") != "spare" || fake.Count(c.upstream) != 1 {
			t.Fatalf("%s: %q from %s, upstream saw %d, %v", c.route, text, h.Get("X-Junction-Served-Model"), fake.Count(c.upstream), err)
		}
	}
	// Without retries_per_deployment a route moves on at once, as before.
	before := fake.Count("500-once")
	if _, h, err := chat(client, "r-noretry"); err != nil || h.Get("X-Junction-Served-Model") != "hiccup" || fake.Count("500-once") != before+1 {
		// hiccup answers now (its one failure is spent): one call.
		t.Fatalf("no-retry route: %v %v", h, err)
	}
}

func TestRetriesPerSecondAreBounded(t *testing.T) {
	fake := &fakeupstream.Server{}
	j := startFaulty(t, fake, `  - {name: broken, provider: faulty, upstream_model: "500"}
  - {name: spare, provider: faulty, upstream_model: spare-model}`, `routes:
  - {name: chat, deployments: [{model: broken}], fallbacks: [spare], retries_per_deployment: 3}
router: {retry_backoff: 1ms, failure_threshold: 100, retries_per_second: 2, max_attempts: 10}`)
	client := j.sdk(adminKey)
	// Each request may retry the broken deployment up to 3 times, but it
	// gets at most 2 retries a second across all requests: requests sent
	// within one second reach it at most 2 + one first try each.
	start := time.Now()
	const n = 4
	for i := 0; i < n; i++ {
		if text, _, err := chat(client, "chat"); err != nil || text != fakeupstream.DefaultReply {
			t.Fatalf("%q %v", text, err)
		}
	}
	if time.Since(start) >= time.Second {
		t.Skip("the machine was too slow to send the requests within one second")
	}
	if got := fake.Count("500"); got > n+2*2 || got < n+2 {
		t.Fatalf("the broken deployment saw %d calls from %d requests; want %d to %d (2 retries a second, in one or two calendar seconds)", got, n, n+2, n+4)
	}
}

func TestCircuitBreakerSendsTrafficToTheFallbackAndProbesOnce(t *testing.T) {
	fake := &fakeupstream.Server{}
	// The primary fails its first request and never answers its second.
	j := startFaulty(t, fake, `  - {name: primary, provider: faulty, upstream_model: "503+hang-on-2"}
  - {name: flappy, provider: faulty, upstream_model: "flap-1"}
  - {name: spare, provider: faulty, upstream_model: spare-model}`, `routes:
  - {name: chat, deployments: [{model: primary}], fallbacks: [spare]}
  - {name: cool, deployments: [{model: flappy}], fallbacks: [spare]}
router: {retry_backoff: 1ms, failure_threshold: 1, cooldown: 1ms, max_cooldown: 1ms}`)
	client := j.sdk(adminKey)
	if _, h, err := chat(client, "chat"); err != nil || h.Get("X-Junction-Served-Model") != "spare" {
		t.Fatalf("first request: %v %v", h, err)
	}
	// The primary is tripped. Once its (1 ms) cooldown is over, one
	// request probes it; that probe hangs. Start requests until one is
	// the probe.
	probeDone := make(chan error, 1)
	deadline := time.Now().Add(10 * time.Second)
	for fake.Count("503+hang-on-2") < 2 {
		done := make(chan error, 1)
		go func() { _, _, err := chat(client, "chat"); done <- err }()
		for fake.Count("503+hang-on-2") < 2 && len(done) == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatal("no request probed the tripped deployment")
		}
		if fake.Count("503+hang-on-2") >= 2 {
			probeDone = done
		} else if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// While the probe is out, every other request goes to the fallback:
	// the primary sees no second probe.
	for i := 0; i < 5; i++ {
		if _, h, err := chat(client, "chat"); err != nil || h.Get("X-Junction-Served-Model") != "spare" ||
			!strings.Contains(h.Get("X-Junction-Route-Reason"), "fallback from chat") {
			t.Fatalf("during the probe: %v %v", h, err)
		}
	}
	if n := fake.Count("503+hang-on-2"); n != 2 {
		t.Fatalf("the primary saw %d requests during its probe, want 2 (the failure and the one probe)", n)
	}
	// The probe times out (upstream_timeout) and is then served by the
	// fallback too.
	if err := <-probeDone; err != nil {
		t.Fatalf("probe: %v", err)
	}
	// A probe that succeeds closes the circuit: flap-1 fails once, then
	// answers; after the failure and its cooldown, requests reach it.
	if _, h, err := chat(client, "cool"); err != nil || h.Get("X-Junction-Served-Model") != "spare" {
		t.Fatalf("flappy failing: %v %v", h, err)
	}
	for time.Now().Before(deadline) {
		_, h, err := chat(client, "cool")
		if err != nil {
			t.Fatal(err)
		}
		if h.Get("X-Junction-Served-Model") == "flappy" {
			return
		}
	}
	t.Fatal("the recovered deployment was never probed again")
}

func TestFirstTokenTimeoutFailsOverUnseen(t *testing.T) {
	fake := &fakeupstream.Server{}
	j := startFaulty(t, fake, `  - {name: slow, provider: faulty, upstream_model: "slow-first-token-10s"}
  - {name: spare, provider: faulty, upstream_model: spare-model}`, `routes:
  - {name: chat, deployments: [{model: slow}], fallbacks: [spare], first_token_timeout: 300ms}
router: {retry_backoff: 1ms}`)
	text, served, finish, err := streamText(j.sdk(adminKey), "chat")
	if err != nil || text != fakeupstream.DefaultReply || served != "spare" || finish != "stop" {
		t.Fatalf("%q served by %q (%s), %v", text, served, finish, err)
	}
	if fake.Count("slow-first-token-10s") != 1 {
		t.Fatal("the slow deployment was not tried first")
	}
	r := j.records(1)[0]
	if r.Deployment != "spare" || r.Attempts != 2 || !strings.Contains(r.RouteReason, "after 504 from faulty") {
		t.Fatalf("record %+v", r)
	}
}

// recordsByID polls the ledger for n records and returns them by request id.
func recordsByID(j *junction, n int) map[string]ledger.Record {
	out := map[string]ledger.Record{}
	for _, r := range j.records(n) {
		out[r.RequestID] = r
	}
	return out
}

func TestMidStreamFailoverCompletesTheAnswer(t *testing.T) {
	fake := &fakeupstream.Server{}
	j := startFaulty(t, fake, `  - {name: cut, provider: faulty, upstream_model: "cut-after-3", price: {input_per_1k: 1, output_per_1k: 2}}
  - {name: stall, provider: faulty, upstream_model: "stall-after-4"}
  - {name: erring, provider: faulty, upstream_model: "error-after-2"}
  - {name: claude-spare, provider: faultyclaude, upstream_model: claude-spare, price: {input_per_1k: 3, output_per_1k: 4}}
  - {name: plain-spare, provider: faulty, upstream_model: plain-spare}
  - {name: rejecting, provider: faulty, upstream_model: "rejects-prefill", prefill: true}
  - {name: different, provider: faulty, upstream_model: "other-answer"}`, `routes:
  - {name: to-claude, deployments: [{model: cut}], fallbacks: [claude-spare]}
  - {name: stalled, deployments: [{model: stall}], fallbacks: [plain-spare], stream_idle_timeout: 300ms}
  - {name: erred, deployments: [{model: erring}], fallbacks: [plain-spare]}
  - {name: to-rejecting, deployments: [{model: cut}], fallbacks: [rejecting]}
  - {name: to-different, deployments: [{model: cut}], fallbacks: [different]}
router: {retry_backoff: 1ms, failure_threshold: 100, max_attempts: 4}`)
	client := j.sdk(adminKey)

	// Cut after three words, continued by a model that takes a prefill:
	// it is sent the partial answer and streams only the rest.
	text, served, finish, err := streamText(client, "to-claude")
	if err != nil || text != fakeupstream.DefaultReply || finish != "stop" || served != "claude-spare" {
		t.Fatalf("prefill: %q (%s) served by %q, %v", text, finish, served, err)
	}
	seen := fake.Requests()
	if last := seen[len(seen)-1]; last.Model != "claude-spare" || last.Prefill != "The quick brown" {
		t.Fatalf("the continuation was asked as %+v", last)
	}
	// The ledger holds both attempts, each with its own tokens and cost:
	// the cut one estimated (its usage never came), the continuation's
	// as its upstream reported it.
	recs := recordsByID(j, 2)
	var final, partial ledger.Record
	for id, r := range recs {
		if strings.Contains(id, ".") {
			partial = r
		} else {
			final = r
		}
	}
	restWords := len(strings.Fields(strings.TrimPrefix(fakeupstream.DefaultReply, "The quick brown")))
	if final.Deployment != "claude-spare" || final.Status != 200 || final.Estimated || final.OutputTokens != restWords+1 ||
		final.InputTokens != fakeupstream.PromptTokens || final.CostUSD == nil || !strings.Contains(final.RouteReason, "prefill") {
		t.Fatalf("final record %+v", final)
	}
	if partial.Deployment != "cut" || partial.Status != 502 || !partial.Estimated || partial.OutputTokens < 3 ||
		partial.InputTokens == 0 || partial.CostUSD == nil || *partial.CostUSD <= 0 {
		t.Fatalf("partial record %+v", partial)
	}

	// Stalled mid-answer past stream_idle_timeout, or ended by an error
	// event, and continued by a model without prefill: it is asked again
	// and only what extends the text already sent is forwarded.
	for _, route := range []string{"stalled", "erred"} {
		text, served, finish, err = streamText(client, route)
		if err != nil || text != fakeupstream.DefaultReply || finish != "stop" || served != "plain-spare" {
			t.Fatalf("%s: %q (%s) served by %q, %v", route, text, finish, served, err)
		}
	}

	// A fallback that rejects the prefill is asked again plainly; its
	// 400 never reaches the client.
	text, _, finish, err = streamText(client, "to-rejecting")
	if err != nil || text != fakeupstream.DefaultReply || finish != "stop" {
		t.Fatalf("rejected prefill: %q (%s), %v", text, finish, err)
	}
	if n := fake.Count("rejects-prefill"); n != 2 {
		t.Fatalf("the rejecting model was asked %d times, want 2 (prefill, then plainly)", n)
	}

	// A re-asked answer that does not start with the text sent cannot
	// complete it: the stream ends with the first failure, never as if
	// complete.
	text, _, finish, err = streamText(client, "to-different")
	if err == nil || finish != "" || text != "The quick brown " || !strings.Contains(err.Error(), "faulty") {
		t.Fatalf("diverging: %q (%s), %v", text, finish, err)
	}
}

// sseText joins the content deltas of an OpenAI stream's raw body.
func sseText(t *testing.T, body []byte) string {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(string(body), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var ch struct {
			Choices []struct {
				Delta struct{ Content string }
			}
		}
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			t.Fatalf("chunk %s: %v", data, err)
		}
		for _, c := range ch.Choices {
			b.WriteString(c.Delta.Content)
		}
	}
	return b.String()
}

func TestMalformedEventIsSkippedUnlessStrict(t *testing.T) {
	fake := &fakeupstream.Server{}
	models := `  - {name: garbled, provider: faulty, upstream_model: "malformed-after-2"}
  - {name: unfinished, provider: faulty, upstream_model: "no-done"}`
	j := startFaulty(t, fake, models, `router: {retry_backoff: 1ms}`)
	client := j.sdk(adminKey)
	// One event of invalid JSON mid-stream is skipped and counted; the
	// rest of the answer arrives.
	text, _, finish, err := streamText(client, "garbled")
	if err != nil || text != fakeupstream.DefaultReply || finish != "stop" {
		t.Fatalf("lenient: %q (%s), %v", text, finish, err)
	}
	_, _, metrics := j.do("GET", "/metrics", adminKey, "")
	if !strings.Contains(string(metrics), `junction_stream_malformed_events_total{provider="faulty"}`) {
		t.Fatal("the skipped event was not counted in junction_stream_malformed_events_total")
	}
	// A stream that ends after its finish_reason and usage without
	// [DONE] is complete.
	text, _, finish, err = streamText(client, "unfinished")
	if err != nil || text != fakeupstream.DefaultReply || finish != "stop" {
		t.Fatalf("no [DONE]: %q (%s), %v", text, finish, err)
	}
	// Strict: the malformed event ends the stream with an error.
	strict := startFaulty(t, fake, models, `router: {retry_backoff: 1ms, strict_streams: true}`)
	text, _, finish, err = streamText(strict.sdk(adminKey), "garbled")
	if err == nil || finish != "" || text != "The quick " || !strings.Contains(err.Error(), "could not parse") {
		t.Fatalf("strict: %q (%s), %v", text, finish, err)
	}
}

func TestUpstreamFailuresBeforeAnyAnswer(t *testing.T) {
	fake := &fakeupstream.Server{}
	j := startFaulty(t, fake, `  - {name: down, provider: faulty, upstream_model: "503"}
  - {name: mute, provider: faulty, upstream_model: "no-answer"}
  - {name: long, provider: faulty, upstream_model: "context-length"}
  - {name: prude, provider: faulty, upstream_model: "content-policy"}
  - {name: big, provider: faulty, upstream_model: big-context}
  - {name: liberal, provider: faulty, upstream_model: other-provider}`, `routes:
  - {name: chat, deployments: [{model: down}, {model: mute}], fallbacks: [liberal]}
  - {name: ctx, deployments: [{model: long}], context_fallbacks: [big]}
  - {name: policy, deployments: [{model: prude}], policy_fallbacks: [liberal]}
router: {retry_backoff: 1ms, max_attempts: 5}`)
	client := j.sdk(adminKey)
	// A 503 and an upstream that never answers (upstream_timeout) both
	// fail over, plain and streamed.
	for _, stream := range []bool{false, true} {
		var served string
		var err error
		if stream {
			_, served, _, err = streamText(client, "chat")
		} else {
			var h http.Header
			_, h, err = chat(client, "chat")
			served = h.Get("X-Junction-Served-Model")
		}
		if err != nil || served != "liberal" {
			t.Fatalf("stream=%v: served by %q, %v", stream, served, err)
		}
	}
	// Context-length and content-policy 400s go to their own fallbacks;
	// without one, the client gets the 400.
	for route, want := range map[string]string{"ctx": "big", "policy": "liberal"} {
		if _, h, err := chat(client, route); err != nil || h.Get("X-Junction-Served-Model") != want {
			t.Fatalf("%s: %v %v", route, h, err)
		}
	}
	_, _, err := chat(client, "long")
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "context_length_exceeded" {
		t.Fatalf("context-length without a fallback: %v", err)
	}
}

// hangUpAfterFinish streams model with a raw client and closes the
// connection as soon as the finish_reason chunk has arrived, before the
// usage chunk.
func hangUpAfterFinish(t *testing.T, j *junction, model string) {
	t.Helper()
	body := `{"model":"` + model + `","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Tell me about the fox."}]}`
	req, _ := http.NewRequest("POST", j.url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before finish_reason: %v", err)
		}
		if strings.Contains(line, `"finish_reason":"stop"`) {
			break
		}
	}
	resp.Body.Close()
}

func TestHangingUpBeforeTheUsageChunkIsStillCharged(t *testing.T) {
	fake := &fakeupstream.Server{}
	j := startFaulty(t, fake, `  - {name: late, provider: faulty, upstream_model: "usage-late-300ms", price: {input_per_1k: 1, output_per_1k: 2}}
  - {name: never, provider: faulty, upstream_model: "usage-late-1h", price: {input_per_1k: 1, output_per_1k: 2}}`, `router: {retry_backoff: 1ms}`)
	words := len(strings.Fields(fakeupstream.DefaultReply))
	// The upstream sends its usage soon after: Junction keeps reading
	// after the client left, and records the upstream's own counts.
	hangUpAfterFinish(t, j, "late")
	r := j.records(1)[0]
	if r.InputTokens != fakeupstream.PromptTokens || r.OutputTokens != words || r.Estimated || r.CostUSD == nil || *r.CostUSD <= 0 {
		t.Fatalf("drained usage: %+v", r)
	}
	// The usage never comes: the record counts the prompt and the text
	// streamed with the offline tokenizer, and says it estimated them.
	hangUpAfterFinish(t, j, "never")
	recs := j.records(2)
	r = recs[0]
	if r.Model != "never" {
		r = recs[1]
	}
	if r.InputTokens == 0 || r.OutputTokens < words || !r.Estimated || r.CostUSD == nil || *r.CostUSD <= 0 {
		t.Fatalf("estimated usage: %+v", r)
	}
}
