package modelserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/junctionhq/junction/internal/hosting/refmodel"
)

// Tasks of an invocation.
const (
	taskClassify = "classify"
	taskGenerate = "generate"
)

// Media types of the BYOC surface.
const (
	typeJSON = "application/json"
	typeText = "text/plain"
	typeCSV  = "text/csv"
)

// Limits on one invocation. Token limits above maxNewTokens are capped
// to it rather than refused.
const (
	maxInputs    = 256
	maxNewTokens = 4096
)

// invocationRequest is the JSON body of POST /invocations.
type invocationRequest struct {
	Inputs     json.RawMessage   `json:"inputs"`
	Task       string            `json:"task"`
	Parameters *invocationParams `json:"parameters"`
}

// invocationParams are the generation parameters; classify ignores them.
type invocationParams struct {
	MaxNewTokens *int     `json:"max_new_tokens"`
	Temperature  *float64 `json:"temperature"`
	Seed         *uint64  `json:"seed"`
}

// invocation is a request after validation.
type invocation struct {
	task   string
	inputs []string
	// batch is true when inputs came as a JSON array.
	batch bool
	opts  refmodel.GenerateOptions
}

// generation is one result of a generate invocation.
type generation struct {
	GeneratedText   string `json:"generated_text"`
	FinishReason    string `json:"finish_reason"`
	PromptTokens    int    `json:"prompt_tokens"`
	GeneratedTokens int    `json:"generated_tokens"`
}

// invocations answers POST /invocations: classify or generate, in JSON,
// CSV or text as the Accept header asks.
func (s *server) invocations(w http.ResponseWriter, r *http.Request) {
	defer s.track()()
	bp := getBuf()
	body, err := readBody(w, r, (*bp)[:0])
	defer func() { putBuf(bp, body) }()
	l := s.admit(w, r, err, plainError)
	if l == nil {
		return
	}
	s.answer(w, r, l, body)
}

// answer answers an admitted invocation with model l: a batch, or one
// classify or generate call.
func (s *server) answer(w http.ResponseWriter, r *http.Request, l *loaded, body []byte) {
	var err error
	ct := mediaType(r.Header.Get("Content-Type"))
	if ct == typeJSONLines || (ct == typeJSON && isInstances(body)) {
		s.invokeBatch(w, l, body, ct)
		return
	}
	if ct != typeJSON && ct != typeText {
		msg := "Content-Type is missing"
		if ct != "" {
			msg = fmt.Sprintf("Content-Type %q is not supported", ct)
		}
		plainError(w, http.StatusUnsupportedMediaType, msg+": send application/json ({\"inputs\": ...}, or a batch {\"instances\": [...]}), application/jsonlines (a batch) or text/plain (one text to classify)")
		return
	}
	accept := r.Header.Get("Accept")
	if negotiate(accept, typeJSON, typeCSV, typeText) == "" {
		plainError(w, http.StatusNotAcceptable, fmt.Sprintf("Accept %q: this server answers application/json, or text/csv for classify, or text/plain for generate", accept))
		return
	}
	var inv invocation
	if ct == typeText {
		if len(bytes.TrimSpace(body)) == 0 {
			plainError(w, http.StatusBadRequest, "the body is empty: send the text to classify")
			return
		}
		inv = invocation{task: taskClassify, inputs: []string{string(body)}}
	} else if inv, err = parseInvocation(body); err != nil {
		plainError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.spend(len(inv.inputs))
	out := getBuf()
	resp := (*out)[:0]
	defer func() { putBuf(out, resp) }()
	// Each task has JSON and one other format.
	other := typeCSV
	if inv.task == taskGenerate {
		other = typeText
	}
	format := negotiate(accept, typeJSON, other)
	if format == "" {
		plainError(w, http.StatusNotAcceptable, fmt.Sprintf("Accept %q: task %s answers application/json or %s", accept, inv.task, other))
		return
	}
	if inv.task == taskClassify {
		resp = classify(resp, l, inv.inputs, format)
	} else {
		resp = generate(resp, l, inv, format)
	}
	if format == typeText {
		format = "text/plain; charset=utf-8"
	}
	w.Header().Set("Content-Type", format)
	w.Write(resp)
}

// parseInvocation validates a JSON invocation body.
func parseInvocation(body []byte) (invocation, error) {
	const shape = `send {"inputs": "text" or ["text", ...], "task": "classify" or "generate", "parameters": {...}}`
	var req invocationRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return invocation{}, fmt.Errorf("the body is not a valid invocation (%v): %s", err, shape)
	}
	if dec.More() {
		return invocation{}, fmt.Errorf("the body holds more than one JSON value: %s", shape)
	}
	inv := invocation{task: req.Task}
	if inv.task == "" {
		inv.task = taskClassify
	}
	if inv.task != taskClassify && inv.task != taskGenerate {
		return inv, fmt.Errorf("task %q is not supported: want classify or generate", req.Task)
	}
	raw := bytes.TrimSpace(req.Inputs)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return inv, fmt.Errorf(`"inputs" is missing: %s`, shape)
	case raw[0] == '"':
		var text string
		if err := json.Unmarshal(raw, &text); err != nil {
			return inv, fmt.Errorf("inputs: %v", err)
		}
		inv.inputs = []string{text}
	case raw[0] == '[':
		if err := json.Unmarshal(raw, &inv.inputs); err != nil {
			return inv, fmt.Errorf("inputs must be a string or an array of strings: %v", err)
		}
		inv.batch = true
		if len(inv.inputs) == 0 {
			return inv, errors.New("inputs is an empty array: give at least one text")
		}
		if len(inv.inputs) > maxInputs {
			return inv, fmt.Errorf("inputs holds %d texts: at most %d per request", len(inv.inputs), maxInputs)
		}
	default:
		return inv, fmt.Errorf("inputs must be a string or an array of strings, not %s", raw[:min(len(raw), 20)])
	}
	for i, text := range inv.inputs {
		if strings.TrimSpace(text) == "" {
			if inv.batch {
				return inv, fmt.Errorf("inputs[%d] is empty: every text needs at least one word", i)
			}
			return inv, errors.New("inputs is empty: give a text with at least one word")
		}
	}
	if p := req.Parameters; p != nil {
		if p.MaxNewTokens != nil {
			if *p.MaxNewTokens < 1 {
				return inv, fmt.Errorf("parameters.max_new_tokens %d: want 1 or more", *p.MaxNewTokens)
			}
			inv.opts.MaxTokens = min(*p.MaxNewTokens, maxNewTokens)
		}
		if p.Temperature != nil {
			if !(*p.Temperature >= 0 && *p.Temperature <= 2) {
				return inv, fmt.Errorf("parameters.temperature %v: want 0 to 2", *p.Temperature)
			}
			inv.opts.Temperature = *p.Temperature
		}
		if p.Seed != nil {
			inv.opts.Seed = *p.Seed
		} else {
			inv.opts.Seed = rand.Uint64()
		}
	}
	return inv, nil
}

