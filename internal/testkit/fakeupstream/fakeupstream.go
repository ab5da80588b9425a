// Package fakeupstream is a misbehaving provider for tests: it speaks
// OpenAI's chat-completions wire format (and Anthropic's Messages format,
// for assistant prefill) exactly, and fails in the way the requested model
// name says, so that a test picks a fault by naming a model. It is for
// testing failover and streams; internal/testkit/fakeopenai is the well-behaved
// fake that benchmarks use.
//
// A model name is a list of behaviours joined by "+", for example
// "cut-after-2" or "500-once+slow-first-token-50ms":
//
//	429-retry-after-N   429 rate_limit_exceeded with Retry-After: N (seconds)
//	429                 429 without Retry-After
//	429-once-retry-after-N, 500-once, reset-once
//	                    fail the first request of this model name, then answer
//	500, 503            always that status
//	reset               close the connection before any header (TCP RST)
//	no-answer           accept the request and never answer
//	hang-on-N           the Nth request of this model name is not answered
//	slow-first-token-D  stream: role chunk at once, first content after D
//	slow-headers-D      wait D before answering at all
//	cut-after-N         stream: N content chunks, then a reset
//	stall-after-N       stream: N content chunks, then silence
//	error-after-N       stream: N content chunks, then an error event
//	malformed-after-N   stream: an invalid-JSON event after N content chunks,
//	                    then the rest of the answer
//	no-done             stream: finish and usage but no [DONE]
//	usage-late-D        stream: the usage chunk D after finish_reason
//	context-length      400 context_length_exceeded
//	content-policy      400 content_policy_violation
//	rejects-prefill     400 for a request that continues an assistant message
//	flap-N              fail (503) N requests, answer N, fail N, ...
//	other-answer        answer with a different text than Reply
//
// Any other name answers normally. The answer is Reply (or a fixed
// sentence) split into words, one chunk each; a request that ends with an
// assistant message asking for its continuation (OpenAI-compatible
// "continue_final_message", or Anthropic's trailing assistant turn) gets
// the rest of Reply after that prefix.
package fakeupstream

import (
	"encoding/json"
	"fmt"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PromptTokens is the prompt_tokens (input_tokens) every answer reports.
const PromptTokens = 11

// Server is the fake. Its zero value is ready to use.
type Server struct {
	// Reply is the full answer; empty means DefaultReply.
	Reply string

	mu     sync.Mutex
	counts map[string]int
	log    []Seen
}

// DefaultReply is the answer of a Server with no Reply.
const DefaultReply = "The quick brown fox jumps over the lazy dog and runs far away."

// OtherReply is the answer of the other-answer behaviour.
const OtherReply = "A different answer altogether, which starts some other way."

// Seen is one request the fake received.
type Seen struct {
	Path  string
	Model string
	// Prefill is the assistant text the request asked to continue.
	Prefill string
	Stream  bool
	Time    time.Time
}

// Requests returns what the fake received, in order.
func (s *Server) Requests() []Seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Seen(nil), s.log...)
}

// Count returns how many requests named model.
func (s *Server) Count(model string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[model]
}

func (s *Server) reply() string {
	if s.Reply != "" {
		return s.Reply
	}
	return DefaultReply
}

// behaviour is a parsed model name.
type behaviour struct {
	status                         int
	retryAfter                     string
	reset, noAnswer                bool
	firstDelay, headerDelay, late  time.Duration
	cutAfter, stallAfter, errAfter int
	malformedAfter                 int
	noDone, rejectsPrefill, other  bool
	message, code                  string
}

