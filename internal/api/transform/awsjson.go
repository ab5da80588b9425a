package transform

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/jobs/batch/transform"
)

// The AWS JSON 1.1 protocol, as the SageMaker SDKs speak it: every
// operation is POST / with its name in X-Amz-Target
// ("SageMaker.CreateTransformJob") and its input as a JSON body; the
// answer is the output as JSON, or an error as {"__type": code,
// "message": ...} with the code in X-Amzn-ErrorType as well.

// TargetPrefix begins the X-Amz-Target of SageMaker's operations.
const TargetPrefix = "SageMaker."

// contentType is the protocol's media type.
const contentType = "application/x-amz-json-1.1"

func (h *Handler) awsJSON(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	if !ok {
		writeAWSError(w, &opError{http.StatusBadRequest, "UnknownOperationException",
			"POST / serves SageMaker's operations: send X-Amz-Target: SageMaker.<Operation>, as the SageMaker SDKs do"})
		return
	}
	body, e := h.Auth.ReadBody(w, r, 1<<20)
	if e != nil {
		code := e.Code
		if code == "" {
			code = "ValidationException"
		}
		writeAWSError(w, &opError{e.Status, code, e.Message})
		return
	}
	if k := api.InfoFrom(r.Context()).Key; k == nil || !k.Admin {
		writeAWSError(w, &opError{http.StatusForbidden, "AccessDeniedException",
			"SageMaker's control-plane operations need an admin key, or access keys issued for one"})
		return
	}
	decode := func(v any) bool {
		if len(body) == 0 {
			body = []byte("{}")
		}
		if err := json.Unmarshal(body, v); err != nil {
			writeAWSError(w, validation("the body is not %s's JSON input: %v", op, err))
			return false
		}
		return true
	}
	ctx := r.Context()
	switch op {
	case "CreateTransformJob":
		var s transform.Spec
		if !decode(&s) {
			return
		}
		arn, oe := h.create(ctx, &s)
		if oe != nil {
			writeAWSError(w, oe)
			return
		}
		writeAWS(w, map[string]string{"TransformJobArn": arn})
	case "DescribeTransformJob":
		var in struct{ TransformJobName string }
		if !decode(&in) {
			return
		}
		j, oe := h.job(ctx, in.TransformJobName)
		if oe != nil {
			writeAWSError(w, oe)
			return
		}
		writeAWS(w, h.describe(j))
	case "ListTransformJobs":
		var in ListRequest
		if !decode(&in) {
			return
		}
		out, oe := h.list(ctx, &in)
		if oe != nil {
			writeAWSError(w, oe)
			return
		}
		writeAWS(w, out)
	case "StopTransformJob":
		var in struct{ TransformJobName string }
		if !decode(&in) {
			return
		}
		if oe := h.stop(ctx, in.TransformJobName); oe != nil {
			writeAWSError(w, oe)
			return
		}
		writeAWS(w, struct{}{})
	default:
		writeAWSError(w, &opError{http.StatusBadRequest, "UnknownOperationException",
			"operation " + op + " is not served; Junction serves CreateTransformJob, DescribeTransformJob, ListTransformJobs and StopTransformJob"})
	}
}

func writeAWS(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(v)
}

// writeAWSError writes an error as SageMaker does: 400 for the caller's
// faults (the protocol's choice, whatever the REST status), 500 for
// Junction's own.
func writeAWSError(w http.ResponseWriter, e *opError) {
	status := http.StatusBadRequest
	switch {
	case e.status >= 500:
		status = e.status
	case e.status == http.StatusForbidden:
		status = http.StatusForbidden
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-ErrorType", e.code)
	w.WriteHeader(status)
	// Message and message: the SDKs read either.
	json.NewEncoder(w).Encode(map[string]string{"__type": e.code, "Message": e.message, "message": e.message})
}