// classify appends the predictions for texts to b in format (JSON or CSV).
func classify(b []byte, l *loaded, texts []string, format string) []byte {
	var arr [16]float64
	probs := arr[:]
	if n := l.model.NumLabels(); n > len(arr) {
		probs = make([]float64, n)
	}
	if format == typeCSV {
		for _, text := range texts {
			best := l.model.ClassifyInto(text, probs)
			b = appendCSVField(b, l.labels[best])
			b = append(b, ',')
			b = appendProb(b, probs[best])
			b = append(b, '\n')
		}
		return b
	}
	b = append(b, `{"predictions":[`...)
	for i, text := range texts {
		best := l.model.ClassifyInto(text, probs)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"label":`...)
		b = append(b, l.quoted[best]...)
		b = append(b, `,"score":`...)
		b = appendProb(b, probs[best])
		b = append(b, `,"scores":{`...)
		for j, q := range l.quoted {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, q...)
			b = append(b, ':')
			b = appendProb(b, probs[j])
		}
		b = append(b, "}}"...)
	}
	return append(b, "]}\n"...)
}

// generate appends the generations for inv to b in format (JSON or text).
func generate(b []byte, l *loaded, inv invocation, format string) []byte {
	gens := make([]generation, len(inv.inputs))
	for i, prompt := range inv.inputs {
		g := l.model.Generate(prompt, inv.opts)
		gens[i] = generation{GeneratedText: g.Text, FinishReason: g.FinishReason, PromptTokens: g.PromptTokens, GeneratedTokens: g.Tokens}
	}
	if format == typeText {
		for _, g := range gens {
			b = append(b, g.GeneratedText...)
			b = append(b, '\n')
		}
		return b
	}
	var v any = gens[0]
	if inv.batch {
		v = struct {
			Generations []generation `json:"generations"`
		}{gens}
	}
	out, _ := json.Marshal(v)
	b = append(b, out...)
	return append(b, '\n')
}
