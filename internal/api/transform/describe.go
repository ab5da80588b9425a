package transform

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/junctionhq/junction/internal/jobs/batch"
	"github.com/junctionhq/junction/internal/jobs/batch/transform"
)

// SageMaker's transform job statuses.
const (
	StatusInProgress = "InProgress"
	StatusCompleted  = "Completed"
	StatusFailed     = "Failed"
	StatusStopping   = "Stopping"
	StatusStopped    = "Stopped"
)

// Timestamp is a time as the AWS JSON protocol writes it: seconds since
// the epoch, a JSON number.
type Timestamp float64

// At returns the Timestamp of t.
func At(t time.Time) *Timestamp {
	ts := Timestamp(float64(t.UnixMilli()) / 1000)
	return &ts
}

// Time is the Timestamp as a time.
func (t Timestamp) Time() time.Time { return time.UnixMilli(int64(float64(t) * 1000)) }

// Description is DescribeTransformJob's answer: SageMaker's members, and
// Progress, Junction's own, which SDKs pass over.
type Description struct {
	TransformJobName        string                       `json:"TransformJobName"`
	TransformJobArn         string                       `json:"TransformJobArn"`
	TransformJobStatus      string                       `json:"TransformJobStatus"`
	FailureReason           string                       `json:"FailureReason,omitempty"`
	ModelName               string                       `json:"ModelName"`
	MaxConcurrentTransforms int                          `json:"MaxConcurrentTransforms,omitempty"`
	ModelClientConfig       *transform.ModelClientConfig `json:"ModelClientConfig,omitempty"`
	MaxPayloadInMB          *int                         `json:"MaxPayloadInMB,omitempty"`
	BatchStrategy           string                       `json:"BatchStrategy,omitempty"`
	Environment             map[string]string            `json:"Environment,omitempty"`
	TransformInput          transform.TransformInput     `json:"TransformInput"`
	TransformOutput         transform.TransformOutput    `json:"TransformOutput"`
	TransformResources      transform.TransformResources `json:"TransformResources"`
	DataProcessing          *transform.DataProcessing    `json:"DataProcessing,omitempty"`
	DataCaptureConfig       json.RawMessage              `json:"DataCaptureConfig,omitempty"`
	ExperimentConfig        json.RawMessage              `json:"ExperimentConfig,omitempty"`
	CreationTime            *Timestamp                   `json:"CreationTime"`
	TransformStartTime      *Timestamp                   `json:"TransformStartTime,omitempty"`
	TransformEndTime        *Timestamp                   `json:"TransformEndTime,omitempty"`
	LastModifiedTime        *Timestamp                   `json:"LastModifiedTime,omitempty"`
	Progress                Progress                     `json:"Progress"`
}

// Progress is how far a job is, in requests (a request is one record with
// SingleRecord, a packed batch of them with MultiRecord).
type Progress struct {
	// Requests is the job's requests, once its input has been read;
	// Completed and Failed are done, Pending not yet.
	Requests  int64 `json:"Requests"`
	Completed int64 `json:"Completed"`
	Failed    int64 `json:"Failed"`
	Pending   int64 `json:"Pending"`
	// Retries counts invocations beyond one per request.
	Retries       int64   `json:"Retries"`
	RatePerSecond float64 `json:"RatePerSecond"`
	ETASeconds    float64 `json:"ETASeconds"`
	// Output is what the job wrote once it ended: the .out objects, the
	// inputs that got none, the failed records, the first .errors URI.
	Output map[string]string `json:"Output,omitempty"`
}

// Summary is a ListTransformJobs entry.
type Summary struct {
	TransformJobName   string     `json:"TransformJobName"`
	TransformJobArn    string     `json:"TransformJobArn"`
	CreationTime       *Timestamp `json:"CreationTime"`
	TransformEndTime   *Timestamp `json:"TransformEndTime,omitempty"`
	LastModifiedTime   *Timestamp `json:"LastModifiedTime,omitempty"`
	TransformJobStatus string     `json:"TransformJobStatus"`
	FailureReason      string     `json:"FailureReason,omitempty"`
}

// Summary returns the list entry of a description.
func (d *Description) Summary() Summary {
	return Summary{TransformJobName: d.TransformJobName, TransformJobArn: d.TransformJobArn, CreationTime: d.CreationTime,
		TransformEndTime: d.TransformEndTime, LastModifiedTime: d.LastModifiedTime, TransformJobStatus: d.TransformJobStatus,
		FailureReason: d.FailureReason}
}

// Status is SageMaker's status of a job, and why it failed.
func Status(j *batch.Job) (status, reason string) {
	switch j.Status {
	case batch.Cancelling:
		return StatusStopping, ""
	case batch.Cancelled:
		return StatusStopped, ""
	case batch.Failed:
		if len(j.Errors) > 0 {
			return StatusFailed, j.Errors[0].Message
		}
		return StatusFailed, "the job failed"
	case batch.Expired:
		return StatusFailed, fmt.Sprintf("the job did not finish within %s", Window)
	case batch.Completed:
		if j.Failed == 0 && j.Output[transform.FailedObjects] == "0" {
			return StatusCompleted, ""
		}
		records, _ := strconv.Atoi(j.Output[transform.FailedRecords])
		// As SageMaker does, a job with any input that failed is Failed,
		// though the inputs that succeeded have their .out.
		return StatusFailed, fmt.Sprintf("%d of %d requests failed (%d records); %s of the inputs got no .out; the first input's failures are listed in %s",
			j.Failed, j.Total, records, j.Output[transform.FailedObjects], j.Output[transform.FirstErrors])
	}
	return StatusInProgress, ""
}

// describe is Describe with the MaxConcurrentTransforms the job runs with,
// when its container chose it.
func (h *Handler) describe(j *batch.Job) *Description {
	d := Describe(h.Engine, j)
	if h.Kind != nil && d.MaxConcurrentTransforms == 0 {
		d.MaxConcurrentTransforms = h.Kind.Concurrency(j)
	}
	return d
}

// Describe puts a job in DescribeTransformJob's shape.
func Describe(e *batch.Engine, j *batch.Job) *Description {
	s := transform.SpecOf(j)
	status, reason := Status(j)
	rate, eta := e.Rate(j)
	d := &Description{TransformJobName: j.ID, TransformJobArn: ARN(j.ID), TransformJobStatus: status, FailureReason: reason,
		ModelName: s.ModelName, MaxConcurrentTransforms: s.MaxConcurrentTransforms, ModelClientConfig: s.ModelClientConfig,
		MaxPayloadInMB: s.MaxPayloadInMB, BatchStrategy: s.BatchStrategy, Environment: s.Environment, TransformInput: s.TransformInput,
		TransformOutput: s.TransformOutput, TransformResources: s.TransformResources, DataProcessing: s.DataProcessing,
		DataCaptureConfig: s.DataCaptureConfig, ExperimentConfig: s.ExperimentConfig, CreationTime: At(j.CreatedAt),
		Progress: Progress{Requests: j.Total, Completed: j.Completed, Failed: j.Failed, Pending: j.Pending(), Retries: j.Retries,
			RatePerSecond: rate, ETASeconds: eta.Seconds(), Output: j.Output}}
	if t, ok := j.Times[batch.InProgress]; ok {
		d.TransformStartTime = At(time.Unix(t, 0))
	}
	var last int64
	for _, t := range j.Times {
		last = max(last, t)
	}
	if last > 0 {
		d.LastModifiedTime = At(time.Unix(last, 0))
	}
	if j.Status.Terminal() {
		d.TransformEndTime = d.LastModifiedTime
	}
	return d
}
