package batch

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"iter"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/gateway"
	"github.com/junctionhq/junction/internal/wire/llm"
	"github.com/junctionhq/junction/internal/wire/openaiwire"
)

// KindOpenAI is the kind of jobs made through the OpenAI Batch API.
const KindOpenAI = "openai"

// The endpoints an OpenAI batch may call.
const (
	EndpointChat       = "/v1/chat/completions"
	EndpointEmbeddings = "/v1/embeddings"
)

// OpenAISpec is an OpenAI batch's request (POST /v1/batches).
type OpenAISpec struct {
	InputFileID      string            `json:"input_file_id"`
	Endpoint         string            `json:"endpoint"`
	CompletionWindow string            `json:"completion_window"`
	Metadata         map[string]string `json:"metadata,omitempty"`
}

// Caller runs batch records through the gateway as calls of the job's
// key: routes, guardrails, budgets, rate limits and the ledger apply to
// them as to any request, on surface "batch".
type Caller struct {
	Gateway *gateway.Gateway
	Keys    interface {
		Live(id string) (*keys.Key, bool)
	}
	// RequestID returns a new request id for each call.
	RequestID func() string
}

// begin begins a gateway call for a record of job j.
func (c *Caller) begin(j *Job, model string) (*gateway.Call, error) {
	call := &gateway.Call{Surface: Surface, RequestID: c.RequestID(), Tags: j.Tags, Start: time.Now(), Model: model}
	k, ok := c.Keys.Live(j.KeyID)
	if !ok {
		return call, llm.Errorf(http.StatusUnauthorized, llm.ErrAuthentication, "the key that made this job has been revoked")
	}
	call.Key = k
	return call, nil
}

// Chat runs a chat request for a record of job j through the gateway and
// returns the answer and the call (its request id, attempts and the model
// that served). The call is recorded in the ledger whatever the outcome.
func (c *Caller) Chat(ctx context.Context, j *Job, req *llm.Request) (*llm.Response, *gateway.Call, error) {
	call, err := c.begin(j, req.Model)
	call.Prompt = req
	if err == nil {
		err = c.Gateway.Resolve(call)
	}
	if err != nil {
		c.Gateway.Finish(call, llm.Usage{}, nil, err)
		return nil, call, err
	}
	resp, err := c.Gateway.Chat(ctx, call, req)
	return resp, call, err
}

// RetryResult fills in how a result of a call that failed with err is
// retried: 429s and 5xx are, a 429 slowing the model's pacer.
func RetryResult(res *Result, err error) {
	e := llm.AsError(err)
	res.Failed = true
	res.Retry = e.Status == http.StatusTooManyRequests || e.Status >= 500
	res.Throttled = e.Status == http.StatusTooManyRequests
	if secs, perr := strconv.Atoi(e.RetryAfter); perr == nil && secs > 0 {
		res.RetryAfter = time.Duration(secs) * time.Second
	}
}

// OpenAI runs OpenAI batches: input and output are Files API files, each
// line {"custom_id", "method", "url", "body"} in and {"id", "custom_id",
// "response": {"status_code", "request_id", "body"}, "error"} out.
type OpenAI struct {
	Caller *Caller
	Files  *Files
}

func openAISpec(j *Job) (*OpenAISpec, error) {
	var s OpenAISpec
	err := json.Unmarshal(j.Spec, &s)
	return &s, err
}

// Open opens the batch's input file.
func (o *OpenAI) Open(ctx context.Context, j *Job) (io.ReadCloser, error) {
	s, err := openAISpec(j)
	if err != nil {
		return nil, err
	}
	_, r, err := o.Files.Open(ctx, j.KeyID, s.InputFileID)
	if errors.Is(err, ErrNotFound) {
		return nil, &LineError{Code: "invalid_file", Message: "input file " + s.InputFileID + " no longer exists", Param: "input_file_id"}
	}
	return r, err
}

// requestLine is one line of an OpenAI batch's input.
type requestLine struct {
	CustomID *string         `json:"custom_id"`
	Method   string          `json:"method"`
	URL      string          `json:"url"`
	Body     json.RawMessage `json:"body"`
}

