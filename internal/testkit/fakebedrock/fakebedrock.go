// Package fakebedrock is a stand-in for the Amazon Bedrock runtime, used
// by the Bedrock adapter's tests and by end-to-end tests of Junction in
// front of Bedrock. It speaks the wire format the AWS SDK expects:
// rest-json bodies for Converse, application/vnd.amazon.eventstream frames
// (encoded with the SDK's own event-stream encoder) for ConverseStream,
// and AWS JSON error documents with X-Amzn-ErrorType.
//
// By default it answers as a small model would: text, or a toolUse of the
// first tool when the request offers tools and carries no tool result yet.
// A test can replace the answer (Reply) or make it fail (Fault). It does
// not check signatures: it only records what it received.
package fakebedrock

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// DefaultRequestID is sent as x-amzn-RequestId unless Server.RequestID is
// set.
const DefaultRequestID = "7a4e1c2b-91d0-4c3e-a0f5-3b2d9e8c6f10"

// DefaultText is the model's answer unless Server.Text is set.
const DefaultText = "Hello from the fake Bedrock. Junction forwarded this."

// ToolInput is the input of the toolUse the model answers with.
const ToolInput = `{"city":"Paris","unit":"celsius"}`

// Request is a request as the fake received it.
type Request struct {
	Method, Path string
	// Model is the model id from the path, unescaped.
	Model string
	// Auth is the Authorization header.
	Auth   string
	Header http.Header
	Body   []byte
}

// Usage is the token usage the model reports.
type Usage struct {
	InputTokens, OutputTokens, CacheReadInputTokens, CacheWriteInputTokens int
}

// Fault describes how to fail one request.
type Fault struct {
	// Status, when set, answers with this status and an AWS error whose
	// type is Code (e.g. ThrottlingException) and message Message.
	Status     int
	Code       string
	Message    string
	RetryAfter string
	// Exception, for streams, sends an exception frame of this type (e.g.
	// modelStreamErrorException) after the first content delta, and ends
	// the stream there.
	Exception string
}

// Server is the fake. Its zero value answers as the model described in
// the package comment.
type Server struct {
	// Reply, when set, answers every request after it is recorded.
	Reply http.HandlerFunc
	// Fault, when set, is asked for each request and may fail it.
	Fault func(r *Request) Fault
	// Arrived, when set, receives each request as it arrives.
	Arrived chan<- Request
	// Text is the model's answer; empty means DefaultText.
	Text string
	// Usage is the reported usage; zero means 12 input and 9 output
	// tokens.
	Usage Usage
	// RequestID is sent as x-amzn-RequestId; empty means DefaultRequestID.
	RequestID string

	once sync.Once
	mux  *http.ServeMux
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.once.Do(func() {
		s.mux = http.NewServeMux()
		s.mux.HandleFunc("POST /model/{model}/converse", func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, false) })
		s.mux.HandleFunc("POST /model/{model}/converse-stream", func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, true) })
		s.mux.HandleFunc("/", AWSError(http.StatusNotFound, "UnknownOperationException", "Unknown operation", nil))
	})
	s.mux.ServeHTTP(w, r)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, stream bool) {
	body, _ := io.ReadAll(r.Body)
	req := &Request{Method: r.Method, Path: r.URL.Path, Model: r.PathValue("model"), Auth: r.Header.Get("Authorization"),
		Header: r.Header.Clone(), Body: body}
	if s.Arrived != nil {
		s.Arrived <- *req
	}
	id := s.RequestID
	if id == "" {
		id = DefaultRequestID
	}
	w.Header().Set("X-Amzn-Requestid", id)
	if s.Reply != nil {
		s.Reply(w, r)
		return
	}
	var f Fault
	if s.Fault != nil {
		f = s.Fault(req)
	}
	if f.Status != 0 {
		var h map[string]string
		if f.RetryAfter != "" {
			h = map[string]string{"Retry-After": f.RetryAfter}
		}
		AWSError(f.Status, f.Code, f.Message, h)(w, r)
		return
	}
	var in struct {
		Messages []struct {
			Content []map[string]json.RawMessage `json:"content"`
		} `json:"messages"`
		ToolConfig *struct {
			Tools []struct {
				ToolSpec *struct {
					Name string `json:"name"`
				} `json:"toolSpec"`
			} `json:"tools"`
		} `json:"toolConfig"`
	}
	if err := json.Unmarshal(body, &in); err != nil || len(in.Messages) == 0 {
		AWSError(http.StatusBadRequest, "ValidationException", "Malformed input request, please reformat your input and try again.", nil)(w, r)
		return
	}
	tool := ""
	if tc := in.ToolConfig; tc != nil && len(tc.Tools) > 0 && tc.Tools[0].ToolSpec != nil {
		tool = tc.Tools[0].ToolSpec.Name
		for _, b := range in.Messages[len(in.Messages)-1].Content {
			if _, ok := b["toolResult"]; ok {
				tool = "" // the tool has answered; now the model speaks
			}
		}
	}
	if stream {
		StreamReply(s.frames(tool, f.Exception), nil)(w, r)
		return
	}
	JSONReply(s.response(tool))(w, r)
}

func (s *Server) text() string {
	if s.Text != "" {
		return s.Text
	}
	return DefaultText
}

