// Package fakeazure is a fake of Azure OpenAI Service for tests: chat
// completions at /openai/deployments/{deployment}/chat/completions with a
// required api-version, the key in api-key (or a bearer token), Azure's
// prompt_filter_results chunk first in streams, and its content-filter
// error for a prompt its filters flag. The chat answers themselves come
// from a fakeopenai.Server, as Azure answers in OpenAI's format.
package fakeazure

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// Flagged is the word that makes the content filter refuse a prompt.
const Flagged = "FLAG-ME"

// Request is what the fake received: the deployment, api-version and
// credential besides the body.
type Request struct {
	Deployment, APIVersion string
	APIKey, Bearer         string
}

// Server is the fake.
type Server struct {
	// Chat answers the chat requests.
	Chat *fakeopenai.Server
	// Key is the api-key (or bearer token) accepted.
	Key string

	mu       sync.Mutex
	requests []Request
}

// Requests returns what the fake received.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// contentFilterError is Azure's answer to a prompt its filters flag
// (learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter).
const contentFilterError = `{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":false,"detected":false},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":true,"severity":"high"}}}}}`

const promptFilterChunk = `data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]}` + "\n\n"

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, `{"error":{"code":"`+code+`","message":"`+msg+`"}}`)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/openai/deployments/")
	dep, op, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || op != "chat/completions" {
		writeError(w, 404, "404", "Resource not found")
		return
	}
	v := r.URL.Query().Get("api-version")
	if v == "" {
		writeError(w, 404, "404", "Resource not found")
		return
	}
	req := Request{Deployment: dep, APIVersion: v, APIKey: r.Header.Get("api-key"), Bearer: strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")}
	if req.APIKey != s.Key && req.Bearer != s.Key {
		writeError(w, 401, "401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.")
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	if bytes.Contains(body, []byte(Flagged)) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		io.WriteString(w, contentFilterError)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if bytes.Contains(body, []byte(`"stream":true`)) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, promptFilterChunk)
	}
	s.Chat.ServeHTTP(w, r)
}
