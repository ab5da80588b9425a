package transform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/junctionhq/junction/internal/blob"
	"github.com/junctionhq/junction/internal/gateway"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/jobs/batch"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Transform runs batch transform jobs; it is the engine's Kind for them,
// and a batch.Limiter and batch.Starter.
type Transform struct {
	// Caller's gateway invokes the job's endpoint (Gateway.Invoke), as a
	// call of the key that made the job, on surface batch.
	Caller *batch.Caller
	// Hosting starts and stops the job's transient endpoint.
	Hosting *hosting.Controller
	// Objects reads the inputs and writes the outputs.
	Objects *blob.Objects
	// Poll is how often Start and Stop look at the transient endpoint;
	// default 200ms.
	Poll time.Duration

	mu sync.Mutex
	// concurrency is what a running job's container asked for on GET
	// /execution-parameters, by job id, when the job left it to it.
	concurrency map[string]int
}

// SpecOf returns the request a transform job was made with.
func SpecOf(j *batch.Job) *Spec {
	var s Spec
	json.Unmarshal(j.Spec, &s)
	if s.MaxPayloadInMB == nil {
		n := DefaultMaxPayloadInMB
		s.MaxPayloadInMB = &n
	}
	if s.ModelClientConfig == nil {
		s.ModelClientConfig = &ModelClientConfig{}
	}
	if s.ModelClientConfig.InvocationsMaxRetries == nil {
		n := DefaultInvocationsRetries
		s.ModelClientConfig.InvocationsMaxRetries = &n
	}
	return &s
}

// Open streams the job's requests: its input objects, split and packed.
func (t *Transform) Open(ctx context.Context, j *batch.Job) (io.ReadCloser, error) {
	in := &input{objects: t.Objects, spec: SpecOf(j)}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(in.write(ctx, pw)) }()
	return pr, nil
}

// Validate fails the job on a request line that says why its input
// cannot run.
func (t *Transform) Validate(j *batch.Job) func(int, []byte) (string, *batch.LineError) {
	s := SpecOf(j)
	return func(n int, line []byte) (string, *batch.LineError) {
		var r request
		if err := json.Unmarshal(line, &r); err != nil {
			return "", &batch.LineError{Code: "ValidationException", Message: "reading the input: " + err.Error()}
		}
		if r.Error != "" {
			return "", &batch.LineError{Code: "ValidationException", Message: r.Error}
		}
		return s.ModelName, nil
	}
}

// Limits are the job's own: MaxConcurrentTransforms on each instance, and
// InvocationsMaxRetries.
func (t *Transform) Limits(j *batch.Job) batch.Limits {
	s := SpecOf(j)
	per := s.MaxConcurrentTransforms
	if per == 0 {
		t.mu.Lock()
		per = t.concurrency[j.ID]
		t.mu.Unlock()
	}
	if per == 0 {
		per = defaultConcurrentTransform
	}
	return batch.Limits{Concurrency: per * max(s.TransformResources.InstanceCount, 1),
		MaxAttempts: 1 + *s.ModelClientConfig.InvocationsMaxRetries, MaxLine: lineLimit(s)}
}

// outcome is what the engine stores of a request: the bytes its records
// add to the .out, or why it failed.
type outcome struct {
	Body  []byte   `json:"b,omitempty"`
	Error *failure `json:"e,omitempty"`
}

