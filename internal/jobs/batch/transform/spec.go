// Package transform is SageMaker's batch transform on Junction's batch
// engine: a job reads every object under an S3 (or file://) prefix, or
// those a manifest lists, splits each into records (by line, or the whole
// object as one), packs them into requests (one record each, or as many
// as fit under MaxPayloadInMB), invokes a transient endpoint of the job's
// model through the gateway, and writes one <input>.out object per input
// object, each record's answer in input order, optionally joined with its
// input and filtered (DataProcessing).
//
// The engine's records are a transform job's requests: Open turns the
// inputs into a stream of request lines (the object, where its records
// begin, and their bytes), which the engine counts, runs, commits and
// resumes like any job's records, so a job killed halfway resumes without
// redoing or losing a request. As SageMaker does, an .out object is
// written only for an input all of whose records succeeded; the failed
// requests of an input are listed in <input>.errors instead.
//
// It is not the wire format: internal/api/transform serves
// CreateTransformJob and its siblings.
package transform

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"regexp"
	"strings"

	"github.com/junctionhq/junction/internal/blob"
)

// Kind is the batch engine's name for transform jobs.
const Kind = "transform"

// Values of the enumerated fields, as SageMaker spells them.
const (
	SplitNone = "None"
	SplitLine = "Line"

	SingleRecord = "SingleRecord"
	MultiRecord  = "MultiRecord"

	CompressionNone = "None"
	CompressionGzip = "Gzip"

	AssembleNone = "None"
	AssembleLine = "Line"

	JoinNone  = "None"
	JoinInput = "Input"

	S3Prefix     = "S3Prefix"
	ManifestFile = "ManifestFile"
)

// Defaults SageMaker documents.
const (
	DefaultMaxPayloadInMB      = 6
	DefaultInvocationsTimeout  = 600
	DefaultInvocationsRetries  = 3
	MaxPayloadLimitInMB        = 100
	maxEnvironmentEntries      = 16
	defaultConcurrentTransform = 1
)

// Spec is CreateTransformJob's request body, with SageMaker's member
// names. After Validate, its defaults are filled in.
type Spec struct {
	TransformJobName        string             `json:"TransformJobName"`
	ModelName               string             `json:"ModelName"`
	MaxConcurrentTransforms int                `json:"MaxConcurrentTransforms,omitempty"`
	MaxPayloadInMB          *int               `json:"MaxPayloadInMB,omitempty"`
	BatchStrategy           string             `json:"BatchStrategy,omitempty"`
	ModelClientConfig       *ModelClientConfig `json:"ModelClientConfig,omitempty"`
	Environment             map[string]string  `json:"Environment,omitempty"`
	TransformInput          TransformInput     `json:"TransformInput"`
	TransformOutput         TransformOutput    `json:"TransformOutput"`
	TransformResources      TransformResources `json:"TransformResources"`
	DataProcessing          *DataProcessing    `json:"DataProcessing,omitempty"`
	// DataCaptureConfig and ExperimentConfig are kept and shown, not used.
	DataCaptureConfig json.RawMessage `json:"DataCaptureConfig,omitempty"`
	ExperimentConfig  json.RawMessage `json:"ExperimentConfig,omitempty"`
	Tags              []Tag           `json:"Tags,omitempty"`
}

// ModelClientConfig bounds each invocation.
type ModelClientConfig struct {
	InvocationsTimeoutInSeconds int  `json:"InvocationsTimeoutInSeconds,omitempty"`
	InvocationsMaxRetries       *int `json:"InvocationsMaxRetries,omitempty"`
}

// TransformInput is where the job's records come from and how they split.
type TransformInput struct {
	DataSource      DataSource `json:"DataSource"`
	ContentType     string     `json:"ContentType,omitempty"`
	CompressionType string     `json:"CompressionType,omitempty"`
	SplitType       string     `json:"SplitType,omitempty"`
}

// DataSource names the input objects.
type DataSource struct {
	S3DataSource S3DataSource `json:"S3DataSource"`
}

// S3DataSource is a key prefix (S3Prefix) or a manifest listing objects
// (ManifestFile).
type S3DataSource struct {
	S3DataType string `json:"S3DataType"`
	S3URI      string `json:"S3Uri"`
}

// TransformOutput is where the answers go and how they are assembled.
type TransformOutput struct {
	S3OutputPath string `json:"S3OutputPath"`
	Accept       string `json:"Accept,omitempty"`
	AssembleWith string `json:"AssembleWith,omitempty"`
	KmsKeyID     string `json:"KmsKeyId,omitempty"`
}

