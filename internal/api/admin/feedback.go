package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/promptroute"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Body limits of the feedback routes: one prompt (at most
// promptroute.MaxPromptBytes, which JSON escaping may double), and an
// import file.
const (
	feedbackBodyLimit = 4 * promptroute.MaxPromptBytes
	importBodyLimit   = 32 << 20
	maxLineErrors     = 100
)

// RegisterFeedback adds the routes that label prompts for the prompt
// router's nearest-neighbour scorer, each wrapped by auth (admin keys
// only):
//
//	POST /api/v1/feedback          {"prompt": "...", "model": "...", "good": true}
//	POST /api/v1/feedback/import   JSON Lines of the same objects, all or none
//	GET  /api/v1/feedback          counts of the stored labels by model
//
// model is the name the router knows the model by.
func (h *Handler) RegisterFeedback(mux *http.ServeMux, auth func(http.Handler) http.Handler, fs *promptroute.FeedbackStore) {
	f := feedbackAPI{fs: fs}
	mux.Handle("POST /api/v1/feedback", auth(http.HandlerFunc(f.create)))
	mux.Handle("POST /api/v1/feedback/import", auth(http.HandlerFunc(f.importLines)))
	mux.Handle("GET /api/v1/feedback", auth(http.HandlerFunc(f.stats)))
}

type feedbackAPI struct{ fs *promptroute.FeedbackStore }

// FeedbackRequest is the body of POST /api/v1/feedback and one line of
// an import.
type FeedbackRequest struct {
	Prompt string `json:"prompt"`
	Model  string `json:"model"`
	// Good is required: whether the model answered the prompt well enough.
	Good *bool `json:"good"`
}

// FeedbackResponse is the answer of both POST routes.
type FeedbackResponse struct {
	// Stored is how many labels this call added.
	Stored int `json:"stored"`
	// Examples is how many the store now holds.
	Examples int `json:"examples"`
}

// LineError is one bad line of an import.
type LineError struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}

// parseFeedback decodes and validates one labelled prompt, naming the
// field at fault.
func parseFeedback(data []byte) (promptroute.Feedback, string, error) {
	var req FeedbackRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return promptroute.Feedback{}, "", fmt.Errorf("not a JSON feedback object: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return promptroute.Feedback{}, "", errors.New("more than one JSON value; send one object (use /api/v1/feedback/import for many)")
	}
	if req.Good == nil {
		return promptroute.Feedback{}, "good", errors.New("good: required (true or false)")
	}
	f := promptroute.Feedback{Prompt: req.Prompt, Model: strings.TrimSpace(req.Model), Good: *req.Good}
	if err := f.Validate(); err != nil {
		param, _, _ := strings.Cut(err.Error(), ":")
		return f, param, err
	}
	return f, "", nil
}

func (f feedbackAPI) create(w http.ResponseWriter, r *http.Request) {
	body, e := api.ReadBody(w, r, feedbackBodyLimit)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	fb, param, err := parseFeedback(body)
	if err != nil {
		WriteError(w, r, llm.BadRequest(param, "%v", err))
		return
	}
	n, err := f.fs.Add(r.Context(), fb)
	if err != nil {
		WriteError(w, r, addError(err))
		return
	}
	writeJSON(w, http.StatusCreated, FeedbackResponse{Stored: 1, Examples: n})
}

func (f feedbackAPI) importLines(w http.ResponseWriter, r *http.Request) {
	body, e := api.ReadBody(w, r, importBodyLimit)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	var items []promptroute.Feedback
	var bad []LineError
	badCount := 0
	for i, line := range bytes.Split(body, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		fb, _, err := parseFeedback(line)
		if err != nil {
			badCount++
			if len(bad) < maxLineErrors {
				bad = append(bad, LineError{Line: i + 1, Message: err.Error()})
			}
			continue
		}
		items = append(items, fb)
	}
	if badCount > 0 {
		msg := fmt.Sprintf("%d of %d lines are not valid feedback; nothing was imported", badCount, badCount+len(items))
		if badCount > len(bad) {
			msg += fmt.Sprintf(" (the first %d are listed)", len(bad))
		}
		for _, b := range bad[:min(3, len(bad))] {
			msg += fmt.Sprintf("; line %d: %s", b.Line, b.Message)
		}
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{
			"message": msg, "type": llm.ErrInvalidRequest, "param": "body", "lines": bad,
		}})
		return
	}
	if len(items) == 0 {
		WriteError(w, r, llm.BadRequest("body", `the body holds no feedback: send JSON Lines, one {"prompt": ..., "model": ..., "good": ...} per line`))
		return
	}
	n, err := f.fs.Add(r.Context(), items...)
	if err != nil {
		WriteError(w, r, addError(err))
		return
	}
	writeJSON(w, http.StatusOK, FeedbackResponse{Stored: len(items), Examples: n})
}

func (f feedbackAPI) stats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, f.fs.Stats())
}

// addError maps a failed Add: embedding failures are 502s that name the
// cause (an upstream's 401 is not the admin's), the rest as llm.AsError.
func addError(err error) *llm.Error {
	var ee *promptroute.EmbedError
	if !errors.As(err, &ee) {
		return llm.AsError(err)
	}
	cause := ee.Err.Error()
	var le *llm.Error
	if errors.As(ee.Err, &le) {
		cause = le.Public()
	}
	return llm.Errorf(http.StatusBadGateway, llm.ErrUpstream, "could not embed the feedback: %s", cause)
}
