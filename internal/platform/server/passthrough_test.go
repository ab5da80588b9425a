package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/wire/openaiwire"
)

// The pass-through path (an OpenAI client's body forwarded with only model,
// stream options and max_tokens patched; answers and chunks read by the
// hand-written decoders) must give clients exactly the bytes the full path
// (decode, re-encode, encoding/json) gives. TestPassThroughMatchesFullPath
// runs the same requests through two Junctions that differ only in
// providers[].pass_through, in front of one upstream that replays canned
// OpenAI wire bytes, and compares what the clients got, byte for byte, and
// what each wrote to its ledger for every request (tokens, cost, status).

// upstreamCase is one canned upstream answer, chosen by the marker
// "case:NAME" in the request's text.
type upstreamCase struct {
	status int
	header map[string]string
	// body is the answer; for a stream, events separated by "\n\n" are
	// written and flushed one at a time.
	body   string
	stream bool
	// cut drops the connection after body, without the chunked body's
	// end: a stream cut mid-answer.
	cut bool
}

const (
	plainHead = `{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion","created":1741569952,"model":"gpt-4.1-2025-04-14",`
	chunkHead = `{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb",`
)

var upstreamCases = map[string]upstreamCase{
	"text":     {body: plainHead + `"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_44709d6fcb"}`},
	"tools":    {body: plainHead + `"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc123","type":"function","function":{"name":"get_current_weather","arguments":"{\n\"location\": \"Boston, MA\"\n}"}},{"id":"call_def","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99}}`},
	"escapes":  {body: plainHead + `"choices":[{"index":0,"message":{"role":"assistant","content":"Line 1\nLine \"2\" \u00e9 – ✓ \ud83c\udf89 <b>&amp;</b> \u2028"},"finish_reason":"length"}],"usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920}}}`},
	"refusal":  {body: plainHead + `"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"content_filter"}],"usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}}`},
	"vllm":     {body: `{"id":"chatcmpl-3f1f2a","object":"chat.completion","created":1733000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"message":{"role":"assistant","reasoning_content":null,"content":"Paris.","tool_calls":[]},"logprobs":null,"finish_reason":"stop","stop_reason":null}],"usage":{"prompt_tokens":14,"total_tokens":17,"completion_tokens":3,"prompt_tokens_details":null},"prompt_logprobs":null,"kv_transfer_params":null}`},
	"llamacpp": {body: `{"choices":[{"finish_reason":"stop","index":0,"message":{"role":"assistant","content":"Hi there"}}],"created":1733000000,"model":"gpt-3.5-turbo","system_fingerprint":"b4000-abc","object":"chat.completion","usage":{"completion_tokens":3,"prompt_tokens":9,"total_tokens":12},"id":"","timings":{"prompt_n":9,"predicted_per_second":88.1}}`},
	// encoding/json reads "Usage" as usage; the scanner leaves it to it.
	"odd-case":     {body: plainHead + `"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"Usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`},
	"garbage":      {body: plainHead + `"choices":[{"index":0,"message":{"role":"assistant","content":"cut`},
	"bad-request":  {status: 400, body: `{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`},
	"rate-limited": {status: 429, header: map[string]string{"Retry-After": "7"}, body: `{"error":{"message":"Rate limit reached for gpt-4o-mini on tokens per min.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`},
	"server-error": {status: 500, body: `{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`},

	"stream-text": {stream: true, body: events(
		chunkHead+`"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":" wörld <&> \"quoted\"\n"},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`,
		chunkHead+`"choices":[],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":3,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`,
		`[DONE]`)},
	"stream-tools": {stream: true, body: events(
		chunkHead+`"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}]}`,
		chunkHead+`"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"logprobs":null,"finish_reason":null}]}`,
		chunkHead+`"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"logprobs":null,"finish_reason":null}]}`,
		chunkHead+`"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_def","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"logprobs":null,"finish_reason":null}]}`,
		chunkHead+`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}`,
		chunkHead+`"choices":[],"usage":{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99}}`,
		`[DONE]`)},
	"stream-vllm": {stream: true, body: events(
		`{"id":"chatcmpl-3f","object":"chat.completion.chunk","created":1733000000,"model":"llama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`,
		`{"id":"chatcmpl-3f","object":"chat.completion.chunk","created":1733000000,"model":"llama","choices":[{"index":0,"delta":{"content":"Paris"},"logprobs":null,"finish_reason":null}]}`,
		`{"id":"chatcmpl-3f","object":"chat.completion.chunk","created":1733000000,"model":"llama","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"length","stop_reason":null}]}`,
		`{"id":"chatcmpl-3f","object":"chat.completion.chunk","created":1733000000,"model":"llama","choices":[],"usage":{"prompt_tokens":14,"total_tokens":30,"completion_tokens":16}}`,
		`[DONE]`)},
	// Usage and the finish in one chunk, and no [DONE] (some servers).
	"stream-terse": {stream: true, body: events(
		`{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}`,
		`{"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4}}`)},
	"stream-error": {stream: true, body: events(
		chunkHead+`"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":"Partial"},"logprobs":null,"finish_reason":null}]}`,
		`{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`)},
	"stream-error-first": {stream: true, body: events(
		`{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}`)},
	// Cut streams: the connection drops mid-answer. The ledger estimates
	// the tokens from the text that got through, on both paths alike.
	"stream-cut": {stream: true, cut: true, body: events(
		chunkHead+`"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":"The capital of France"},"logprobs":null,"finish_reason":null}]}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":" is Paris, a city of"},"logprobs":null,"finish_reason":null}]}`)},
	"stream-cut-mid-event": {stream: true, cut: true, body: events(
		chunkHead+`"choices":[{"index":0,"delta":{"role":"assistant","content":"Half"},"logprobs":null,"finish_reason":null}]}`) +
		`data: ` + chunkHead + `"choices":[{"index":0,"delta":{"content":" an ev`},
	"stream-cut-tools": {stream: true, cut: true, body: events(
		chunkHead+`"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":""}}]},"logprobs":null,"finish_reason":null}]}`,
		chunkHead+`"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"logprobs":null,"finish_reason":null}]}`)},
	// The finish arrived but the usage chunk never did.
	"stream-cut-before-usage": {stream: true, cut: true, body: events(
		chunkHead+`"choices":[{"index":0,"delta":{"role":"assistant","content":"Done."},"logprobs":null,"finish_reason":null}]}`,
		chunkHead+`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`)},
	// Keep-alive comments between the events, and an event framed with
	// CR LF: the SSE reader's line path.
	"stream-keepalive": {stream: true, body: ": keep-alive\n\n" + events(
		chunkHead+`"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":"One"},"logprobs":null,"finish_reason":null}],"usage":null}`) +
		":\n\n: ping\n\n" + "data: " + chunkHead + `"choices":[{"index":0,"delta":{"content":" two"},"logprobs":null,"finish_reason":null}],"usage":null}` + "\r\n\r\n" +
		events(chunkHead+`"choices":[{"index":0,"delta":{"content":" three"},"logprobs":null,"finish_reason":null}],"usage":null}`,
			chunkHead+`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`,
			chunkHead+`"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}`, `[DONE]`)},
	// Events split across the upstream's writes (splitHere): mid-text,
	// right after "data: ", between an event and its blank line.
	"stream-split": {stream: true, body: events(
		chunkHead+`"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}`) +
		"data: " + chunkHead + `"choices":[{"index":0,"delta":{"content":"Spl` + splitHere + `it"},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n" +
		"data: " + splitHere + chunkHead + `"choices":[{"index":0,"delta":{"content":" across"},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n" + splitHere + "\n" +
		events(chunkHead+`"choices":[{"index":0,"delta":{"content":" reads"},"logprobs":null,"finish_reason":null}],"usage":null}`,
			chunkHead+`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`,
			chunkHead+`"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}`, `[DONE]`)},
	// n=2: Junction forwards the first choice only.
	"stream-two-choices": {stream: true, body: events(
		chunkHead+`"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":1,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":"Heads"},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":1,"delta":{"content":"Tails"},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":" wins"},"logprobs":null,"finish_reason":null},{"index":1,"delta":{"content":" loses"},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":1,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`,
		chunkHead+`"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":8,"total_tokens":17}}`, `[DONE]`)},
	// Text chunks whose frame changes: another id, a member more, an
	// escape, a quote, then the first frame again.
	"stream-frames": {stream: true, body: events(
		chunkHead+`"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":"A"},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":"B"},"logprobs":null,"finish_reason":null}],"usage":null}`,
		strings.Replace(chunkHead, "chatcmpl-123", "chatcmpl-124", 1)+`"choices":[{"index":0,"delta":{"content":"C"},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":"D"},"logprobs":null,"finish_reason":null}],"usage":null,"x":1}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":"E\u00e9\n"},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":"\"F\""},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":"G<&>"},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":"H"},"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":4,"completion_tokens":8,"total_tokens":12}}`,
		`[DONE]`)},
	// For the guarded model: a match to mask split across chunks, and one
	// that blocks the answer.
	"stream-pii": {stream: true, body: events(
		chunkHead+`"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":"Your order ORD-12"},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":"3456 ships today."},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`,
		chunkHead+`"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}}`, `[DONE]`)},
	"stream-blocked": {stream: true, body: events(
		chunkHead+`"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":"See ticket TCK-"},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{"content":"1234 for it."},"logprobs":null,"finish_reason":null}],"usage":null}`,
		chunkHead+`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`,
		chunkHead+`"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}}`, `[DONE]`)},
	// A clean end without [DONE], finish or usage.
	"stream-eof": {stream: true, body: events(
		chunkHead + `"choices":[{"index":0,"delta":{"role":"assistant","content":"Ended early"},"logprobs":null,"finish_reason":null}]}`)},
}

// splitHere in a stream's body is where the upstream flushes what it
// wrote so far, inside an event.
const splitHere = "\x00"

// events frames events as an upstream writes them.
func events(data ...string) string {
	var b strings.Builder
	for _, e := range data {
		b.WriteString("data: " + e + "\n\n")
	}
	return b.String()
}

var caseMarker = regexp.MustCompile(`case:([a-z-]+)`)

// replayUpstream answers each request with the case its text names, and
// keeps the bodies it was sent.
type replayUpstream struct {
	mu     sync.Mutex
	bodies []string
}

func (u *replayUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.bodies = append(u.bodies, string(b))
	u.mu.Unlock()
	m := caseMarker.FindSubmatch(b)
	if m == nil {
		http.Error(w, "no case named", http.StatusBadRequest)
		return
	}
	c, ok := upstreamCases[string(m[1])]
	if !ok {
		http.Error(w, "no case "+string(m[1]), http.StatusBadRequest)
		return
	}
	for k, v := range c.header {
		w.Header().Set(k, v)
	}
	if !c.stream {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(max(c.status, http.StatusOK))
		io.WriteString(w, c.body)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for _, part := range strings.Split(c.body, splitHere) {
		for _, ev := range strings.SplitAfter(part, "\n\n") {
			io.WriteString(w, ev)
			w.(http.Flusher).Flush()
		}
	}
	if c.cut {
		// The server closes the connection without ending the chunked
		// body: the client reads an unexpected EOF.
		panic(http.ErrAbortHandler)
	}
}

func (u *replayUpstream) sent() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.bodies...)
}

// passJunction runs a Junction in front of up with providers[].pass_through
// set as given; retries are off so that each request makes one call.
func passJunction(t *testing.T, upURL string, pass bool) *junction {
	dir := t.TempDir()
	return runYAML(t, fmt.Sprintf(`
server: {addr: "127.0.0.1:0", data_dir: %q, upstream_timeout: 5s}
auth: {admin_key: %q}
log: {level: warn}
router: {max_attempts: 1}
providers:
  - {name: up, type: openai, base_url: "%s/v1", api_key: sk-up, pass_through: %v}
models:
  - {name: chat, provider: up, upstream_model: gpt-4o-2024-08-06, price: {input_per_1k: 0.0025, output_per_1k: 0.01}}
  - {name: reasoner, provider: up, upstream_model: o3-mini}
  - {name: guarded, provider: up, upstream_model: gpt-4o-2024-08-06, guardrail: out-guard}
guardrails:
  - id: out-guard
    name: out-guard
    blocked_input_messaging: "Blocked."
    blocked_outputs_messaging: "That answer was blocked."
    sensitive_information_policy:
      regexes:
        - {name: TICKET, pattern: '\bTCK-\d{4}\b', action: BLOCK}
        - {name: ORDER, pattern: '\bORD-\d{6}\b', action: ANONYMIZE}
`, dir, adminKey, upURL, pass), dir)
}

// clientRequests are the client bodies each case is sent with: plain and
// streamed, with and without usage, tools, odd spacing, a reasoning model.
func clientRequests(name string, stream bool) []string {
	msg := `"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"case:` + name + `"}]`
	if !stream {
		return []string{
			`{"model":"chat",` + msg + `}`,
			"{ \"temperature\" : 0.2 ,\n \"model\":\"chat\", " + msg + `, "seed": 7, "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"tool_choice":"auto"}`,
			`{"model":"reasoner","max_completion_tokens":50,` + msg + `,"metadata":{"app":"faq"}}`,
		}
	}
	return []string{
		`{"model":"chat","stream":true,` + msg + `}`,
		`{"model":"chat","stream":true,"stream_options":{"include_usage":true},` + msg + `,"max_tokens":40}`,
		`{"stream_options":{"include_usage":false},"model":"reasoner","stream":true,` + msg + `}`,
		// An output guardrail: its text is checked (and masked or
		// blocked) on both paths.
		`{"model":"guarded","stream":true,"stream_options":{"include_usage":true},` + msg + `}`,
	}
}

var (
	createdRE = regexp.MustCompile(`"created":\d+`)
)

// normalised is what a client got, with what differs between any two
// requests (the request id, the clock) made equal.
func normalised(status int, h http.Header, body []byte) string {
	b := createdRE.ReplaceAllString(string(body), `"created":0`)
	if id := h.Get("X-Request-Id"); id != "" {
		b = strings.ReplaceAll(b, id, "REQUEST-ID")
	}
	var hs []string
	for _, k := range []string{"Content-Type", "Retry-After", "X-Junction-Served-Model", "X-Junction-Route-Reason", "X-Junction-Attempts"} {
		hs = append(hs, k+": "+h.Get(k))
	}
	return fmt.Sprintf("%d\n%s\n\n%s", status, strings.Join(hs, "\n"), b)
}

func TestPassThroughMatchesFullPath(t *testing.T) {
	up := &replayUpstream{}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	pass, full := passJunction(t, srv.URL, true), passJunction(t, srv.URL, false)
	compared := 0
	type pair struct{ name, body, passID, fullID string }
	var pairs []pair
	for name, c := range upstreamCases {
		for _, body := range clientRequests(name, c.stream) {
			ps, ph, pb := pass.do("POST", "/v1/chat/completions", adminKey, body)
			fs, fh, fb := full.do("POST", "/v1/chat/completions", adminKey, body)
			if p, f := normalised(ps, ph, pb), normalised(fs, fh, fb); p != f {
				t.Errorf("case %s, request %s:\n pass-through:\n%s\n full path:\n%s", name, body, p, f)
			}
			if got := string(pb); !strings.Contains(got, caseShows(name, body)) {
				t.Errorf("case %s, request %s: the answer lacks %q:\n%s", name, body, caseShows(name, body), got)
			}
			pairs = append(pairs, pair{name, body, ph.Get("X-Request-Id"), fh.Get("X-Request-Id")})
			compared++
		}
	}
	// Both ledgers hold one record per request, with the same tokens,
	// cost and outcome.
	passRecs, fullRecs := recordsByID(pass, compared), recordsByID(full, compared)
	for _, p := range pairs {
		pr, ok1 := passRecs[p.passID]
		fr, ok2 := fullRecs[p.fullID]
		if !ok1 || !ok2 {
			t.Errorf("case %s, request %s: no ledger record (pass-through %v, full path %v)", p.name, p.body, ok1, ok2)
			continue
		}
		if upstreamCases[p.name].cut && (!pr.Estimated || pr.InputTokens == 0 || pr.OutputTokens == 0) {
			// What the cut stream delivered, text or tool calls, was
			// counted, not lost.
			t.Errorf("case %s: a cut stream's record has no estimated tokens: %s", p.name, ledgerFacts(pr))
		}
		if a, b := ledgerFacts(pr), ledgerFacts(fr); a != b {
			t.Errorf("case %s, request %s: the ledgers differ:\n pass-through %s\n full path    %s", p.name, p.body, a, b)
		}
	}
	// The upstream got the same request from both, in meaning; and from
	// the pass-through Junction, the client's own bytes where it could.
	sent := up.sent()
	if len(sent) != 2*compared {
		t.Fatalf("upstream got %d requests for %d compared pairs", len(sent), compared)
	}
	raw := 0
	for i := 0; i < len(sent); i += 2 {
		p, f := canonicalBody(t, sent[i]), canonicalBody(t, sent[i+1])
		if p != f {
			t.Errorf("the upstream got different requests:\n pass-through %s\n full path    %s", sent[i], sent[i+1])
		}
		if strings.Contains(sent[i], "\"temperature\" : 0.2 ,\n") {
			raw++
		}
	}
	if raw == 0 {
		t.Error("no request was passed through as the client sent it: the pass-through path was not taken")
	}
}

// caseShows is text the client's answer to a case must hold: what shows
// that the case did what it is there for.
func caseShows(name, body string) string {
	guarded := strings.Contains(body, `"model":"guarded"`)
	switch {
	case name == "stream-pii" && guarded:
		return "Your order {ORDER} ships today."
	case name == "stream-blocked" && guarded:
		return "That answer was blocked."
	case guarded:
		return "" // the guard holds the text back and sends it in one
	case name == "stream-two-choices":
		return `"content":" wins"}` // the first choice, alone
	case name == "stream-split":
		return `"content":"Split"}`
	case name == "stream-keepalive":
		return `"content":" two"}`
	case name == "stream-frames":
		return `"content":"G\u003c\u0026\u003e"}`
	}
	return ""
}

// ledgerFacts is what a ledger record says of a request that does not
// depend on when it ran.
func ledgerFacts(r ledger.Record) string {
	cost := "unpriced"
	if r.CostUSD != nil {
		cost = fmt.Sprintf("%.9f", *r.CostUSD)
	}
	return fmt.Sprintf("model=%s upstream=%s stream=%v in=%d out=%d cached=%d status=%d error=%q estimated=%v cost=%s attempts=%d ttft=%v",
		r.Model, r.UpstreamModel, r.Stream, r.InputTokens, r.OutputTokens, r.CachedTokens, r.Status, r.ErrorType, r.Estimated, cost, r.Attempts, r.TTFTMS != nil)
}

// canonicalBody is a chat body as the upstream reads it, keys sorted and
// white space gone.
func canonicalBody(t *testing.T, body string) string {
	req, err := openaiwire.DecodeChatRequest([]byte(body))
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	b, _ := json.Marshal(req)
	return string(b)
}
