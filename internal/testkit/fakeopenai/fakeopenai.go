// Package fakeopenai is a stand-in for an OpenAI-compatible upstream, used
// by tests and by the benchmark harness. It speaks the chat-completions
// and embeddings wire format exactly (JSON bodies, SSE chunks ending in
// "data: [DONE]", the usage chunk, OpenAI's error body), answers at once,
// and can be told to fail in the ways real upstreams fail.
package fakeopenai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault describes how to fail one request.
type Fault struct {
	// Status, when set, answers with this status and an OpenAI error body.
	Status     int
	Message    string
	RetryAfter string
	// Delay waits before answering (or until the client goes away).
	Delay time.Duration
	// Reset closes the connection without answering.
	Reset bool
	// CutAfter, for streams, closes the connection after this many
	// content chunks, with no finish_reason and no [DONE].
	CutAfter int
	// ErrorAfter, for streams, sends an in-stream error object after this
	// many content chunks.
	ErrorAfter int
	// Garbage answers 200 with a body that is not JSON.
	Garbage bool
	// FinishReason, when set, replaces a plain answer's finish_reason
	// (e.g. "content_filter" for a refusal).
	FinishReason string
}

// Request is what the fake received.
type Request struct {
	Path   string
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

// Server is the fake. Its zero value answers every chat request with
// Reply split into words, one chunk each when streamed.
type Server struct {
	// Reply is the assistant's text; empty means a fixed sentence.
	Reply string
	// ReplyFor, when set, chooses the text by the requested model.
	ReplyFor func(model string) string
	// PromptTokens, CompletionTokens and CachedTokens are reported usage.
	PromptTokens, CompletionTokens, CachedTokens int
	// Fault, when set, is asked for each request and may fail it.
	Fault func(r *Request) Fault
	// Embedding, when set, computes each input's embedding; otherwise
	// every input gets the same fixed vector.
	Embedding func(input string) []float32
	// Record keeps received requests for Requests; off for benchmarks.
	Record bool

	// Arrived, when set, receives each request's path as it arrives, for
	// tests that wait for a request to reach the upstream.
	Arrived chan string

	// Stamp, when set, appends the wall-clock time at which each streamed
	// content chunk is sent to that chunk's text, so a client can measure
	// how long the chunk took to reach it, directly or through a gateway
	// (see SentAt). Off by default: the reply text is then exact.
	Stamp bool

	mu       sync.Mutex
	requests []Request
}

// Requests returns the recorded requests.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) reply(model string) string {
	if s.ReplyFor != nil {
		return s.ReplyFor(model)
	}
	if s.Reply != "" {
		return s.Reply
	}
	return "Hello from the fake upstream. Junction forwarded this."
}

func (s *Server) usage() string {
	p, c := s.PromptTokens, s.CompletionTokens
	if p == 0 && c == 0 {
		p, c = 12, 9
	}
	return fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":%d,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`,
		p, c, p+c, s.CachedTokens)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	req := &Request{Path: r.URL.Path, Header: r.Header.Clone(), Raw: raw}
	if err := json.Unmarshal(raw, &req.Body); err != nil {
		WriteError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.", "invalid_request_error", "")
		return
	}
	if s.Record {
		s.mu.Lock()
		s.requests = append(s.requests, *req)
		s.mu.Unlock()
	}
	if s.Arrived != nil {
		s.Arrived <- r.URL.Path
	}
	var f Fault
	if s.Fault != nil {
		f = s.Fault(req)
	}
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if f.Reset {
		Reset(w)
		return
	}
	if f.Status != 0 {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		msg := f.Message
		if msg == "" {
			msg = http.StatusText(f.Status)
		}
		typ := "server_error"
		if f.Status == http.StatusTooManyRequests {
			typ = "rate_limit_exceeded"
		}
		WriteError(w, f.Status, msg, typ, typ)
		return
	}
	if f.Garbage {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("<html>502 proxy error</html>"))
		return
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/chat/completions"):
		model, _ := req.Body["model"].(string)
		_, hasTools := req.Body["tools"]
		if stream, _ := req.Body["stream"].(bool); stream {
			s.stream(w, r, model, hasTools, f)
		} else {
			s.complete(w, model, hasTools, f)
		}
	case strings.HasSuffix(r.URL.Path, "/embeddings"):
		s.embed(w, req)
	default:
		WriteError(w, http.StatusNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")", "invalid_request_error", "")
	}
}

// WriteError answers with OpenAI's error body: {"error":{"message",
// "type","param","code"}}, code null when empty.
func WriteError(w http.ResponseWriter, status int, msg, typ, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	c := "null"
	if code != "" {
		c = strconv.Quote(code)
	}
	fmt.Fprintf(w, `{"error":{"message":%s,"type":%q,"param":null,"code":%s}}`, strconv.Quote(msg), typ, c)
}

// Reset closes the client's connection with a TCP RST, as an upstream that
// fails before sending headers does.
func Reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0) // RST instead of FIN
	}
	conn.Close()
}

const toolArgs = `{"city":"Paris","unit":"celsius"}`

