package modelserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/hosting/refmodel"
)

// The OpenAI surface speaks the chat completions API closely enough for
// the official SDKs. Token counts in usage are refmodel tokens: words, and
// the marks . , ; : ! ? one each. prompt_tokens counts the text of every
// message; generation starts from the last user message. The request's
// model is not checked (llama.cpp's server does the same); answers carry
// the served model id.

// chatRequest is the part of a chat completion request this server reads;
// other fields are accepted and ignored.
type chatRequest struct {
	Model               string         `json:"model"`
	Messages            []chatMessage  `json:"messages"`
	MaxTokens           *int           `json:"max_tokens"`
	MaxCompletionTokens *int           `json:"max_completion_tokens"`
	Temperature         *float64       `json:"temperature"`
	Seed                *int64         `json:"seed"`
	N                   *int           `json:"n"`
	Stream              bool           `json:"stream"`
	StreamOptions       *streamOptions `json:"stream_options"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type chatUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chatCompletion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint"`
	Choices           []completionChoice `json:"choices"`
	Usage             chatUsage          `json:"usage"`
}

type completionChoice struct {
	Index        int              `json:"index"`
	Message      assistantMessage `json:"message"`
	Logprobs     json.RawMessage  `json:"logprobs"`
	FinishReason string           `json:"finish_reason"`
}

type assistantMessage struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

type chatChunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []chunkChoice `json:"choices"`
	// Usage is absent unless stream_options.include_usage is set; then it
	// is null on every chunk but the last.
	Usage json.RawMessage `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int             `json:"index"`
	Delta        chunkDelta      `json:"delta"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type chunkDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

var jsonNull = json.RawMessage("null")

// openAIError is the error body of the OpenAI API.
type openAIError struct {
	Error openAIErrorBody `json:"error"`
}

type openAIErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// requestError is a 400 that names the request field at fault.
type requestError struct {
	param, msg string
}

func (e *requestError) Error() string { return e.msg }

func badParam(param, format string, args ...any) error {
	return &requestError{param: param, msg: fmt.Sprintf(format, args...)}
}