// Validate checks each line's shape, that custom_id is unique, that url
// is the batch's endpoint, that the body decodes as that endpoint's
// request, and that every line asks for one model, as OpenAI requires.
func (o *OpenAI) Validate(j *Job) func(int, []byte) (string, *LineError) {
	s, _ := openAISpec(j)
	seen := map[uint64]struct{}{}
	model := ""
	return func(n int, input []byte) (string, *LineError) {
		bad := func(param, msg string) (string, *LineError) {
			return "", &LineError{Code: "invalid_request", Message: "line " + strconv.Itoa(n) + ": " + msg, Param: param, Line: n}
		}
		var l requestLine
		if err := json.Unmarshal(input, &l); err != nil {
			return bad("", "not a JSON object: "+err.Error())
		}
		if l.CustomID == nil || *l.CustomID == "" {
			return bad("custom_id", "custom_id is required, a string unique within the file")
		}
		h := fnv.New64a()
		h.Write([]byte(*l.CustomID))
		if _, dup := seen[h.Sum64()]; dup {
			return bad("custom_id", "custom_id "+strconv.Quote(*l.CustomID)+" is used by an earlier line; each must be unique")
		}
		seen[h.Sum64()] = struct{}{}
		if l.Method != http.MethodPost {
			return bad("method", "method must be POST")
		}
		if l.URL != s.Endpoint {
			return bad("url", "url "+strconv.Quote(l.URL)+" is not the batch's endpoint "+s.Endpoint)
		}
		m, err := decodeBody(s.Endpoint, l.Body)
		if err != nil {
			return bad("body", llm.AsError(err).Message)
		}
		if model == "" {
			model = m
		} else if m != model {
			return bad("body.model", "model "+strconv.Quote(m)+" differs from the first line's "+strconv.Quote(model)+"; a batch calls one model")
		}
		return m, nil
	}
}

// decodeBody decodes a request body for endpoint and returns its model.
func decodeBody(endpoint string, body json.RawMessage) (string, error) {
	if len(body) == 0 || body[0] != '{' {
		return "", llm.BadRequest("body", "body must be a JSON object")
	}
	if endpoint == EndpointEmbeddings {
		req, err := openaiwire.DecodeEmbedRequest(body)
		if err != nil {
			return "", err
		}
		return req.Model, nil
	}
	req, err := openaiwire.DecodeChatRequest(body)
	if err != nil {
		return "", err
	}
	if req.Stream {
		return "", llm.BadRequest("body.stream", "stream is not supported in a batch")
	}
	return req.Model, nil
}

// responseLine is one line of an OpenAI batch's output or error file.
type responseLine struct {
	ID       string         `json:"id"`
	CustomID string         `json:"custom_id"`
	Response *lineResponse  `json:"response"`
	Error    *lineErrorBody `json:"error"`
}

type lineResponse struct {
	StatusCode int             `json:"status_code"`
	RequestID  string          `json:"request_id"`
	Body       json.RawMessage `json:"body"`
}

type lineErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Run calls the record's endpoint through the gateway.
func (o *OpenAI) Run(ctx context.Context, j *Job, rec Record) Result {
	s, _ := openAISpec(j)
	var l requestLine
	json.Unmarshal(rec.Input, &l)
	var body []byte
	var usage llm.Usage
	var call *gateway.Call
	var err error
	if s.Endpoint == EndpointEmbeddings {
		call, body, usage, err = o.embed(ctx, j, l.Body)
	} else {
		call, body, usage, err = o.chat(ctx, j, l.Body)
	}
	res := Result{Attempts: call.Attempts, InputTokens: usage.InputTokens, OutputTokens: usage.OutputTokens}
	line := responseLine{ID: NewID("batch_req_"), CustomID: deref(l.CustomID)}
	status := http.StatusOK
	if err != nil {
		RetryResult(&res, err)
		e := llm.AsError(err)
		code := e.Code
		if code == "" && e.Provider != "" {
			code = "provider:" + e.Provider
		}
		status, body = e.Status, openaiwire.EncodeError(e.Public(), string(e.Type), e.Param, code)
	}
	line.Response = &lineResponse{StatusCode: status, RequestID: call.RequestID, Body: body}
	res.Line, _ = json.Marshal(line)
	return res
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (o *OpenAI) chat(ctx context.Context, j *Job, raw json.RawMessage) (*gateway.Call, []byte, llm.Usage, error) {
	req, err := openaiwire.DecodeChatRequest(raw)
	if err != nil {
		call, _ := o.Caller.begin(j, j.Model)
		o.Caller.Gateway.Finish(call, llm.Usage{}, nil, err)
		return call, nil, llm.Usage{}, err
	}
	resp, call, err := o.Caller.Chat(ctx, j, req)
	if err != nil {
		return call, nil, llm.Usage{}, err
	}
	id := resp.ID
	if id == "" {
		id = "chatcmpl-" + call.RequestID
	}
	out, err := openaiwire.EncodeChatResponse(resp, id, call.Served(), time.Now().Unix())
	return call, out, resp.Usage, err
}

func (o *OpenAI) embed(ctx context.Context, j *Job, raw json.RawMessage) (*gateway.Call, []byte, llm.Usage, error) {
	call, err := o.Caller.begin(j, j.Model)
	var req *llm.EmbedRequest
	if err == nil {
		req, err = openaiwire.DecodeEmbedRequest(raw)
	}
	if err == nil {
		call.Model = req.Model
		err = o.Caller.Gateway.Resolve(call)
	}
	if err != nil {
		o.Caller.Gateway.Finish(call, llm.Usage{}, nil, err)
		return call, nil, llm.Usage{}, err
	}
	resp, err := o.Caller.Gateway.Embed(ctx, call, req)
	if err != nil {
		return call, nil, llm.Usage{}, err
	}
	out, err := json.Marshal(openaiwire.EmbedResponse{Object: "list", Data: resp.Data, Model: call.Model,
		Usage: openaiwire.Usage{PromptTokens: resp.Usage.InputTokens, TotalTokens: resp.Usage.InputTokens}})
	return call, out, resp.Usage, err
}

// Output keys of a finished OpenAI batch.
const (
	OutputFileID = "output_file_id"
	ErrorFileID  = "error_file_id"
)

// outputID is the id of a job's output (what "output" or "error"),
// the same each time the job finishes.
func outputID(jobID, what string) string {
	sum := sha256.Sum256([]byte(jobID + "/" + what))
	return "file-" + hex.EncodeToString(sum[:12])
}

// Finish writes the output file (records that succeeded) and the error
// file (records that failed, and those the window left undone, as
// batch_expired), each only when it has a line.
func (o *OpenAI) Finish(ctx context.Context, j *Job, entries iter.Seq2[Entry, error]) (map[string]string, error) {
	outF, err := o.Files.temp()
	if err != nil {
		return nil, err
	}
	defer os.Remove(outF.Name())
	defer outF.Close()
	errF, err := o.Files.temp()
	if err != nil {
		return nil, err
	}
	defer os.Remove(errF.Name())
	defer errF.Close()
	outW, errW := bufio.NewWriterSize(outF, 64<<10), bufio.NewWriterSize(errF, 64<<10)
	var nOut, nErr int
	expired := j.Status != Cancelling
	for en, err := range entries {
		if err != nil {
			return nil, err
		}
		switch {
		case en.Done && !en.Failed:
			outW.Write(en.Output)
			outW.WriteByte('\n')
			nOut++
		case en.Done:
			errW.Write(en.Output)
			errW.WriteByte('\n')
			nErr++
		case expired:
			var l requestLine
			json.Unmarshal(en.Input, &l)
			b, _ := json.Marshal(responseLine{ID: "batch_req_" + outputID(j.ID, strconv.Itoa(en.Index))[5:], CustomID: deref(l.CustomID),
				Error: &lineErrorBody{Code: "batch_expired", Message: "This request could not be executed before the completion window expired."}})
			errW.Write(b)
			errW.WriteByte('\n')
			nErr++
		}
	}
	if err := outW.Flush(); err != nil {
		return nil, err
	}
	if err := errW.Flush(); err != nil {
		return nil, err
	}
	out := map[string]string{}
	if nOut > 0 {
		if _, err := o.Files.register(ctx, outF, outputID(j.ID, "output"), j.KeyID, j.ID+"_output.jsonl", "batch_output"); err != nil {
			return nil, err
		}
		out[OutputFileID] = outputID(j.ID, "output")
	}
	if nErr > 0 {
		if _, err := o.Files.register(ctx, errF, outputID(j.ID, "error"), j.KeyID, j.ID+"_error.jsonl", "batch_output"); err != nil {
			return nil, err
		}
		out[ErrorFileID] = outputID(j.ID, "error")
	}
	return out, nil
}
