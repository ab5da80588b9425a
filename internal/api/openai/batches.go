package openai

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/jobs/batch"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// batchObject is OpenAI's Batch object.
type batchObject struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	Endpoint         string            `json:"endpoint"`
	Model            string            `json:"model,omitempty"`
	Errors           *batchErrors      `json:"errors"`
	InputFileID      string            `json:"input_file_id"`
	CompletionWindow string            `json:"completion_window"`
	Status           batch.Status      `json:"status"`
	OutputFileID     *string           `json:"output_file_id"`
	ErrorFileID      *string           `json:"error_file_id"`
	CreatedAt        int64             `json:"created_at"`
	InProgressAt     *int64            `json:"in_progress_at"`
	ExpiresAt        *int64            `json:"expires_at"`
	FinalizingAt     *int64            `json:"finalizing_at"`
	CompletedAt      *int64            `json:"completed_at"`
	FailedAt         *int64            `json:"failed_at"`
	ExpiredAt        *int64            `json:"expired_at"`
	CancellingAt     *int64            `json:"cancelling_at"`
	CancelledAt      *int64            `json:"cancelled_at"`
	RequestCounts    requestCounts     `json:"request_counts"`
	Usage            batchUsage        `json:"usage"`
	Metadata         map[string]string `json:"metadata"`
}

type batchErrors struct {
	Object string            `json:"object"`
	Data   []batch.LineError `json:"data"`
}

type requestCounts struct {
	Total     int64 `json:"total"`
	Completed int64 `json:"completed"`
	Failed    int64 `json:"failed"`
}

type batchUsage struct {
	InputTokens         int64          `json:"input_tokens"`
	InputTokensDetails  map[string]int `json:"input_tokens_details"`
	OutputTokens        int64          `json:"output_tokens"`
	OutputTokensDetails map[string]int `json:"output_tokens_details"`
	TotalTokens         int64          `json:"total_tokens"`
}

func toBatchObject(j *batch.Job) batchObject {
	var s batch.OpenAISpec
	json.Unmarshal(j.Spec, &s)
	at := func(st batch.Status) *int64 {
		if t, ok := j.Times[st]; ok {
			return &t
		}
		return nil
	}
	str := func(k string) *string {
		if v, ok := j.Output[k]; ok {
			return &v
		}
		return nil
	}
	expires := j.ExpiresAt.Unix()
	o := batchObject{ID: j.ID, Object: "batch", Endpoint: s.Endpoint, Model: j.Model, InputFileID: s.InputFileID,
		CompletionWindow: s.CompletionWindow, Status: j.Status, OutputFileID: str(batch.OutputFileID), ErrorFileID: str(batch.ErrorFileID),
		CreatedAt: j.CreatedAt.Unix(), InProgressAt: at(batch.InProgress), ExpiresAt: &expires, FinalizingAt: at(batch.Finalizing),
		CompletedAt: at(batch.Completed), FailedAt: at(batch.Failed), ExpiredAt: at(batch.Expired), CancellingAt: at(batch.Cancelling),
		CancelledAt: at(batch.Cancelled), RequestCounts: requestCounts{Total: j.Total, Completed: j.Completed, Failed: j.Failed},
		Usage: batchUsage{InputTokens: j.InputTokens, OutputTokens: j.OutputTokens, TotalTokens: j.InputTokens + j.OutputTokens,
			InputTokensDetails: map[string]int{"cached_tokens": 0}, OutputTokensDetails: map[string]int{"reasoning_tokens": 0}},
		Metadata: s.Metadata}
	if len(j.Errors) > 0 {
		o.Errors = &batchErrors{Object: "list", Data: j.Errors}
	}
	return o
}

// completionWindow is the one window OpenAI offers.
const completionWindow = 24 * time.Hour