func (s *Server) usage() json.RawMessage {
	u := s.Usage
	if u == (Usage{}) {
		u = Usage{InputTokens: 12, OutputTokens: 9}
	}
	m := map[string]int{"inputTokens": u.InputTokens, "outputTokens": u.OutputTokens,
		"totalTokens": u.InputTokens + u.OutputTokens + u.CacheReadInputTokens + u.CacheWriteInputTokens}
	if u.CacheReadInputTokens > 0 || u.CacheWriteInputTokens > 0 {
		m["cacheReadInputTokens"], m["cacheWriteInputTokens"] = u.CacheReadInputTokens, u.CacheWriteInputTokens
	}
	b, _ := json.Marshal(m)
	return b
}

const toolUseID = "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"

// response is a Converse answer: text, or a call of tool.
func (s *Server) response(tool string) []byte {
	content, stop := fmt.Sprintf(`[{"text":%s}]`, quote(s.text())), "end_turn"
	if tool != "" {
		content = fmt.Sprintf(`[{"toolUse":{"toolUseId":%q,"name":%s,"input":%s}}]`, toolUseID, quote(tool), ToolInput)
		stop = "tool_use"
	}
	return fmt.Appendf(nil, `{"output":{"message":{"role":"assistant","content":%s}},"stopReason":%q,"usage":%s,"metrics":{"latencyMs":312}}`,
		content, stop, s.usage())
}

// pad is the "p" member Bedrock adds to stream payloads to hide their
// length; decoders must ignore it.
const pad = `,"p":"abcdefghijklmnopqrstuvwxyzABCDEFGH"`

// frames is a ConverseStream answer, as Bedrock frames it: messageStart,
// the block's deltas one word (or eight input bytes) at a time,
// contentBlockStop, messageStop, then metadata. With exception set, the
// stream ends in that exception after the first delta.
func (s *Server) frames(tool, exception string) []Frame {
	ev := func(name, payload string) Frame { return Frame{Event: name, Payload: json.RawMessage(payload)} }
	fs := []Frame{ev("messageStart", `{"role":"assistant"`+pad+`}`)}
	stop := "end_turn"
	var deltas []string
	if tool != "" {
		stop = "tool_use"
		fs = append(fs, ev("contentBlockStart", fmt.Sprintf(`{"contentBlockIndex":0,"start":{"toolUse":{"toolUseId":%q,"name":%s}}%s}`, toolUseID, quote(tool), pad)))
		for i := 0; i < len(ToolInput); i += 8 {
			deltas = append(deltas, fmt.Sprintf(`{"toolUse":{"input":%s}}`, quote(ToolInput[i:min(i+8, len(ToolInput))])))
		}
	} else {
		for _, word := range strings.SplitAfter(s.text(), " ") {
			deltas = append(deltas, fmt.Sprintf(`{"text":%s}`, quote(word)))
		}
	}
	for i, d := range deltas {
		fs = append(fs, ev("contentBlockDelta", fmt.Sprintf(`{"contentBlockIndex":0,"delta":%s%s}`, d, pad)))
		if exception != "" && i == 0 {
			return append(fs, Frame{Exception: exception, Payload: json.RawMessage(`{"message":"The model failed while generating the response."}`)})
		}
	}
	return append(fs,
		ev("contentBlockStop", `{"contentBlockIndex":0`+pad+`}`),
		ev("messageStop", `{"stopReason":"`+stop+`"`+pad+`}`),
		ev("metadata", `{"usage":`+string(s.usage())+`,"metrics":{"latencyMs":312}`+pad+`}`),
	)
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// JSONReply answers with a Converse response body.
func JSONReply(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}
}

// AWSError answers with an AWS JSON error: the type in X-Amzn-ErrorType
// (with the service suffix Bedrock adds) and {"message": ...} in the body,
// as Bedrock does. header adds headers.
func AWSError(status int, errType, message string, header map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		if errType != "" {
			w.Header().Set("X-Amzn-Errortype", errType+":http://internal.amazon.com/coral/com.amazon.bedrock/")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		b, _ := json.Marshal(map[string]string{"message": message})
		w.Write(b)
	}
}

// Frame is one event-stream message: an event named by its
// ConverseStreamOutput member, or a modelled exception.
type Frame struct {
	Event     string          `json:"event,omitempty"`
	Exception string          `json:"exception,omitempty"`
	Payload   json.RawMessage `json:"payload"`
}

// Encode writes f in the AWS event-stream binary framing with the SDK's
// own encoder.
func (f Frame) Encode(w io.Writer) error {
	var msg eventstream.Message
	if f.Exception != "" {
		msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
		msg.Headers.Set(":exception-type", eventstream.StringValue(f.Exception))
	} else {
		msg.Headers.Set(":message-type", eventstream.StringValue("event"))
		msg.Headers.Set(":event-type", eventstream.StringValue(f.Event))
	}
	msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
	msg.Payload = f.Payload
	return eventstream.NewEncoder().Encode(w, msg)
}

// StreamReply answers ConverseStream with fs, flushing after each frame.
// then, if set, runs after the last frame, with the response still open.
func StreamReply(fs []Frame, then func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		w.WriteHeader(http.StatusOK)
		for _, f := range fs {
			if err := f.Encode(w); err != nil {
				return // the client is gone
			}
			w.(http.Flusher).Flush()
		}
		if then != nil {
			then(w, r)
		}
	}
}

// CutMidFrame writes the first half of f and drops the connection.
func CutMidFrame(f Frame) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		if err := f.Encode(&buf); err != nil {
			panic(err)
		}
		w.Write(buf.Bytes()[:buf.Len()/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
}
