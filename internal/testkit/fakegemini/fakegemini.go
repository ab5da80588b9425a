// Package fakegemini is a fake of Google's Gemini API for tests: POST
// /v1beta/models/{model}:generateContent and
// :streamGenerateContent?alt=sse, with the key in x-goog-api-key, answering
// in the documented wire format — candidates with content parts,
// finishReason, usageMetadata, promptFeedback for a blocked prompt, and
// Google's error body.
package fakegemini

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// Text is the model's answer.
const Text = "Hello from the fake Gemini. Junction forwarded this."

// Args is the arguments of the function call the model makes when it is
// given tools.
const Args = `{"city":"Paris","unit":"celsius"}`

// Prompts containing these words are blocked: BlockPrompt as a prompt
// (promptFeedback, no candidates), BlockAnswer as an answer (finishReason
// SAFETY).
const (
	BlockPrompt = "BLOCK-PROMPT"
	BlockAnswer = "BLOCK-ANSWER"
)

// Request is what the fake received.
type Request struct {
	Model, Method string
	Key           string
	Body          map[string]any
	Raw           []byte
}

// Server is the fake; Key is the API key it accepts.
type Server struct {
	Key string
	// Prompt and Output are the usage reported.
	Prompt, Output int

	mu       sync.Mutex
	requests []Request
}

// Requests returns what the fake received.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func writeError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":{"code":%d,"message":%q,"status":%q}}`, code, msg, status)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1beta/models/")
	model, method, ok2 := strings.Cut(rest, ":")
	if r.Method != http.MethodPost || !ok || !ok2 || (method != "generateContent" && method != "streamGenerateContent") {
		writeError(w, 404, "NOT_FOUND", "Method not found.")
		return
	}
	if r.Header.Get("x-goog-api-key") != s.Key {
		writeError(w, 400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
		return
	}
	raw, _ := io.ReadAll(r.Body)
	req := Request{Model: model, Method: method, Key: r.Header.Get("x-goog-api-key"), Raw: raw}
	if err := json.Unmarshal(raw, &req.Body); err != nil {
		writeError(w, 400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
		return
	}
	if _, ok := req.Body["contents"].([]any); !ok {
		writeError(w, 400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified")
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	tools := req.Body["tools"] != nil
	usage := fmt.Sprintf(`{"promptTokenCount":%d,"candidatesTokenCount":%d,"totalTokenCount":%d}`, s.Prompt, s.Output, s.Prompt+s.Output)
	tail := `,"modelVersion":"` + model + `","responseId":"fake-gemini-1"}`
	var chunks []string
	switch {
	case strings.Contains(string(raw), BlockPrompt):
		chunks = []string{`{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH"}]},"usageMetadata":` + usage + tail}
	case strings.Contains(string(raw), BlockAnswer):
		chunks = []string{`{"candidates":[{"content":{"role":"model","parts":[]},"finishReason":"SAFETY","index":0,"safetyRatings":[{"category":"HARM_CATEGORY_HARASSMENT","probability":"HIGH","blocked":true}]}],"usageMetadata":` + usage + tail}
	case tools:
		chunks = []string{`{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"get_weather","args":` + Args + `}}]},"finishReason":"STOP","index":0}],"usageMetadata":` + usage + tail}
	default:
		words := strings.SplitAfter(Text, " ")
		for i, wd := range words {
			finish, u := "", ""
			if i == len(words)-1 {
				finish, u = `,"finishReason":"STOP"`, `,"usageMetadata":`+usage
			}
			b, _ := json.Marshal(wd)
			chunks = append(chunks, `{"candidates":[{"content":{"role":"model","parts":[{"text":`+string(b)+`}]}`+finish+`,"index":0}]`+u+tail)
		}
	}
	if method == "generateContent" {
		w.Header().Set("Content-Type", "application/json")
		if len(chunks) > 1 {
			b, _ := json.Marshal(Text)
			chunks = []string{`{"candidates":[{"content":{"role":"model","parts":[{"text":` + string(b) + `}]},"finishReason":"STOP","index":0}],"usageMetadata":` + usage + tail}
		}
		io.WriteString(w, chunks[0])
		return
	}
	if r.URL.Query().Get("alt") != "sse" {
		writeError(w, 400, "INVALID_ARGUMENT", "the fake streams only with alt=sse")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for _, c := range chunks {
		io.WriteString(w, "data: "+c+"\r\n\r\n")
		w.(http.Flusher).Flush()
	}
}