// TransformResources are the instances Junction starts for the job.
type TransformResources struct {
	InstanceType   string `json:"InstanceType"`
	InstanceCount  int    `json:"InstanceCount"`
	VolumeKmsKeyID string `json:"VolumeKmsKeyId,omitempty"`
}

// DataProcessing filters each record's input, joins it to the answer, and
// filters the result (JSONPath, see jsonpath.go).
type DataProcessing struct {
	InputFilter  string `json:"InputFilter,omitempty"`
	OutputFilter string `json:"OutputFilter,omitempty"`
	JoinSource   string `json:"JoinSource,omitempty"`
}

// Tag is a key-value pair kept with the job.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// FieldError is a problem with one field of a request.
type FieldError struct {
	Field, Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// namePattern is SageMaker's pattern for job and model names.
var namePattern = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`)

// ValidName reports whether s is a valid transform job name.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// Validate checks the request as SageMaker would, fills in its defaults,
// and returns the first problem found.
func (s *Spec) Validate() *FieldError {
	bad := func(field, format string, args ...any) *FieldError {
		return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
	}
	in, out, res := &s.TransformInput, &s.TransformOutput, &s.TransformResources
	src := &in.DataSource.S3DataSource
	if !ValidName(s.TransformJobName) {
		return bad("TransformJobName", "must be 1 to 63 letters, digits and hyphens, starting and ending with a letter or digit")
	}
	if s.ModelName == "" {
		return bad("ModelName", "is required: the name of a model created with POST /api/v1/models")
	}
	if src.S3DataType == "" {
		src.S3DataType = S3Prefix
	}
	if src.S3DataType != S3Prefix && src.S3DataType != ManifestFile {
		return bad("TransformInput.DataSource.S3DataSource.S3DataType", "%q is not supported: use S3Prefix or ManifestFile", src.S3DataType)
	}
	if src.S3URI == "" {
		return bad("TransformInput.DataSource.S3DataSource.S3Uri", "is required: an s3:// or file:// URI")
	}
	if _, err := blob.ParseLocation(src.S3URI); err != nil {
		return bad("TransformInput.DataSource.S3DataSource.S3Uri", "%v", err)
	}
	if in.SplitType == "" {
		in.SplitType = SplitNone
	}
	if in.SplitType != SplitNone && in.SplitType != SplitLine {
		return bad("TransformInput.SplitType", "%q is not supported: use None or Line", in.SplitType)
	}
	if in.CompressionType == "" {
		in.CompressionType = CompressionNone
	}
	if in.CompressionType != CompressionNone && in.CompressionType != CompressionGzip {
		return bad("TransformInput.CompressionType", "%q must be None or Gzip", in.CompressionType)
	}
	if out.S3OutputPath == "" {
		return bad("TransformOutput.S3OutputPath", "is required: the s3:// or file:// prefix the .out objects go under")
	}
	if _, err := blob.ParseLocation(out.S3OutputPath); err != nil {
		return bad("TransformOutput.S3OutputPath", "%v", err)
	}
	if out.AssembleWith == "" {
		out.AssembleWith = AssembleNone
	}
	if out.AssembleWith != AssembleNone && out.AssembleWith != AssembleLine {
		return bad("TransformOutput.AssembleWith", "%q must be None or Line", out.AssembleWith)
	}
	if res.InstanceType == "" {
		return bad("TransformResources.InstanceType", "is required: an instance type of the catalog (GET /api/v1/instance-types)")
	}
	if res.InstanceCount == 0 {
		res.InstanceCount = 1
	}
	if res.InstanceCount < 1 || res.InstanceCount > 100 {
		return bad("TransformResources.InstanceCount", "must be from 1 to 100")
	}
	if s.BatchStrategy == "" {
		s.BatchStrategy = MultiRecord
	}
	if s.BatchStrategy != MultiRecord && s.BatchStrategy != SingleRecord {
		return bad("BatchStrategy", "%q must be MultiRecord or SingleRecord", s.BatchStrategy)
	}
	if in.SplitType == SplitNone {
		// A whole object is one record: there is nothing to pack.
		s.BatchStrategy = SingleRecord
	}
	if s.MaxPayloadInMB == nil {
		n := DefaultMaxPayloadInMB
		s.MaxPayloadInMB = &n
	}
	if p := *s.MaxPayloadInMB; p < 0 || p > MaxPayloadLimitInMB {
		return bad("MaxPayloadInMB", "must be from 0 to %d", MaxPayloadLimitInMB)
	}
	if *s.MaxPayloadInMB == 0 && in.SplitType != SplitNone {
		return bad("MaxPayloadInMB", "0 (no limit) is only for SplitType None; a split input needs a size to pack records to")
	}
	if s.MaxConcurrentTransforms < 0 {
		return bad("MaxConcurrentTransforms", "must be 0 (the default) or more")
	}
	if s.MaxConcurrentTransforms*(*s.MaxPayloadInMB) > MaxPayloadLimitInMB {
		return bad("MaxConcurrentTransforms", "MaxConcurrentTransforms × MaxPayloadInMB (%d × %d) must not pass %d",
			s.MaxConcurrentTransforms, *s.MaxPayloadInMB, MaxPayloadLimitInMB)
	}
	if s.ModelClientConfig == nil {
		s.ModelClientConfig = &ModelClientConfig{}
	}
	mc := s.ModelClientConfig
	if mc.InvocationsTimeoutInSeconds == 0 {
		mc.InvocationsTimeoutInSeconds = DefaultInvocationsTimeout
	}
	if mc.InvocationsTimeoutInSeconds < 1 || mc.InvocationsTimeoutInSeconds > 3600 {
		return bad("ModelClientConfig.InvocationsTimeoutInSeconds", "must be from 1 to 3600")
	}
	if mc.InvocationsMaxRetries == nil {
		n := DefaultInvocationsRetries
		mc.InvocationsMaxRetries = &n
	}
	if r := *mc.InvocationsMaxRetries; r < 0 || r > 3 {
		return bad("ModelClientConfig.InvocationsMaxRetries", "must be from 0 to 3")
	}
	if len(s.Environment) > maxEnvironmentEntries {
		return bad("Environment", "holds %d entries; at most %d", len(s.Environment), maxEnvironmentEntries)
	}
	if dp := s.DataProcessing; dp != nil {
		if dp.JoinSource == "" {
			dp.JoinSource = JoinNone
		}
		if dp.JoinSource != JoinNone && dp.JoinSource != JoinInput {
			return bad("DataProcessing.JoinSource", "%q must be None or Input", dp.JoinSource)
		}
		for field, p := range map[string]string{"DataProcessing.InputFilter": dp.InputFilter, "DataProcessing.OutputFilter": dp.OutputFilter} {
			if p == "" {
				continue
			}
			if _, err := ParsePath(p); err != nil {
				return bad(field, "%v", err)
			}
		}
		if dp.active() {
			if f := s.format(); f == formatOther {
				return bad("DataProcessing", "filters and joins need JSON or CSV input: TransformInput.ContentType is %q (use application/json, application/jsonlines or text/csv)", in.ContentType)
			}
			if in.SplitType != SplitLine && dp.JoinSource == JoinInput {
				return bad("DataProcessing.JoinSource", "joining each answer to its input needs SplitType Line")
			}
			if (dp.JoinSource == JoinInput || dp.OutputFilter != "" && dp.OutputFilter != "$") && s.BatchStrategy == MultiRecord && out.AssembleWith != AssembleLine {
				return bad("TransformOutput.AssembleWith", "must be Line when the answers to a MultiRecord request are joined or filtered record by record")
			}
		}
	}
	for i, t := range s.Tags {
		if t.Key == "" {
			return bad(fmt.Sprintf("Tags[%d].Key", i), "is required")
		}
	}
	return nil
}

// active reports whether the job filters or joins at all.
func (dp *DataProcessing) active() bool {
	return dp != nil && (dp.InputFilter != "" && dp.InputFilter != "$" || dp.OutputFilter != "" && dp.OutputFilter != "$" || dp.JoinSource == JoinInput)
}

// Data formats the filters understand.
const (
	formatJSON = iota
	formatCSV
	formatOther
)

// format is how the filters read a record: as JSON, as a CSV row, or not
// at all.
func (s *Spec) format() int {
	ct := s.TransformInput.ContentType
	if ct == "" {
		return formatJSON
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return formatOther
	}
	switch {
	case mt == "text/csv":
		return formatCSV
	case mt == "application/json", mt == "application/jsonlines", mt == "application/x-jsonlines", mt == "application/jsonl",
		strings.HasSuffix(mt, "+json"):
		return formatJSON
	}
	return formatOther
}

// EndpointName is the name of the transient model, endpoint config and
// endpoint that serve job id: deterministic, so a job resumed after a
// crash finds them, and within hosting's 63 characters.
func EndpointName(id string) string {
	sum := sha256.Sum256([]byte(id))
	short := id
	if len(short) > 40 {
		short = strings.TrimRight(short[:40], "-")
	}
	return "transform-" + short + "-" + hex.EncodeToString(sum[:4])
}