func parse(model string, n int) behaviour {
	b := behaviour{cutAfter: -1, stallAfter: -1, errAfter: -1, malformedAfter: -1}
	for _, t := range strings.Split(model, "+") {
		switch {
		case t == "429":
			b.status = 429
		case strings.HasPrefix(t, "429-once-retry-after-"):
			if n == 1 {
				b.status, b.retryAfter = 429, strings.TrimPrefix(t, "429-once-retry-after-")
			}
		case strings.HasPrefix(t, "429-retry-after-"):
			b.status, b.retryAfter = 429, strings.TrimPrefix(t, "429-retry-after-")
		case t == "500-once":
			if n == 1 {
				b.status = 500
			}
		case t == "reset-once":
			b.reset = n == 1
		case t == "500", t == "503":
			b.status, _ = strconv.Atoi(t)
		case t == "reset":
			b.reset = true
		case t == "no-answer":
			b.noAnswer = true
		case strings.HasPrefix(t, "hang-on-"):
			k, _ := strconv.Atoi(strings.TrimPrefix(t, "hang-on-"))
			b.noAnswer = b.noAnswer || k == n
		case strings.HasPrefix(t, "slow-first-token-"):
			b.firstDelay, _ = time.ParseDuration(strings.TrimPrefix(t, "slow-first-token-"))
		case strings.HasPrefix(t, "slow-headers-"):
			b.headerDelay, _ = time.ParseDuration(strings.TrimPrefix(t, "slow-headers-"))
		case strings.HasPrefix(t, "usage-late-"):
			b.late, _ = time.ParseDuration(strings.TrimPrefix(t, "usage-late-"))
		case strings.HasPrefix(t, "cut-after-"):
			b.cutAfter, _ = strconv.Atoi(strings.TrimPrefix(t, "cut-after-"))
		case strings.HasPrefix(t, "stall-after-"):
			b.stallAfter, _ = strconv.Atoi(strings.TrimPrefix(t, "stall-after-"))
		case strings.HasPrefix(t, "error-after-"):
			b.errAfter, _ = strconv.Atoi(strings.TrimPrefix(t, "error-after-"))
		case strings.HasPrefix(t, "malformed-after-"):
			b.malformedAfter, _ = strconv.Atoi(strings.TrimPrefix(t, "malformed-after-"))
		case t == "no-done":
			b.noDone = true
		case t == "context-length":
			b.status, b.code = 400, "context_length_exceeded"
			b.message = "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. Please reduce the length of the messages."
		case t == "content-policy":
			b.status, b.code = 400, "content_policy_violation"
			b.message = "Your request was rejected as a result of our safety system."
		case t == "rejects-prefill":
			b.rejectsPrefill = true
		case t == "other-answer":
			b.other = true
		case strings.HasPrefix(t, "flap-"):
			k, _ := strconv.Atoi(strings.TrimPrefix(t, "flap-"))
			if k > 0 && ((n-1)/k)%2 == 0 {
				b.status = 503
			}
		}
	}
	return b
}

// request is the part of either wire format's request the fake reads.
type request struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Continue bool `json:"continue_final_message"`
}

// prefill returns the assistant text a request asks to continue.
func (r *request) prefill(anthropic bool) (string, bool) {
	if len(r.Messages) == 0 || (!anthropic && !r.Continue) {
		return "", false
	}
	last := r.Messages[len(r.Messages)-1]
	if last.Role != "assistant" {
		return "", false
	}
	var text string
	if json.Unmarshal(last.Content, &text) == nil {
		return text, true
	}
	var parts []struct{ Text string }
	json.Unmarshal(last.Content, &parts)
	for _, p := range parts {
		text += p.Text
	}
	return text, true
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	anthropic := strings.HasSuffix(r.URL.Path, "/messages")
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		s.fail(w, anthropic, 400, "", "We could not parse the JSON body of your request.", "")
		return
	}
	prefill, hasPrefill := req.prefill(anthropic)
	s.mu.Lock()
	if s.counts == nil {
		s.counts = map[string]int{}
	}
	s.counts[req.Model]++
	n := s.counts[req.Model]
	s.log = append(s.log, Seen{Path: r.URL.Path, Model: req.Model, Prefill: prefill, Stream: req.Stream, Time: time.Now()})
	s.mu.Unlock()

	b := parse(req.Model, n)
	if b.headerDelay > 0 && !wait(r, b.headerDelay) {
		return
	}
	switch {
	case b.noAnswer:
		<-r.Context().Done()
		return
	case b.reset:
		fakeopenai.Reset(w)
		return
	case b.status != 0:
		if b.retryAfter != "" {
			w.Header().Set("Retry-After", b.retryAfter)
		}
		s.fail(w, anthropic, b.status, b.code, b.message, b.retryAfter)
		return
	case hasPrefill && b.rejectsPrefill:
		s.fail(w, anthropic, 400, "", "Unrecognized request argument supplied: continue_final_message", "")
		return
	}
	answer := s.reply()
	if b.other {
		answer = OtherReply
	}
	if hasPrefill && strings.HasPrefix(answer, prefill) {
		answer = answer[len(prefill):]
	}
	words := strings.SplitAfter(answer, " ")
	if answer == "" {
		words = nil
	}
	switch {
	case anthropic && req.Stream:
		s.anthropicStream(w, r, req.Model, words, b)
	case anthropic:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"msg_fake01","type":"message","role":"assistant","model":%q,"content":[{"type":"text","text":%s}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":%d,"output_tokens":%d}}`,
			req.Model, strconv.Quote(answer), PromptTokens, len(words))
	case req.Stream:
		s.openaiStream(w, r, req.Model, words, b)
	default:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"chatcmpl-fake01","object":"chat.completion","created":1741569952,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":%s,"refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":%s,"system_fingerprint":"fp_fake"}`,
			req.Model, strconv.Quote(answer), usage(len(words)))
	}
}

