package jobs

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/jobs/batch"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// RegisterBedrock adds Bedrock's batch inference operations, under
// /api/v1/model-invocation-jobs, to mux, each wrapped by auth.
func (h *Handler) RegisterBedrock(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	mux.Handle("POST /api/v1/model-invocation-jobs", auth(http.HandlerFunc(h.createInvocationJob)))
	mux.Handle("GET /api/v1/model-invocation-jobs", auth(http.HandlerFunc(h.listInvocationJobs)))
	mux.Handle("GET /api/v1/model-invocation-jobs/{id...}", auth(http.HandlerFunc(h.getInvocationJob)))
	mux.Handle("POST /api/v1/model-invocation-jobs/{id}/stop", auth(http.HandlerFunc(h.stopInvocationJob)))
}

// jobARN is the ARN Junction gives a model invocation job.
func jobARN(id string) string {
	return "arn:aws:bedrock:junction:000000000000:model-invocation-job/" + id
}

// jobIDOf takes a job id or its ARN.
func jobIDOf(s string) string { return s[strings.LastIndex(s, "/")+1:] }

// jobName is Bedrock's pattern for job names.
var jobName = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9+\-.])*$`)

// InvocationJob is GetModelInvocationJob's answer (and a list entry).
type InvocationJob struct {
	JobArn                 string          `json:"jobArn"`
	JobName                string          `json:"jobName"`
	ModelID                string          `json:"modelId"`
	RoleArn                string          `json:"roleArn,omitempty"`
	Status                 string          `json:"status"`
	Message                string          `json:"message,omitempty"`
	SubmitTime             time.Time       `json:"submitTime"`
	LastModifiedTime       time.Time       `json:"lastModifiedTime"`
	EndTime                *time.Time      `json:"endTime,omitempty"`
	InputDataConfig        json.RawMessage `json:"inputDataConfig"`
	OutputDataConfig       json.RawMessage `json:"outputDataConfig"`
	TimeoutDurationInHours int             `json:"timeoutDurationInHours"`
	JobExpirationTime      time.Time       `json:"jobExpirationTime"`
	ModelInvocationType    string          `json:"modelInvocationType"`
	TotalRecordCount       int64           `json:"totalRecordCount"`
	ProcessedRecordCount   int64           `json:"processedRecordCount"`
	SuccessRecordCount     int64           `json:"successRecordCount"`
	ErrorRecordCount       int64           `json:"errorRecordCount"`
}

// bedrockStatus is Bedrock's name for a job's status.
func bedrockStatus(j *batch.Job) string {
	switch j.Status {
	case batch.Validating:
		return "Validating"
	case batch.InProgress, batch.Finalizing:
		return "InProgress"
	case batch.Completed:
		if j.Failed > 0 {
			return "PartiallyCompleted"
		}
		return "Completed"
	case batch.Failed:
		return "Failed"
	case batch.Expired:
		return "Expired"
	case batch.Cancelling:
		return "Stopping"
	case batch.Cancelled:
		return "Stopped"
	}
	return string(j.Status)
}

func toInvocationJob(j *batch.Job) InvocationJob {
	s := bedrockSpec(j)
	in, _ := json.Marshal(s.InputDataConfig)
	out, _ := json.Marshal(s.OutputDataConfig)
	v := InvocationJob{JobArn: jobARN(j.ID), JobName: s.JobName, ModelID: s.ModelID, RoleArn: s.RoleArn, Status: bedrockStatus(j),
		SubmitTime: j.CreatedAt.UTC(), LastModifiedTime: j.CreatedAt.UTC(), InputDataConfig: in, OutputDataConfig: out,
		TimeoutDurationInHours: s.TimeoutDurationInHours, JobExpirationTime: j.ExpiresAt.UTC(), ModelInvocationType: s.ModelInvocationType,
		TotalRecordCount: j.Total, ProcessedRecordCount: j.Completed + j.Failed, SuccessRecordCount: j.Completed, ErrorRecordCount: j.Failed}
	var last int64
	for _, t := range j.Times {
		last = max(last, t)
	}
	v.LastModifiedTime = time.Unix(last, 0).UTC()
	if j.Status.Terminal() {
		end := v.LastModifiedTime
		v.EndTime = &end
	}
	if len(j.Errors) > 0 {
		v.Message = j.Errors[0].Message
	}
	return v
}

func (h *Handler) createInvocationJob(w http.ResponseWriter, r *http.Request) {
	body, e := api.ReadBody(w, r, 1<<20)
	if e != nil {
		admin.WriteError(w, r, e)
		return
	}
	var s BedrockSpec
	if err := json.Unmarshal(body, &s); err != nil {
		admin.WriteError(w, r, llm.BadRequest("", "the body must be CreateModelInvocationJob's JSON: %v", err))
		return
	}
	if s.TimeoutDurationInHours == 0 {
		s.TimeoutDurationInHours = 168
	}
	if s.ModelInvocationType == "" {
		s.ModelInvocationType = "InvokeModel"
	}
	bad := func(param, format string, args ...any) {
		admin.WriteError(w, r, llm.BadRequest(param, format, args...))
	}
	in, out := s.InputDataConfig.S3InputDataConfig, s.OutputDataConfig.S3OutputDataConfig
	switch {
	case len(s.JobName) < 1 || len(s.JobName) > 63 || !jobName.MatchString(s.JobName):
		bad("jobName", "jobName must be 1 to 63 letters, digits, '+', '-' or '.', starting with a letter or digit")
	case s.ModelID == "":
		bad("modelId", "modelId is required: a model or route Junction serves")
	case in.S3URI == "":
		bad("inputDataConfig.s3InputDataConfig.s3Uri", "inputDataConfig.s3InputDataConfig.s3Uri is required: the JSONL input")
	case in.S3InputFormat != "" && in.S3InputFormat != "JSONL":
		bad("inputDataConfig.s3InputDataConfig.s3InputFormat", "s3InputFormat must be JSONL")
	case out.S3URI == "":
		bad("outputDataConfig.s3OutputDataConfig.s3Uri", "outputDataConfig.s3OutputDataConfig.s3Uri is required: where outputs go")
	case s.TimeoutDurationInHours < 24 || s.TimeoutDurationInHours > 168:
		bad("timeoutDurationInHours", "timeoutDurationInHours must be from 24 to 168")
	case s.ModelInvocationType != "InvokeModel" && s.ModelInvocationType != Converse:
		bad("modelInvocationType", "modelInvocationType must be InvokeModel or Converse")
	default:
		if err := batch.CheckURI(in.S3URI); err != nil {
			bad("inputDataConfig.s3InputDataConfig.s3Uri", "%v", err)
			return
		}
		if err := batch.CheckURI(out.S3URI); err != nil {
			bad("outputDataConfig.s3OutputDataConfig.s3Uri", "%v", err)
			return
		}
		info := api.InfoFrom(r.Context())
		tags := map[string]string{}
		for k, v := range info.Tags {
			tags[k] = v
		}
		spec, _ := json.Marshal(s)
		j := &batch.Job{ID: batch.NewID("job"), Kind: KindBedrock, KeyID: info.Key.ID, KeyName: info.Key.Name, Tags: tags, Spec: spec}
		if err := h.Engine.Create(r.Context(), j, time.Duration(s.TimeoutDurationInHours)*time.Hour); err != nil {
			admin.WriteError(w, r, llm.Errorf(http.StatusInternalServerError, llm.ErrInternal, "storing the job: %v", err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"jobArn": jobARN(j.ID)})
	}
}

func (h *Handler) bedrockJob(w http.ResponseWriter, r *http.Request) *batch.Job {
	id := jobIDOf(r.PathValue("id"))
	j, err := h.Engine.Get(r.Context(), "", id)
	if err == nil && j.Kind != KindBedrock {
		err = batch.ErrNotFound
	}
	if err != nil {
		if errors.Is(err, batch.ErrNotFound) {
			admin.WriteError(w, r, llm.Errorf(http.StatusNotFound, llm.ErrNotFound, "no model invocation job %s", id))
		} else {
			admin.WriteError(w, r, llm.Errorf(http.StatusInternalServerError, llm.ErrInternal, "%v", err))
		}
		return nil
	}
	return j
}

func (h *Handler) getInvocationJob(w http.ResponseWriter, r *http.Request) {
	if j := h.bedrockJob(w, r); j != nil {
		writeJSON(w, http.StatusOK, toInvocationJob(j))
	}
}

func (h *Handler) stopInvocationJob(w http.ResponseWriter, r *http.Request) {
	j := h.bedrockJob(w, r)
	if j == nil {
		return
	}
	if _, err := h.Engine.Cancel(r.Context(), "", j.ID); err != nil {
		admin.WriteError(w, r, llm.Errorf(http.StatusInternalServerError, llm.ErrInternal, "%v", err))
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (h *Handler) listInvocationJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if s := q.Get("maxResults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			admin.WriteError(w, r, llm.BadRequest("maxResults", "maxResults must be a whole number from 1 to 1000"))
			return
		}
		limit = n
	}
	js, more, err := h.Engine.List(r.Context(), batch.Filter{Kind: KindBedrock, After: q.Get("nextToken"), Limit: limit})
	if err != nil {
		writeErr(w, r, err)
		return
	}
	out := struct {
		InvocationJobSummaries []InvocationJob `json:"invocationJobSummaries"`
		NextToken              string          `json:"nextToken,omitempty"`
	}{InvocationJobSummaries: []InvocationJob{}}
	for _, j := range js {
		out.InvocationJobSummaries = append(out.InvocationJobSummaries, toInvocationJob(j))
	}
	if more {
		out.NextToken = js[len(js)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}