func (s *Server) complete(w http.ResponseWriter, model string, tools bool, f Fault) {
	msg := `{"role":"assistant","content":` + strconv.Quote(s.reply(model)) + `,"refusal":null,"annotations":[]}`
	finish := "stop"
	if tools {
		msg = `{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc123","type":"function","function":{"name":"get_weather","arguments":` + strconv.Quote(toolArgs) + `}}],"refusal":null,"annotations":[]}`
		finish = "tool_calls"
	}
	if f.FinishReason != "" {
		finish = f.FinishReason
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"chatcmpl-fake123","object":"chat.completion","created":1741569952,"model":%q,"choices":[{"index":0,"message":%s,"logprobs":null,"finish_reason":%q}],"usage":%s,"service_tier":"default","system_fingerprint":"fp_fake"}`,
		model, msg, finish, s.usage())
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, model string, tools bool, f Fault) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	flusher := w.(http.Flusher)
	head := fmt.Sprintf(`{"id":"chatcmpl-fake123","object":"chat.completion.chunk","created":1741569952,"model":%q,"service_tier":"default","system_fingerprint":"fp_fake","choices":`, model)
	send := func(choices string) bool {
		_, err := io.WriteString(w, "data: "+head+choices+"}\n\n")
		flusher.Flush()
		return err == nil && r.Context().Err() == nil
	}
	send(`[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]`)
	var pieces []string
	finish := "stop"
	if tools {
		finish = "tool_calls"
		send(`[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_abc123","type":"function","function":{"name":"get_weather","arguments":""}}]},"logprobs":null,"finish_reason":null}]`)
		for i := 0; i < len(toolArgs); i += 8 {
			pieces = append(pieces, toolArgs[i:min(i+8, len(toolArgs))])
		}
	} else {
		words := strings.SplitAfter(s.reply(model), " ")
		pieces = words
	}
	for i, p := range pieces {
		if f.CutAfter > 0 && i == f.CutAfter {
			Reset(w)
			return
		}
		if f.ErrorAfter > 0 && i == f.ErrorAfter {
			io.WriteString(w, `data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`+"\n\n")
			flusher.Flush()
			return
		}
		var ok bool
		if tools {
			ok = send(`[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":` + strconv.Quote(p) + `}}]},"logprobs":null,"finish_reason":null}]`)
		} else {
			if s.Stamp {
				// Stamped last, just before the write, so the stamp is the
				// send time.
				p += stampMarker + strconv.FormatInt(time.Now().UnixNano(), 10) + stampEnd
			}
			ok = send(`[{"index":0,"delta":{"content":` + strconv.Quote(p) + `},"logprobs":null,"finish_reason":null}]`)
		}
		if !ok {
			return
		}
	}
	send(`[{"index":0,"delta":{},"logprobs":null,"finish_reason":"` + finish + `"}]`)
	io.WriteString(w, "data: "+head+`[],"usage":`+s.usage()+"}\n\n")
	io.WriteString(w, "data: [DONE]\n\n")
	flusher.Flush()
}

// The stamp is plain ASCII that no JSON encoder escapes, so it survives a
// gateway that decodes and re-encodes the chunk.
const (
	stampMarker = "@sent="
	stampEnd    = ";"
)

// EachSentAt calls fn with every send-time stamp in chunk, in order, and
// returns how many there were: a gateway that holds text back (a
// guardrail checking a stream) may forward several stamped words in one
// chunk.
func EachSentAt(chunk []byte, fn func(unixNano int64)) int {
	n := 0
	for {
		t, ok := SentAt(chunk)
		if !ok {
			return n
		}
		fn(t)
		n++
		chunk = chunk[bytes.Index(chunk, []byte(stampMarker))+len(stampMarker):]
	}
}

// SentAt finds the send-time stamp a Server with Stamp set put into a
// streamed chunk, in any encoding of the chunk (the raw SSE line, its JSON
// data, or the decoded content), and returns it as UnixNano.
func SentAt(chunk []byte) (unixNano int64, ok bool) {
	i := bytes.Index(chunk, []byte(stampMarker))
	if i < 0 {
		return 0, false
	}
	var n int64
	digits := 0
	for _, c := range chunk[i+len(stampMarker):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
		digits++
	}
	return n, digits > 0
}

func (s *Server) embed(w http.ResponseWriter, req *Request) {
	n := 1
	if arr, ok := req.Body["input"].([]any); ok {
		n = len(arr)
	}
	model, _ := req.Body["model"].(string)
	var data strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			data.WriteByte(',')
		}
		if s.Embedding == nil {
			fmt.Fprintf(&data, `{"object":"embedding","index":%d,"embedding":[0.0023064255,-0.009327292,0.015797347,%d.5]}`, i, i)
			continue
		}
		input, _ := req.Body["input"].(string)
		if arr, ok := req.Body["input"].([]any); ok {
			input, _ = arr[i].(string)
		}
		v, _ := json.Marshal(s.Embedding(input))
		fmt.Fprintf(&data, `{"object":"embedding","index":%d,"embedding":%s}`, i, v)
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"object":"list","data":[%s],"model":%q,"usage":{"prompt_tokens":%d,"total_tokens":%d}}`, data.String(), model, 4*n, 4*n)
}