func usage(out int) string {
	return fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`, PromptTokens, out, PromptTokens+out)
}

// wait waits d or until the client goes, and reports whether d passed.
func wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// fail answers with an error body in the request's wire format.
func (s *Server) fail(w http.ResponseWriter, anthropic bool, status int, code, msg, _ string) {
	if msg == "" {
		msg = http.StatusText(status)
	}
	if anthropic {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		typ := "invalid_request_error"
		switch {
		case status == 429:
			typ = "rate_limit_error"
		case status >= 500:
			typ = "api_error"
		}
		fmt.Fprintf(w, `{"type":"error","error":{"type":%q,"message":%s}}`, typ, strconv.Quote(msg))
		return
	}
	typ := "invalid_request_error"
	switch {
	case status == 429:
		typ, code = "requests", "rate_limit_exceeded"
	case status >= 500:
		typ = "server_error"
	}
	fakeopenai.WriteError(w, status, msg, typ, code)
}

// streamer writes one stream, applying the mid-stream faults.
type streamer struct {
	w http.ResponseWriter
	r *http.Request
	f http.Flusher
}

func (st *streamer) event(name, data string) bool {
	if name != "" {
		io.WriteString(st.w, "event: "+name+"\n")
	}
	_, err := io.WriteString(st.w, "data: "+data+"\n\n")
	st.f.Flush()
	return err == nil && st.r.Context().Err() == nil
}

// fault applies the fault due before content chunk i, and reports whether
// the stream goes on; malformed is the event that fault sends.
func (st *streamer) fault(b behaviour, i int, malformed func()) bool {
	switch i {
	case b.cutAfter:
		fakeopenai.Reset(st.w)
		return false
	case b.stallAfter:
		<-st.r.Context().Done()
		return false
	case b.malformedAfter:
		malformed()
	}
	if i == 0 && b.firstDelay > 0 && !wait(st.r, b.firstDelay) {
		return false
	}
	return true
}

func (s *Server) openaiStream(w http.ResponseWriter, r *http.Request, model string, words []string, b behaviour) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	st := &streamer{w: w, r: r, f: w.(http.Flusher)}
	head := fmt.Sprintf(`{"id":"chatcmpl-fake01","object":"chat.completion.chunk","created":1741569952,"model":%q,"system_fingerprint":"fp_fake","choices":`, model)
	st.event("", head+`[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}`)
	for i, word := range words {
		if !st.fault(b, i, func() { st.event("", head+`[{"index":0,"delta":{"content":"oops"`) }) {
			return
		}
		if i == b.errAfter {
			st.event("", `{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`)
			return
		}
		if !st.event("", head+`[{"index":0,"delta":{"content":`+strconv.Quote(word)+`},"logprobs":null,"finish_reason":null}]}`) {
			return
		}
	}
	st.event("", head+`[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`)
	if b.late > 0 && !wait(r, b.late) {
		return
	}
	st.event("", head+`[],"usage":`+usage(len(words))+`}`)
	if !b.noDone {
		st.event("", "[DONE]")
	}
}

func (s *Server) anthropicStream(w http.ResponseWriter, r *http.Request, model string, words []string, b behaviour) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	st := &streamer{w: w, r: r, f: w.(http.Flusher)}
	st.event("message_start", fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_fake01","type":"message","role":"assistant","content":[],"model":%q,"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":%d,"output_tokens":1}}}`, model, PromptTokens))
	st.event("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	st.event("ping", `{"type": "ping"}`)
	for i, word := range words {
		if !st.fault(b, i, func() {
			st.event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"oops"`)
		}) {
			return
		}
		if i == b.errAfter {
			st.event("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
			return
		}
		if !st.event("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`+strconv.Quote(word)+`}}`) {
			return
		}
	}
	st.event("content_block_stop", `{"type":"content_block_stop","index":0}`)
	if b.late > 0 && !wait(r, b.late) {
		return
	}
	st.event("message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}`, len(words)))
	st.event("message_stop", `{"type":"message_stop"}`)
}
