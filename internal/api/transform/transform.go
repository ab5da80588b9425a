// Package transform serves SageMaker's batch transform operations —
// CreateTransformJob, DescribeTransformJob, ListTransformJobs and
// StopTransformJob — twice over: as the AWS JSON protocol the SageMaker
// SDKs speak (POST / with X-Amz-Target: SageMaker.<Operation>, awsjson.go),
// so that an application's sagemaker client works with only its endpoint
// and credentials changed, and as Junction's REST resources under
// /api/v1/transform-jobs, which the CLI uses; both take and give the same
// bodies, SageMaker's. Both need an admin key. The jobs run in
// internal/jobs/batch/transform.
package transform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/api/admin"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/jobs/batch"
	"github.com/junctionhq/junction/internal/jobs/batch/transform"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Window is how long a transform job may run: SageMaker sets it no limit,
// the engine needs one.
const Window = 365 * 24 * time.Hour

// Handler serves the transform job operations.
type Handler struct {
	Engine  *batch.Engine
	Hosting *hosting.Controller
	// Kind runs the jobs; it knows the concurrency a job's container
	// asked for.
	Kind *transform.Transform
	// Auth admits the AWS JSON protocol's requests (SigV4 for the
	// signing name "sagemaker", or a bearer Junction key).
	Auth *api.AWSAuth
}

// Register adds the REST routes, each wrapped by auth (admin keys), and
// the AWS JSON protocol's POST /.
func (h *Handler) Register(mux *http.ServeMux, auth func(http.Handler) http.Handler) {
	mux.Handle("POST /api/v1/transform-jobs", auth(http.HandlerFunc(h.restCreate)))
	mux.Handle("GET /api/v1/transform-jobs", auth(http.HandlerFunc(h.restList)))
	mux.Handle("GET /api/v1/transform-jobs/{name}", auth(http.HandlerFunc(h.restDescribe)))
	mux.Handle("POST /api/v1/transform-jobs/{name}/stop", auth(http.HandlerFunc(h.restStop)))
	mux.Handle("POST /{$}", http.HandlerFunc(h.awsJSON))
}

// ARN is the ARN Junction gives transform job name.
func ARN(name string) string {
	return "arn:aws:sagemaker:junction:000000000000:transform-job/" + strings.ToLower(name)
}

// opError is a failed operation: SageMaker's error code and message, and
// the HTTP status the REST API answers with.
type opError struct {
	status  int
	code    string
	message string
}

func (e *opError) Error() string { return e.message }

func validation(format string, args ...any) *opError {
	return &opError{http.StatusBadRequest, "ValidationException", fmt.Sprintf(format, args...)}
}

func notFound(name string) *opError {
	return &opError{http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("Could not find transform job %q.", name)}
}

func internal(err error) *opError {
	return &opError{http.StatusInternalServerError, "InternalFailure", err.Error()}
}

// create makes a job from CreateTransformJob's body for the request's key.
func (h *Handler) create(ctx context.Context, s *transform.Spec) (string, *opError) {
	if fe := s.Validate(); fe != nil {
		return "", validation("1 validation error detected: %s %s", fe.Field, fe.Message)
	}
	m, err := h.Hosting.Store().Model(ctx, s.ModelName)
	if err != nil {
		var he *hosting.Error
		if errors.As(err, &he) && he.Code == hosting.ErrNotFound {
			return "", validation("Could not find model %q: create it with POST /api/v1/models.", s.ModelName)
		}
		return "", internal(err)
	}
	if m.Server.Type != hosting.ServerBYOC {
		return "", validation("Model %q is served by an %s server; a transform job needs a byoc server (POST /invocations).", s.ModelName, m.Server.Type)
	}
	if !h.Hosting.Types().Known(s.TransformResources.InstanceType) {
		return "", validation("TransformResources.InstanceType %q is not in the instance catalog (GET /api/v1/instance-types).", s.TransformResources.InstanceType)
	}
	if _, err := h.Engine.Get(ctx, "", s.TransformJobName); err == nil {
		return "", &opError{http.StatusConflict, "ResourceInUse", fmt.Sprintf("Job name must be unique within an account; a job named %q exists: %s", s.TransformJobName, ARN(s.TransformJobName))}
	} else if !errors.Is(err, batch.ErrNotFound) {
		return "", internal(err)
	}
	info := api.InfoFrom(ctx)
	tags := map[string]string{}
	for k, v := range info.Tags {
		tags[k] = v
	}
	spec, _ := json.Marshal(s)
	j := &batch.Job{ID: s.TransformJobName, Kind: transform.Kind, KeyID: info.Key.ID, KeyName: info.Key.Name, Tags: tags, Spec: spec}
	if err := h.Engine.Create(ctx, j, Window); err != nil {
		if _, gerr := h.Engine.Get(ctx, "", s.TransformJobName); gerr == nil {
			return "", &opError{http.StatusConflict, "ResourceInUse", fmt.Sprintf("a job named %q exists", s.TransformJobName)}
		}
		return "", internal(fmt.Errorf("storing the job: %w", err))
	}
	return ARN(j.ID), nil
}