// writeOpenAIError answers status with an OpenAI error object.
func writeOpenAIError(w http.ResponseWriter, status int, msg, param string) {
	typ := "invalid_request_error"
	switch {
	case status == http.StatusUnauthorized:
		typ = "authentication_error"
	case status == http.StatusForbidden:
		typ = "permission_error"
	case status == http.StatusNotFound:
		typ = "not_found_error"
	case status == http.StatusTooManyRequests:
		typ = "rate_limit_error"
	case status >= 500:
		typ = "server_error"
	}
	body := openAIError{Error: openAIErrorBody{Message: msg, Type: typ}}
	if param != "" {
		body.Error.Param = &param
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// openAIFail is the failFunc of the OpenAI surface.
func openAIFail(w http.ResponseWriter, status int, msg string) {
	writeOpenAIError(w, status, msg, "")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// listModels answers GET /v1/models with the one served model.
func (s *server) listModels(w http.ResponseWriter, _ *http.Request) {
	l := s.state.Load()
	if l == nil {
		openAIFail(w, http.StatusServiceUnavailable, errNotReady.Error())
		return
	}
	writeJSON(w, struct {
		Object string        `json:"object"`
		Data   []modelObject `json:"data"`
	}{"list", []modelObject{s.modelObject(l)}})
}

// getModel answers GET /v1/models/{id}.
func (s *server) getModel(w http.ResponseWriter, r *http.Request) {
	l := s.state.Load()
	if l == nil {
		openAIFail(w, http.StatusServiceUnavailable, errNotReady.Error())
		return
	}
	if id := r.PathValue("id"); id != l.name {
		writeOpenAIError(w, http.StatusNotFound, fmt.Sprintf("model %q does not exist; this server serves %q", id, l.name), "model")
		return
	}
	writeJSON(w, s.modelObject(l))
}

func (s *server) modelObject(l *loaded) modelObject {
	return modelObject{ID: l.name, Object: "model", Created: s.started.Unix(), OwnedBy: "junction"}
}

// chatCompletions answers POST /v1/chat/completions, streamed or not.
func (s *server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	defer s.track()()
	bp := getBuf()
	body, err := readBody(w, r, (*bp)[:0])
	defer func() { putBuf(bp, body) }()
	l := s.admit(w, r, err, openAIFail)
	if l == nil {
		return
	}
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		openAIFail(w, http.StatusBadRequest, "the body is not a valid chat completion request: "+err.Error())
		return
	}
	prompt, promptTokens, opts, err := parseChat(&req, l.model)
	if err != nil {
		var re *requestError
		errors.As(err, &re)
		writeOpenAIError(w, http.StatusBadRequest, re.msg, re.param)
		return
	}
	id := fmt.Sprintf("chatcmpl-%016x%08x", rand.Uint64(), rand.Uint32())
	head := chatChunk{ID: id, Created: time.Now().Unix(), Model: l.name, SystemFingerprint: fingerprint(l)}
	if req.Stream {
		includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
		streamChat(w, r, l, head, prompt, promptTokens, opts, includeUsage)
		return
	}
	g := l.model.Generate(prompt, opts)
	writeJSON(w, chatCompletion{
		ID: head.ID, Object: "chat.completion", Created: head.Created, Model: head.Model, SystemFingerprint: head.SystemFingerprint,
		Choices: []completionChoice{{
			Message:      assistantMessage{Role: "assistant", Content: g.Text},
			Logprobs:     jsonNull,
			FinishReason: g.FinishReason,
		}},
		Usage: chatUsage{PromptTokens: promptTokens, CompletionTokens: g.Tokens, TotalTokens: promptTokens + g.Tokens},
	})
}

// fingerprint identifies the artifact behind the answers.
func fingerprint(l *loaded) string {
	return "refmodel-" + l.model.Name() + "-" + l.model.Version()
}

// parseChat validates a chat request and returns the prompt (the last
// user message's text), the prompt token count over all messages and the
// generation options. Its errors are *requestError.
func parseChat(req *chatRequest, m *refmodel.Model) (prompt string, promptTokens int, o refmodel.GenerateOptions, err error) {
	if len(req.Messages) == 0 {
		return "", 0, o, badParam("messages", "messages is empty: send at least one user message")
	}
	user := -1
	for i, msg := range req.Messages {
		switch msg.Role {
		case "system", "developer", "user", "assistant", "tool", "function":
		default:
			return "", 0, o, badParam(fmt.Sprintf("messages[%d].role", i), "messages[%d].role %q: want system, developer, user, assistant or tool", i, msg.Role)
		}
		text, err := messageText(msg.Content, i)
		if err != nil {
			return "", 0, o, err
		}
		promptTokens += m.CountTokens(text)
		if msg.Role == "user" {
			user, prompt = i, text
		}
	}
	if user < 0 {
		return "", 0, o, badParam("messages", "messages holds no user message to answer")
	}
	if req.N != nil && *req.N != 1 {
		return "", 0, o, badParam("n", "n=%d: this server returns exactly one choice", *req.N)
	}
	limit, param := req.MaxTokens, "max_tokens"
	if req.MaxCompletionTokens != nil {
		limit, param = req.MaxCompletionTokens, "max_completion_tokens"
	}
	if limit != nil {
		if *limit < 1 {
			return "", 0, o, badParam(param, "%s=%d: want 1 or more", param, *limit)
		}
		o.MaxTokens = min(*limit, maxNewTokens)
	}
	o.Temperature = 1 // the OpenAI default
	if t := req.Temperature; t != nil {
		if !(*t >= 0 && *t <= 2) {
			return "", 0, o, badParam("temperature", "temperature=%v: want 0 to 2", *t)
		}
		o.Temperature = *t
	}
	if req.Seed != nil {
		o.Seed = uint64(*req.Seed)
	} else {
		o.Seed = rand.Uint64()
	}
	return prompt, promptTokens, o, nil
}

// messageText returns the text of a message's content: a string, null, or
// an array of text parts joined by newlines.
func messageText(raw json.RawMessage, i int) (string, error) {
	raw = bytes.TrimSpace(raw)
	param := fmt.Sprintf("messages[%d].content", i)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", badParam(param, "%s: %v", param, err)
		}
		return s, nil
	case raw[0] == '[':
		var parts []contentPart
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", badParam(param, "%s: %v", param, err)
		}
		texts := make([]string, 0, len(parts))
		for j, p := range parts {
			if p.Type != "text" {
				return "", badParam(fmt.Sprintf("%s[%d]", param, j), "%s[%d] has type %q: this model reads only text parts", param, j, p.Type)
			}
			texts = append(texts, p.Text)
		}
		return strings.Join(texts, "\n"), nil
	}
	return "", badParam(param, "%s must be a string or an array of content parts", param)
}

// streamChat answers with server-sent events: a chunk with the assistant
// role, one chunk per generated piece, a chunk with the finish reason,
// the usage chunk when asked for, then [DONE]. A client that goes away
// stops the generation.
func streamChat(w http.ResponseWriter, r *http.Request, l *loaded, head chatChunk, prompt string, promptTokens int, o refmodel.GenerateOptions, includeUsage bool) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	head.Object = "chat.completion.chunk"
	if includeUsage {
		head.Usage = jsonNull
	}
	var frame []byte
	write := func(data []byte) bool {
		frame = append(append(append(frame[:0], "data: "...), data...), "\n\n"...)
		if _, err := w.Write(frame); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return r.Context().Err() == nil
	}
	send := func(delta chunkDelta, finish *string) bool {
		c := head
		c.Choices = []chunkChoice{{Delta: delta, Logprobs: jsonNull, FinishReason: finish}}
		data, _ := json.Marshal(c)
		return write(data)
	}
	empty := ""
	if !send(chunkDelta{Role: "assistant", Content: &empty}, nil) {
		return
	}
	g := l.model.GenerateFunc(prompt, o, func(piece string) bool {
		return send(chunkDelta{Content: &piece}, nil)
	})
	if g.FinishReason == "" {
		return // the client went away
	}
	if !send(chunkDelta{}, &g.FinishReason) {
		return
	}
	if includeUsage {
		c := head
		c.Choices = []chunkChoice{}
		c.Usage, _ = json.Marshal(chatUsage{PromptTokens: promptTokens, CompletionTokens: g.Tokens, TotalTokens: promptTokens + g.Tokens})
		data, _ := json.Marshal(c)
		if !write(data) {
			return
		}
	}
	write([]byte("[DONE]"))
}
