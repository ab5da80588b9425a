package jobs

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"iter"
	"path"
	"strconv"
	"strings"
	"time"

	bedrockapi "github.com/junctionhq/junction/internal/api/bedrock"
	"github.com/junctionhq/junction/internal/jobs/batch"
	"github.com/junctionhq/junction/internal/wire/bedrockwire"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// KindBedrock is the kind of Bedrock batch inference jobs.
const KindBedrock = "bedrock"

// BedrockSpec is CreateModelInvocationJob's request.
type BedrockSpec struct {
	JobName         string `json:"jobName"`
	RoleArn         string `json:"roleArn,omitempty"`
	ModelID         string `json:"modelId"`
	InputDataConfig struct {
		S3InputDataConfig struct {
			S3URI         string `json:"s3Uri"`
			S3InputFormat string `json:"s3InputFormat,omitempty"`
			S3BucketOwner string `json:"s3BucketOwner,omitempty"`
		} `json:"s3InputDataConfig"`
	} `json:"inputDataConfig"`
	OutputDataConfig struct {
		S3OutputDataConfig struct {
			S3URI             string `json:"s3Uri"`
			S3EncryptionKeyID string `json:"s3EncryptionKeyId,omitempty"`
		} `json:"s3OutputDataConfig"`
	} `json:"outputDataConfig"`
	TimeoutDurationInHours int    `json:"timeoutDurationInHours,omitempty"`
	ModelInvocationType    string `json:"modelInvocationType,omitempty"`
	Tags                   []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"tags,omitempty"`
	ClientRequestToken string `json:"clientRequestToken,omitempty"`
}

// Converse is the invocation type whose records are Converse bodies;
// InvokeModel (the default) takes the model's native body.
const Converse = "Converse"

func bedrockSpec(j *batch.Job) *BedrockSpec {
	var s BedrockSpec
	json.Unmarshal(j.Spec, &s)
	return &s
}

// Bedrock runs Bedrock batch inference jobs: input JSONL records
// {"recordId", "modelInput"} with the model's native body (or a Converse
// body), output one line per record, {"recordId", "modelInput",
// "modelOutput"} or {"recordId", "modelInput", "error"}, in input order,
// in OUTPUT/JOB_ID/INPUT_NAME.out beside manifest.json.out.
type Bedrock struct {
	Caller *batch.Caller
}

// Open opens the job's input object.
func (b *Bedrock) Open(ctx context.Context, j *batch.Job) (io.ReadCloser, error) {
	r, err := batch.OpenURI(ctx, bedrockSpec(j).InputDataConfig.S3InputDataConfig.S3URI)
	if err != nil {
		return nil, &batch.LineError{Code: "ValidationException", Message: "reading the input: " + err.Error()}
	}
	return r, nil
}

// bedrockRecord is one line of a job's input.
type bedrockRecord struct {
	RecordID   *string         `json:"recordId"`
	ModelInput json.RawMessage `json:"modelInput"`
}

// decode reads a record's modelInput as a canonical request and returns
// how to render its answer in the same shape.
func decode(s *BedrockSpec, input json.RawMessage) (*llm.Request, func(*llm.Response, string, time.Duration) ([]byte, error), error) {
	if len(input) == 0 || input[0] != '{' {
		return nil, nil, llm.BadRequest("modelInput", "modelInput must be a JSON object, the model's request body")
	}
	if s.ModelInvocationType == Converse {
		req, _, err := bedrockwire.DecodeConverseRequest(input)
		if err != nil {
			return nil, nil, err
		}
		req.Model = s.ModelID
		return req, func(resp *llm.Response, _ string, latency time.Duration) ([]byte, error) {
			return bedrockwire.EncodeConverseResponse(resp, latency)
		}, nil
	}
	req, render, err := bedrockapi.DecodeNative(input, s.ModelID)
	if err != nil {
		return nil, nil, err
	}
	req.Model = s.ModelID
	return req, func(resp *llm.Response, id string, _ time.Duration) ([]byte, error) { return render(resp, id) }, nil
}

// Validate checks that each line is a record whose modelInput decodes.
func (b *Bedrock) Validate(j *batch.Job) func(int, []byte) (string, *batch.LineError) {
	s := bedrockSpec(j)
	return func(n int, input []byte) (string, *batch.LineError) {
		bad := func(msg string) (string, *batch.LineError) {
			return "", &batch.LineError{Code: "ValidationException", Message: "line " + strconv.Itoa(n) + ": " + msg, Line: n}
		}
		var r bedrockRecord
		if err := json.Unmarshal(input, &r); err != nil {
			return bad("not a JSON object {\"recordId\", \"modelInput\"}: " + err.Error())
		}
		if r.ModelInput == nil {
			return bad("modelInput is required")
		}
		if _, _, err := decode(s, r.ModelInput); err != nil {
			return bad(llm.AsError(err).Message)
		}
		return s.ModelID, nil
	}
}

// outputRecord is one line of a job's output.
type outputRecord struct {
	RecordID    string          `json:"recordId"`
	ModelInput  json.RawMessage `json:"modelInput"`
	ModelOutput json.RawMessage `json:"modelOutput,omitempty"`
	Error       *recordError    `json:"error,omitempty"`
}

type recordError struct {
	ErrorCode    int    `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

// recordID is the id Junction gives a record that has none: its place in
// the input, 11 digits, like the ids in Bedrock's examples.
func recordID(r *bedrockRecord, idx int) string {
	if r.RecordID != nil && *r.RecordID != "" {
		return *r.RecordID
	}
	return strconv.FormatInt(int64(idx+1), 10)
}

// Run calls the model for one record through the gateway.
func (b *Bedrock) Run(ctx context.Context, j *batch.Job, rec batch.Record) batch.Result {
	s := bedrockSpec(j)
	var r bedrockRecord
	json.Unmarshal(rec.Input, &r)
	out := outputRecord{RecordID: recordID(&r, rec.Index), ModelInput: r.ModelInput}
	var res batch.Result
	req, render, err := decode(s, r.ModelInput)
	if err == nil {
		start := time.Now()
		resp, c, cerr := b.Caller.Chat(ctx, j, req)
		res.Attempts, err = c.Attempts, cerr
		if err == nil {
			res.InputTokens, res.OutputTokens = resp.Usage.InputTokens, resp.Usage.OutputTokens
			out.ModelOutput, err = render(resp, "msg_"+c.RequestID, time.Since(start))
		}
	}
	if err != nil {
		batch.RetryResult(&res, err)
		e := llm.AsError(err)
		out.ModelOutput = nil
		out.Error = &recordError{ErrorCode: e.Status, ErrorMessage: e.Public()}
	}
	res.Line, _ = json.Marshal(out)
	return res
}

// Manifest is manifest.json.out: the job's counts and token totals.
type Manifest struct {
	TotalRecordCount     int64 `json:"totalRecordCount"`
	ProcessedRecordCount int64 `json:"processedRecordCount"`
	SuccessRecordCount   int64 `json:"successRecordCount"`
	ErrorRecordCount     int64 `json:"errorRecordCount"`
	InputTokenCount      int64 `json:"inputTokenCount"`
	OutputTokenCount     int64 `json:"outputTokenCount"`
}

// outputDir is where a job's outputs go: the output URI, then the job id.
func outputDir(j *batch.Job) string {
	return strings.TrimSuffix(bedrockSpec(j).OutputDataConfig.S3OutputDataConfig.S3URI, "/") + "/" + j.ID + "/"
}

// Finish writes the records' lines, in input order, and the manifest.
func (b *Bedrock) Finish(ctx context.Context, j *batch.Job, entries iter.Seq2[batch.Entry, error]) (map[string]string, error) {
	s := bedrockSpec(j)
	dir := outputDir(j)
	name := path.Base(s.InputDataConfig.S3InputDataConfig.S3URI) + ".out"
	err := batch.WriteURI(ctx, dir+name, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 64<<10)
		for en, err := range entries {
			if err != nil {
				return err
			}
			if en.Done {
				bw.Write(en.Output)
				bw.WriteByte('\n')
			}
		}
		return bw.Flush()
	})
	if err != nil {
		return nil, err
	}
	m := Manifest{TotalRecordCount: j.Total, ProcessedRecordCount: j.Completed + j.Failed, SuccessRecordCount: j.Completed,
		ErrorRecordCount: j.Failed, InputTokenCount: j.InputTokens, OutputTokenCount: j.OutputTokens}
	err = batch.WriteURI(ctx, dir+"manifest.json.out", func(w io.Writer) error { return json.NewEncoder(w).Encode(m) })
	if err != nil {
		return nil, err
	}
	return map[string]string{"output_uri": dir + name, "manifest_uri": dir + "manifest.json.out"}, nil
}