// job returns the transform job of a name.
func (h *Handler) job(ctx context.Context, name string) (*batch.Job, *opError) {
	if name == "" {
		return nil, validation("TransformJobName is required")
	}
	j, err := h.Engine.Get(ctx, "", name)
	if err == nil && j.Kind != transform.Kind {
		err = batch.ErrNotFound
	}
	if errors.Is(err, batch.ErrNotFound) {
		return nil, notFound(name)
	}
	if err != nil {
		return nil, internal(err)
	}
	return j, nil
}

func (h *Handler) stop(ctx context.Context, name string) *opError {
	j, e := h.job(ctx, name)
	if e != nil {
		return e
	}
	if _, err := h.Engine.Cancel(ctx, "", j.ID); err != nil {
		return internal(err)
	}
	return nil
}

// ListRequest is ListTransformJobs' request; the filters served are
// NameContains and StatusEquals, newest first.
type ListRequest struct {
	NameContains string `json:"NameContains,omitempty"`
	StatusEquals string `json:"StatusEquals,omitempty"`
	MaxResults   int    `json:"MaxResults,omitempty"`
	NextToken    string `json:"NextToken,omitempty"`
	SortBy       string `json:"SortBy,omitempty"`
	SortOrder    string `json:"SortOrder,omitempty"`
}

// ListResponse is ListTransformJobs' answer.
type ListResponse struct {
	TransformJobSummaries []Summary `json:"TransformJobSummaries"`
	NextToken             string    `json:"NextToken,omitempty"`
}

func (h *Handler) list(ctx context.Context, req *ListRequest) (*ListResponse, *opError) {
	limit := req.MaxResults
	if limit == 0 {
		limit = 10
	}
	if limit < 1 || limit > 100 {
		return nil, validation("MaxResults must be from 1 to 100")
	}
	switch req.StatusEquals {
	case "", StatusInProgress, StatusCompleted, StatusFailed, StatusStopping, StatusStopped:
	default:
		return nil, validation("StatusEquals %q must be InProgress, Completed, Failed, Stopping or Stopped", req.StatusEquals)
	}
	if req.SortBy != "" && req.SortBy != "CreationTime" || req.SortOrder != "" && req.SortOrder != "Descending" {
		return nil, validation("transform jobs are listed by CreationTime, Descending; other orders are not served")
	}
	out := &ListResponse{TransformJobSummaries: []Summary{}}
	after := req.NextToken
	for {
		js, more, err := h.Engine.List(ctx, batch.Filter{Kind: transform.Kind, After: after, Limit: 100})
		if errors.Is(err, batch.ErrNotFound) {
			return nil, validation("NextToken %q is not one this API gave", req.NextToken)
		}
		if err != nil {
			return nil, internal(err)
		}
		for i, j := range js {
			v := h.describe(j)
			if req.NameContains != "" && !strings.Contains(strings.ToLower(j.ID), strings.ToLower(req.NameContains)) ||
				req.StatusEquals != "" && v.TransformJobStatus != req.StatusEquals {
				continue
			}
			out.TransformJobSummaries = append(out.TransformJobSummaries, v.Summary())
			if len(out.TransformJobSummaries) == limit {
				if more || i < len(js)-1 {
					out.NextToken = j.ID
				}
				return out, nil
			}
		}
		if !more {
			return out, nil
		}
		after = js[len(js)-1].ID
	}
}

// REST

func (h *Handler) restCreate(w http.ResponseWriter, r *http.Request) {
	body, e := api.ReadBody(w, r, 1<<20)
	if e != nil {
		admin.WriteError(w, r, e)
		return
	}
	var s transform.Spec
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		restError(w, r, validation("the body must be CreateTransformJob's JSON: %v", err))
		return
	}
	arn, oe := h.create(r.Context(), &s)
	if oe != nil {
		restError(w, r, oe)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"TransformJobArn": arn})
}

func (h *Handler) restDescribe(w http.ResponseWriter, r *http.Request) {
	j, oe := h.job(r.Context(), r.PathValue("name"))
	if oe != nil {
		restError(w, r, oe)
		return
	}
	writeJSON(w, http.StatusOK, h.describe(j))
}

func (h *Handler) restStop(w http.ResponseWriter, r *http.Request) {
	if oe := h.stop(r.Context(), r.PathValue("name")); oe != nil {
		restError(w, r, oe)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (h *Handler) restList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := ListRequest{NameContains: q.Get("NameContains"), StatusEquals: q.Get("StatusEquals"), NextToken: q.Get("NextToken")}
	if s := q.Get("MaxResults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			restError(w, r, validation("MaxResults must be a whole number from 1 to 100"))
			return
		}
		req.MaxResults = n
	}
	out, oe := h.list(r.Context(), &req)
	if oe != nil {
		restError(w, r, oe)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func restError(w http.ResponseWriter, r *http.Request, e *opError) {
	typ := llm.ErrInvalidRequest
	switch e.status {
	case http.StatusNotFound:
		typ = llm.ErrNotFound
	case http.StatusConflict:
		typ = "conflict_error"
	case http.StatusInternalServerError:
		typ = llm.ErrInternal
	}
	admin.WriteError(w, r, &llm.Error{Status: e.status, Type: typ, Message: e.message, Code: e.code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