// failure is a failed request, as <input>.errors lists it.
type failure struct {
	// Line and Records say which records failed: Records from Line on.
	Line    int    `json:"line,omitempty"`
	Records int    `json:"records"`
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Run invokes the job's endpoint with one request's records and keeps
// what its .out gets of the answer.
func (t *Transform) Run(ctx context.Context, j *batch.Job, rec batch.Record) batch.Result {
	s := SpecOf(j)
	var r request
	if err := json.Unmarshal(rec.Input, &r); err != nil || r.Error != "" {
		msg := r.Error
		if err != nil {
			msg = err.Error()
		}
		return failed(&r, http.StatusBadRequest, "ValidationError", msg)
	}
	if r.Records == 0 {
		return succeeded(nil)
	}
	proc, err := newProcessor(s)
	if err != nil {
		return failed(&r, http.StatusBadRequest, "ValidationError", err.Error())
	}
	records := r.records(s.TransformInput.SplitType)
	body := r.Body
	if proc.inputFilter != nil {
		var b bytes.Buffer
		for i, record := range records {
			in, err := proc.input(record)
			if err != nil {
				return failed(&r, http.StatusBadRequest, "InputFilterError", fmt.Sprintf("line %d: %v", r.Line+i, err))
			}
			b.Write(in)
			b.WriteByte('\n')
		}
		body = b.Bytes()
	}
	inv := &hosting.Invocation{Endpoint: EndpointName(j.ID), ContentType: s.TransformInput.ContentType, Accept: s.TransformOutput.Accept,
		Body: body, Timeout: time.Duration(s.ModelClientConfig.InvocationsTimeoutInSeconds) * time.Second}
	res, err := t.invoke(ctx, j, inv)
	if err != nil {
		return invokeFailed(&r, err)
	}
	out, err := assemble(s, proc, &r, records, res.Body)
	if err != nil {
		return failed(&r, http.StatusUnprocessableEntity, "OutputError", err.Error())
	}
	return succeeded(out)
}

// invoke makes one invocation through the gateway as a call of the job's
// key, so that it lands in the ledger on surface batch.
func (t *Transform) invoke(ctx context.Context, j *batch.Job, inv *hosting.Invocation) (*hosting.Result, error) {
	c := &gateway.Call{Surface: batch.Surface, RequestID: t.Caller.RequestID(), Tags: j.Tags, Start: time.Now()}
	k, ok := t.Caller.Keys.Live(j.KeyID)
	if !ok {
		return nil, llm.Errorf(http.StatusUnauthorized, llm.ErrAuthentication, "the key that made this job has been revoked")
	}
	c.Key = k
	return t.Caller.Gateway.Invoke(ctx, c, inv)
}

// assemble makes what the .out gets of an answer: the answer as it is, or
// each record's answer (a line of the answer) joined and filtered, each
// followed by a newline when AssembleWith is Line.
func assemble(s *Spec, proc *processor, r *request, records [][]byte, answer []byte) ([]byte, error) {
	line := s.TransformOutput.AssembleWith == AssembleLine
	if !proc.perRecord() {
		if line && len(answer) > 0 && answer[len(answer)-1] != '\n' {
			answer = append(answer, '\n')
		}
		return answer, nil
	}
	answers := [][]byte{answer}
	if s.BatchStrategy == MultiRecord {
		answers = bytes.Split(bytes.TrimSuffix(answer, []byte("\n")), []byte("\n"))
		if len(answers) != len(records) {
			return nil, fmt.Errorf("lines %d to %d: the model answered %d lines for %d records; joining and filtering need one line per record",
				r.Line, r.Line+len(records)-1, len(answers), len(records))
		}
	}
	var out bytes.Buffer
	for i, a := range answers {
		o, err := proc.output(records[i], a)
		if err != nil {
			return nil, fmt.Errorf("the record at or after line %d: %v", r.Line+i, err)
		}
		out.Write(o)
		if line {
			out.WriteByte('\n')
		}
	}
	return out.Bytes(), nil
}

func succeeded(body []byte) batch.Result {
	line, _ := json.Marshal(outcome{Body: body})
	return batch.Result{Line: line}
}

func failed(r *request, status int, code, msg string) batch.Result {
	line, _ := json.Marshal(outcome{Error: &failure{Line: r.Line, Records: r.Records, Status: status, Code: code, Message: msg}})
	return batch.Result{Line: line, Failed: true}
}

// invokeFailed is the result of a failed invocation: retried (up to
// InvocationsMaxRetries) when the model server failed or timed out, the
// endpoint had no instance ready, or a rate limit refused it; final when
// the model server refused the request (a 4xx of its own).
func invokeFailed(r *request, err error) batch.Result {
	var he *hosting.Error
	if errors.As(err, &he) {
		res := failed(r, he.Status, he.Code, he.Message)
		switch {
		case he.Status == http.StatusTooManyRequests:
			res.Retry, res.Throttled = true, true
		case he.Code == hosting.ErrModel:
			res.Retry = he.OriginalStatus == 0 || he.OriginalStatus >= 500 || he.OriginalStatus == http.StatusTooManyRequests
		default:
			res.Retry = he.Status >= 500
		}
		return res
	}
	e := llm.AsError(err)
	res := failed(r, e.Status, string(e.Type), e.Public())
	batch.RetryResult(&res, err)
	return res
}