// create makes a batch from an uploaded file; it validates the file
// after answering, as OpenAI does (status validating).
func (b *Batches) create(w http.ResponseWriter, r *http.Request) {
	body, e := api.ReadBody(w, r, 1<<20)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	var s batch.OpenAISpec
	if err := json.Unmarshal(body, &s); err != nil {
		WriteError(w, r, llm.BadRequest("", "the body must be a JSON object: %v", err))
		return
	}
	switch {
	case s.InputFileID == "":
		WriteError(w, r, llm.BadRequest("input_file_id", "input_file_id is required: upload the requests with POST /v1/files (purpose batch)"))
		return
	case s.Endpoint != batch.EndpointChat && s.Endpoint != batch.EndpointEmbeddings:
		WriteError(w, r, llm.BadRequest("endpoint", "endpoint %q is not supported: use %s or %s", s.Endpoint, batch.EndpointChat, batch.EndpointEmbeddings))
		return
	case s.CompletionWindow != "24h":
		WriteError(w, r, llm.BadRequest("completion_window", "completion_window must be \"24h\""))
		return
	case len(s.Metadata) > 16:
		WriteError(w, r, llm.BadRequest("metadata", "metadata holds at most 16 pairs"))
		return
	}
	info := api.InfoFrom(r.Context())
	f, err := b.Files.Get(r.Context(), keyID(r), s.InputFileID)
	if err != nil {
		if errors.Is(err, batch.ErrNotFound) {
			WriteError(w, r, llm.BadRequest("input_file_id", "No such file: %s", s.InputFileID))
			return
		}
		WriteError(w, r, llm.Errorf(http.StatusInternalServerError, llm.ErrInternal, "%v", err))
		return
	}
	if f.Purpose != "batch" {
		WriteError(w, r, llm.BadRequest("input_file_id", "file %s has purpose %q; a batch's input must have purpose \"batch\"", f.ID, f.Purpose))
		return
	}
	spec, _ := json.Marshal(s)
	j := &batch.Job{ID: batch.NewID("batch_"), Kind: batch.KindOpenAI, KeyID: info.Key.ID, KeyName: info.Key.Name, Tags: info.Tags, Spec: spec}
	if err := b.Engine.Create(r.Context(), j, completionWindow); err != nil {
		WriteError(w, r, llm.Errorf(http.StatusInternalServerError, llm.ErrInternal, "storing the batch: %v", err))
		return
	}
	writeJSON(w, toBatchObject(j))
}

func (b *Batches) get(w http.ResponseWriter, r *http.Request) {
	j, err := b.Engine.Get(r.Context(), keyID(r), r.PathValue("id"))
	if err == nil && j.Kind != batch.KindOpenAI {
		err = batch.ErrNotFound
	}
	if err != nil {
		b.notFound(w, r, "batch", err)
		return
	}
	writeJSON(w, toBatchObject(j))
}

func (b *Batches) cancel(w http.ResponseWriter, r *http.Request) {
	j, err := b.Engine.Get(r.Context(), keyID(r), r.PathValue("id"))
	if err == nil && j.Kind != batch.KindOpenAI {
		err = batch.ErrNotFound
	}
	if err == nil {
		j, err = b.Engine.Cancel(r.Context(), keyID(r), j.ID)
	}
	if err != nil {
		b.notFound(w, r, "batch", err)
		return
	}
	writeJSON(w, toBatchObject(j))
}

func (b *Batches) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, e := pageLimit(q.Get("limit"), 100)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	jobs, more, err := b.Engine.List(r.Context(), batch.Filter{Kind: batch.KindOpenAI, KeyID: keyID(r), After: q.Get("after"), Limit: limit})
	if err != nil {
		if errors.Is(err, batch.ErrNotFound) {
			WriteError(w, r, llm.BadRequest("after", "after: no such batch %s", q.Get("after")))
			return
		}
		WriteError(w, r, llm.Errorf(http.StatusInternalServerError, llm.ErrInternal, "%v", err))
		return
	}
	data := make([]batchObject, len(jobs))
	for i, j := range jobs {
		data[i] = toBatchObject(j)
	}
	writeJSON(w, page(data, more, func(b batchObject) string { return b.ID }))
}
