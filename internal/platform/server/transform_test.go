package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/jobs/batch/transform"
	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/testkit/junctiontest"
	"github.com/junctionhq/junction/internal/testkit/s3test"
)

// controlClient is the AWS SDK's SageMaker (control-plane) client as an
// application would configure it for Junction, signing with access keys
// issued for an admin key.
func (j *junction) controlClient() *sagemaker.Client {
	j.t.Helper()
	isolateAWS(j.t)
	status, _, b := j.do("POST", "/api/v1/keys", adminKey, `{"name": "ops", "admin": true}`)
	if status != http.StatusCreated {
		j.t.Fatalf("create admin key: %d %s", status, b)
	}
	var key struct{ ID string }
	json.Unmarshal(b, &key)
	akid, secret := j.awsCredentials(key.ID)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(akid, secret, "")}
	return sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) {
		o.BaseEndpoint = aws.String(j.url)
		o.RetryMaxAttempts = 1
	})
}

// getObject reads an object of the test S3 server; ok is false when it is
// not there.
func getObject(t *testing.T, bucket, key string) (data []byte, ok bool) {
	t.Helper()
	out, err := s3test.Client(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		if strings.Contains(err.Error(), "NoSuchKey") || strings.Contains(err.Error(), "404") {
			return nil, false
		}
		t.Fatalf("get s3://%s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

// waitTransform polls DescribeTransformJob until the job has ended.
func waitTransform(t *testing.T, sm *sagemaker.Client, name string, within time.Duration) *sagemaker.DescribeTransformJobOutput {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		d, err := sm.DescribeTransformJob(context.Background(), &sagemaker.DescribeTransformJobInput{TransformJobName: aws.String(name)})
		if err != nil {
			t.Fatalf("describe %s: %v", name, err)
		}
		switch d.TransformJobStatus {
		case smtypes.TransformJobStatusCompleted, smtypes.TransformJobStatusFailed, smtypes.TransformJobStatusStopped:
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("transform job %s still %s after %s", name, d.TransformJobStatus, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jsonLines makes n records {"id", "inputs", "task"} whose texts are
// padded to about size bytes.
func jsonLines(prefix string, n, size int) ([]byte, []string) {
	var b bytes.Buffer
	var texts []string
	for i := range n {
		text := fmt.Sprintf("the %s site is down again, record %d", prefix, i)
		if pad := size - len(text); pad > 0 {
			text += strings.Repeat(" please fix it", pad/14)
		}
		texts = append(texts, text)
		line, _ := json.Marshal(map[string]string{"id": fmt.Sprintf("%s-%d", prefix, i), "inputs": text, "task": "classify"})
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes(), texts
}

// expected answers texts as the reference endpoint answers each alone:
// one invocation of the batch contract (application/jsonlines), whose
// lines are exactly the single invocations' bodies.
func (j *junction) expected(endpoint string, texts []string) []string {
	j.t.Helper()
	var body bytes.Buffer
	for _, text := range texts {
		line, _ := json.Marshal(map[string]string{"inputs": text})
		body.Write(line)
		body.WriteByte('\n')
	}
	status, _, b := j.invoke(endpoint, body.String(), "Content-Type", "application/jsonlines")
	if status != http.StatusOK {
		j.t.Fatalf("reference invocation: %d %s", status, b)
	}
	var out []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		var item struct{ Prediction json.RawMessage }
		if err := json.Unmarshal([]byte(line), &item); err != nil || item.Prediction == nil {
			j.t.Fatalf("reference answer line %q", line)
		}
		out = append(out, string(item.Prediction))
	}
	if len(out) != len(texts) {
		j.t.Fatalf("reference answered %d lines for %d texts", len(out), len(texts))
	}
	return out
}

func gzipped(t *testing.T, data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestTransformJobsWithTheSageMakerSDK runs SageMaker batch transform jobs
// through the AWS SDK's sagemaker client over inputs in a real S3 server,
// on transient instances of a reference model: a MultiRecord job over a
// prefix of Line-split JSON objects with an input filter, a join and an
// output filter, and a SingleRecord job over gzipped objects, one of
// which holds a record the model refuses. Every output is compared record
// by record with the model's own answers.
func TestTransformJobsWithTheSageMakerSDK(t *testing.T) {
	bucket := s3test.Bucket(t)
	big, bigTexts := jsonLines("big", 2500, 480) // ~1.3 MB: two requests of at most 1 MB
	small, smallTexts := jsonLines("small", 30, 0)
	one, oneTexts := jsonLines("one", 1, 0)
	s3test.Put(t, bucket, "in/big.jsonl", big)
	s3test.Put(t, bucket, "in/part/small.jsonl", small)
	s3test.Put(t, bucket, "in/part/one.jsonl", one)
	s3test.Put(t, bucket, "in/empty.jsonl", nil)
	s3test.Put(t, bucket, "inbox/not-input.jsonl", one)

	good, goodTexts := jsonLines("good", 20, 0)
	bad, badTexts := jsonLines("bad", 10, 0)
	bad = bytes.Replace(bad, []byte(`"inputs":"`+badTexts[6]+`"`), []byte(`"inputs":""`), 1) // line 7: refused by the model
	s3test.Put(t, bucket, "gz/good.jsonl.gz", gzipped(t, good))
	s3test.Put(t, bucket, "gz/bad.jsonl.gz", gzipped(t, bad))

	s3test.Put(t, bucket, "notes/n1.txt", []byte("I was charged twice"))
	s3test.Put(t, bucket, "notes/deep/n2.txt", []byte("the site is down again"))
	s3test.Put(t, bucket, "notes/unlisted.txt", []byte("not in the manifest"))
	s3test.Put(t, bucket, "manifest.json", []byte(`[{"prefix": "s3://`+bucket+`/notes/"}, "n1.txt", "deep/n2.txt"]`))

	j := startHosted(t, t.TempDir(), "", s3YAML(t)+"batch: {poll_interval: 50ms}\n")
	j.model("intent", demoArtifact(t), "byoc", nil)
	sm := j.controlClient()
	ctx := context.Background()

	_, err := sm.CreateTransformJob(ctx, &sagemaker.CreateTransformJobInput{
		TransformJobName:        aws.String("multi"),
		ModelName:               aws.String("intent"),
		BatchStrategy:           smtypes.BatchStrategyMultiRecord,
		MaxPayloadInMB:          aws.Int32(1),
		MaxConcurrentTransforms: aws.Int32(2),
		TransformInput: &smtypes.TransformInput{
			DataSource:  &smtypes.TransformDataSource{S3DataSource: &smtypes.TransformS3DataSource{S3DataType: smtypes.S3DataTypeS3Prefix, S3Uri: aws.String("s3://" + bucket + "/in/")}},
			ContentType: aws.String("application/jsonlines"),
			SplitType:   smtypes.SplitTypeLine,
		},
		TransformOutput:    &smtypes.TransformOutput{S3OutputPath: aws.String("s3://" + bucket + "/out/multi"), AssembleWith: smtypes.AssemblyTypeLine},
		TransformResources: &smtypes.TransformResources{InstanceType: smtypes.TransformInstanceType("ml.g6.xlarge"), InstanceCount: aws.Int32(2)},
		DataProcessing: &smtypes.DataProcessing{InputFilter: aws.String("$['inputs','task']"), JoinSource: smtypes.JoinSourceInput,
			OutputFilter: aws.String("$['id','SageMakerOutput']")},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sm.CreateTransformJob(ctx, &sagemaker.CreateTransformJobInput{
		TransformJobName: aws.String("single"),
		ModelName:        aws.String("intent"),
		BatchStrategy:    smtypes.BatchStrategySingleRecord,
		TransformInput: &smtypes.TransformInput{
			DataSource:      &smtypes.TransformDataSource{S3DataSource: &smtypes.TransformS3DataSource{S3DataType: smtypes.S3DataTypeS3Prefix, S3Uri: aws.String("s3://" + bucket + "/gz/")}},
			ContentType:     aws.String("application/json"),
			SplitType:       smtypes.SplitTypeLine,
			CompressionType: smtypes.CompressionTypeGzip,
		},
		TransformOutput:    &smtypes.TransformOutput{S3OutputPath: aws.String("s3://" + bucket + "/out/single/"), AssembleWith: smtypes.AssemblyTypeLine},
		TransformResources: &smtypes.TransformResources{InstanceType: smtypes.TransformInstanceType("ml.g6.xlarge"), InstanceCount: aws.Int32(1)},
		DataProcessing:     &smtypes.DataProcessing{InputFilter: aws.String("$['inputs','task']"), JoinSource: smtypes.JoinSourceNone},
	})
	if err != nil {
		t.Fatal(err)
	}

	// Whole objects a manifest lists, one record each.
	_, err = sm.CreateTransformJob(ctx, &sagemaker.CreateTransformJobInput{
		TransformJobName: aws.String("manifest"),
		ModelName:        aws.String("intent"),
		TransformInput: &smtypes.TransformInput{
			DataSource:  &smtypes.TransformDataSource{S3DataSource: &smtypes.TransformS3DataSource{S3DataType: smtypes.S3DataTypeManifestFile, S3Uri: aws.String("s3://" + bucket + "/manifest.json")}},
			ContentType: aws.String("text/plain"),
		},
		TransformOutput:    &smtypes.TransformOutput{S3OutputPath: aws.String("s3://" + bucket + "/out/manifest/")},
		TransformResources: &smtypes.TransformResources{InstanceType: "ml.g6.xlarge", InstanceCount: aws.Int32(1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	// A slow job, stopped after its first request: its input, not done,
	// gets no .out.
	_, err = sm.CreateTransformJob(ctx, &sagemaker.CreateTransformJobInput{
		TransformJobName: aws.String("stopped"),
		ModelName:        aws.String("intent"),
		BatchStrategy:    smtypes.BatchStrategySingleRecord,
		Environment: map[string]string{"JUNCTION_MODEL_SERVER_DELAY": "300ms",
			"JUNCTION_MODEL_SERVER_EXECUTION_PARAMETERS": `{"MaxConcurrentTransforms": 3}`},
		TransformInput: &smtypes.TransformInput{
			DataSource:  &smtypes.TransformDataSource{S3DataSource: &smtypes.TransformS3DataSource{S3DataType: smtypes.S3DataTypeS3Prefix, S3Uri: aws.String("s3://" + bucket + "/in/part/small")}},
			ContentType: aws.String("application/json"),
			SplitType:   smtypes.SplitTypeLine,
		},
		TransformOutput:    &smtypes.TransformOutput{S3OutputPath: aws.String("s3://" + bucket + "/out/stopped/")},
		TransformResources: &smtypes.TransformResources{InstanceType: "ml.g6.xlarge", InstanceCount: aws.Int32(1)},
		DataProcessing:     &smtypes.DataProcessing{InputFilter: aws.String("$['inputs','task']")},
	})
	if err != nil {
		t.Fatal(err)
	}

	// A second job of the same name, a model that does not exist, and a
	// bad field are refused with SageMaker's errors.
	var inUse *smtypes.ResourceInUse
	if _, err := sm.CreateTransformJob(ctx, &sagemaker.CreateTransformJobInput{TransformJobName: aws.String("multi"), ModelName: aws.String("intent"),
		TransformInput:     &smtypes.TransformInput{DataSource: &smtypes.TransformDataSource{S3DataSource: &smtypes.TransformS3DataSource{S3DataType: smtypes.S3DataTypeS3Prefix, S3Uri: aws.String("s3://" + bucket + "/in/")}}},
		TransformOutput:    &smtypes.TransformOutput{S3OutputPath: aws.String("s3://" + bucket + "/x/")},
		TransformResources: &smtypes.TransformResources{InstanceType: "ml.g6.xlarge", InstanceCount: aws.Int32(1)}}); !errors.As(err, &inUse) {
		t.Fatalf("a second job named multi: %v", err)
	}
	for _, c := range []struct {
		in   sagemaker.CreateTransformJobInput
		want string
	}{
		{sagemaker.CreateTransformJobInput{TransformJobName: aws.String("nomodel"), ModelName: aws.String("missing")}, `Could not find model "missing"`},
		{sagemaker.CreateTransformJobInput{TransformJobName: aws.String("big-payload"), ModelName: aws.String("intent"), MaxPayloadInMB: aws.Int32(500)}, "MaxPayloadInMB"},
	} {
		in := c.in
		in.TransformInput = &smtypes.TransformInput{DataSource: &smtypes.TransformDataSource{S3DataSource: &smtypes.TransformS3DataSource{S3DataType: smtypes.S3DataTypeS3Prefix, S3Uri: aws.String("s3://" + bucket + "/in/")}}}
		in.TransformOutput = &smtypes.TransformOutput{S3OutputPath: aws.String("s3://" + bucket + "/x/")}
		in.TransformResources = &smtypes.TransformResources{InstanceType: "ml.g6.xlarge", InstanceCount: aws.Int32(1)}
		_, err := sm.CreateTransformJob(ctx, &in)
		if err == nil || !strings.Contains(err.Error(), "ValidationException") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("create %s: %v, want a ValidationException naming %s", *in.TransformJobName, err, c.want)
		}
	}
	var missing *smtypes.ResourceNotFound
	if _, err := sm.DescribeTransformJob(ctx, &sagemaker.DescribeTransformJobInput{TransformJobName: aws.String("nomodel")}); !errors.As(err, &missing) {
		t.Fatalf("describe a job never made: %v", err)
	}

	var view transformView
	junctiontest.Eventually(t, "the stopped job's first request done", func() bool {
		j.admin("GET", "/api/v1/transform-jobs/stopped", nil, http.StatusOK, &view)
		return view.Progress.Completed > 0
	})
	// It left MaxConcurrentTransforms to its container, which asked for 3.
	if d, err := sm.DescribeTransformJob(ctx, &sagemaker.DescribeTransformJobInput{TransformJobName: aws.String("stopped")}); err != nil ||
		aws.ToInt32(d.MaxConcurrentTransforms) != 3 {
		t.Fatalf("the stopped job's concurrency: %v %v", err, d.MaxConcurrentTransforms)
	}
	if _, err := sm.StopTransformJob(ctx, &sagemaker.StopTransformJobInput{TransformJobName: aws.String("stopped")}); err != nil {
		t.Fatal(err)
	}
	if d := waitTransform(t, sm, "stopped", time.Minute); d.TransformJobStatus != smtypes.TransformJobStatusStopped {
		t.Fatalf("stopped ended %s", d.TransformJobStatus)
	}
	if keys := s3test.Keys(t, bucket, "out/stopped/"); len(keys) != 0 {
		t.Fatalf("a stopped job wrote the input it had not finished: %v", keys)
	}

	multi := waitTransform(t, sm, "multi", 3*time.Minute)
	single := waitTransform(t, sm, "single", 3*time.Minute)

	// The answers the model gives each text alone, from an endpoint of
	// the same model.
	j.endpointConfig("intent-c", hosting.Variant{Name: "a", Model: "intent", InstanceType: "ml.g6.xlarge"})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "intent", "config": "intent-c"}, http.StatusCreated, nil)
	j.waitEndpoint("intent", 60*time.Second, inService)

	if multi.TransformJobStatus != smtypes.TransformJobStatusCompleted || multi.FailureReason != nil {
		t.Fatalf("multi ended %s (%s)", multi.TransformJobStatus, aws.ToString(multi.FailureReason))
	}
	if multi.TransformStartTime == nil || multi.TransformEndTime == nil || multi.BatchStrategy != smtypes.BatchStrategyMultiRecord ||
		aws.ToInt32(multi.MaxPayloadInMB) != 1 || aws.ToString(multi.ModelName) != "intent" {
		t.Fatalf("multi described as %+v", multi)
	}
	for key, texts := range map[string][]string{"big.jsonl": bigTexts, "part/small.jsonl": smallTexts, "part/one.jsonl": oneTexts} {
		data, ok := getObject(t, bucket, "out/multi/"+key+".out")
		if !ok {
			t.Fatalf("no out/multi/%s.out", key)
		}
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		want := j.expected("intent", texts)
		if len(lines) != len(want) {
			t.Fatalf("%s.out has %d lines for %d records", key, len(lines), len(want))
		}
		prefix := strings.TrimSuffix(key[strings.LastIndex(key, "/")+1:], ".jsonl")
		for i, line := range lines {
			wantLine := fmt.Sprintf(`{"id":"%s-%d","SageMakerOutput":{"prediction":%s}}`, prefix, i, want[i])
			if line != wantLine {
				t.Fatalf("%s.out line %d:\n got %s\nwant %s", key, i+1, line, wantLine)
			}
		}
	}
	if data, ok := getObject(t, bucket, "out/multi/empty.jsonl.out"); !ok || len(data) != 0 {
		t.Fatalf("an empty input gets an empty .out: %q %v", data, ok)
	}
	if keys := s3test.Keys(t, bucket, "out/multi/"); len(keys) != 4 {
		t.Fatalf("outputs of multi: %v", keys)
	}
	j.admin("GET", "/api/v1/transform-jobs/multi", nil, http.StatusOK, &view)
	// big.jsonl packs into two requests under 1 MB; every other input is one.
	if view.Progress.Requests != 5 || view.Progress.Completed != 5 {
		t.Fatalf("multi's progress: %+v", view.Progress)
	}

	// single: good.jsonl.gz is answered record by record; bad.jsonl.gz has
	// no .out, and its .errors names the refused record.
	if single.TransformJobStatus != smtypes.TransformJobStatusFailed || !strings.Contains(aws.ToString(single.FailureReason), "1 of 30 requests failed") {
		t.Fatalf("single ended %s (%s)", single.TransformJobStatus, aws.ToString(single.FailureReason))
	}
	data, ok := getObject(t, bucket, "out/single/good.jsonl.gz.out")
	if !ok {
		t.Fatal("no out/single/good.jsonl.gz.out")
	}
	want := j.expected("intent", goodTexts)
	if got := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("good.jsonl.gz.out:\n%s\nwant\n%s", data, strings.Join(want, "\n"))
	}
	if _, ok := getObject(t, bucket, "out/single/bad.jsonl.gz.out"); ok {
		t.Fatal("an input with a failed record got an .out")
	}
	errs, ok := getObject(t, bucket, "out/single/bad.jsonl.gz.errors")
	var failure struct {
		Line, Records, Status int
		Code, Message         string
	}
	if !ok || json.Unmarshal(errs, &failure) != nil || failure.Line != 7 || failure.Records != 1 || failure.Code != hosting.ErrModel ||
		!strings.Contains(failure.Message, "empty") {
		t.Fatalf("bad.jsonl.gz.errors: %s", errs)
	}

	// manifest: each listed object is one record, its .out named as the
	// manifest names it.
	if d := waitTransform(t, sm, "manifest", time.Minute); d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
		t.Fatalf("manifest ended %s (%s)", d.TransformJobStatus, aws.ToString(d.FailureReason))
	}
	for key, text := range map[string]string{"n1.txt": "I was charged twice", "deep/n2.txt": "the site is down again"} {
		data, _ := getObject(t, bucket, "out/manifest/"+key+".out")
		if want := j.expected("intent", []string{text}); strings.TrimSpace(string(data)) != want[0] {
			t.Fatalf("%s.out: %s, want %s", key, data, want[0])
		}
	}
	if keys := s3test.Keys(t, bucket, "out/manifest/"); len(keys) != 2 {
		t.Fatalf("outputs of manifest: %v", keys)
	}

	// All are listed, newest first; the transient endpoints are gone.
	list, err := sm.ListTransformJobs(ctx, &sagemaker.ListTransformJobsInput{MaxResults: aws.Int32(3)})
	if err != nil || len(list.TransformJobSummaries) != 3 || aws.ToString(list.TransformJobSummaries[0].TransformJobName) != "stopped" || list.NextToken == nil {
		t.Fatalf("list: %v %+v", err, list)
	}
	if list, err = sm.ListTransformJobs(ctx, &sagemaker.ListTransformJobsInput{NextToken: list.NextToken}); err != nil ||
		len(list.TransformJobSummaries) != 1 || aws.ToString(list.TransformJobSummaries[0].TransformJobName) != "multi" {
		t.Fatalf("list's second page: %v %+v", err, list)
	}
	list, err = sm.ListTransformJobs(ctx, &sagemaker.ListTransformJobsInput{StatusEquals: smtypes.TransformJobStatusCompleted, NameContains: aws.String("MULT")})
	if err != nil || len(list.TransformJobSummaries) != 1 || aws.ToString(list.TransformJobSummaries[0].TransformJobName) != "multi" {
		t.Fatalf("list completed: %v %+v", err, list)
	}
	for _, name := range []string{"multi", "single", "manifest", "stopped"} {
		if status, _, b := j.do("GET", "/api/v1/endpoints/"+transform.EndpointName(name), adminKey, ""); status != http.StatusNotFound {
			t.Fatalf("the transient endpoint of %s: %d %s", name, status, b)
		}
	}
	// Each invocation is a call in the ledger, on the batch path: one per
	// request but the empty input's.
	junctiontest.Eventually(t, "a batch call in the ledger per invocation", func() bool { return j.batchCalls() >= 34 })
}

// batchCalls counts the ledger's records on the batch path.
func (j *junction) batchCalls() int {
	j.t.Helper()
	_, _, b := j.do("GET", "/api/v1/usage/records?limit=1000", adminKey, "")
	var out struct{ Records []ledger.Record }
	if err := json.Unmarshal(b, &out); err != nil {
		j.t.Fatalf("records: %v: %s", err, b)
	}
	n := 0
	for _, r := range out.Records {
		if r.Surface == "batch" {
			n++
		}
	}
	return n
}

// transformView is what the REST API shows of a transform job.
type transformView struct {
	TransformJobStatus string
	FailureReason      string
	Progress           struct {
		Requests, Completed, Failed, Pending, Retries int64
	}
}

// restJSON sends an admin request to a junction process and decodes the
// answer.
func restJSON(t *testing.T, base, method, path, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && json.Unmarshal(b, out) != nil {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// TestTransformJobResumesAfterKill9 kills `junction serve` with SIGKILL in
// the middle of a transform job and starts it again on the same data: the
// job resumes where its committed requests end, on its transient endpoint
// brought back, and every input record is in its .out exactly once, in
// order.
func TestTransformJobResumesAfterKill9(t *testing.T) {
	bucket := s3test.Bucket(t)
	const perObject = 300
	for _, name := range []string{"a", "b"} {
		data, _ := jsonLines(name, perObject, 0)
		s3test.Put(t, bucket, "in/"+name+".jsonl", data)
	}
	yaml := fmt.Sprintf(`
server: {upstream_timeout: 5s, shutdown_timeout: 10s}
auth: {admin_key: %q}
log: {level: warn}
hosting: {health_interval: 100ms, stop_grace: 3s, meter_interval: 100ms, invocation_timeout: 5s}
batch: {poll_interval: 50ms}
%s`, adminKey, s3YAML(t))
	first := junctiontest.Start(t, junctiontest.Options{Config: yaml})
	model, _ := json.Marshal(hosting.Model{Name: "intent", Artifact: "file://" + demoArtifact(t),
		Server: hosting.Server{Command: "junction", Args: []string{"model-server"}, StartupTimeoutSeconds: 30}})
	if status := restJSON(t, first.URL, "POST", "/api/v1/models", string(model), nil); status != http.StatusCreated {
		t.Fatalf("create model: %d", status)
	}
	job := fmt.Sprintf(`{"TransformJobName": "resumed", "ModelName": "intent", "BatchStrategy": "SingleRecord", "MaxConcurrentTransforms": 2,
		"Environment": {"JUNCTION_MODEL_SERVER_DELAY": "15ms"},
		"TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://%s/in/"}},
			"ContentType": "application/json", "SplitType": "Line"},
		"TransformOutput": {"S3OutputPath": "s3://%s/out/", "AssembleWith": "Line"},
		"TransformResources": {"InstanceType": "ml.g6.xlarge", "InstanceCount": 1},
		"DataProcessing": {"InputFilter": "$['inputs','task']", "JoinSource": "Input", "OutputFilter": "$['id','SageMakerOutput']"}}`, bucket, bucket)
	var created struct{ TransformJobArn string }
	if status := restJSON(t, first.URL, "POST", "/api/v1/transform-jobs", job, &created); status != http.StatusOK || created.TransformJobArn == "" {
		t.Fatalf("create job: %d %+v", status, created)
	}
	var v transformView
	deadline := time.Now().Add(2 * time.Minute)
	for {
		restJSON(t, first.URL, "GET", "/api/v1/transform-jobs/resumed", "", &v)
		if v.Progress.Completed >= 150 {
			break
		}
		if v.TransformJobStatus != "InProgress" || time.Now().After(deadline) {
			t.Fatalf("before the kill: %+v", v)
		}
		time.Sleep(5 * time.Millisecond)
	}
	first.Kill()
	before := v.Progress.Completed
	if before >= 2*perObject {
		t.Fatalf("the job finished before the kill (%d requests); make it slower", before)
	}

	again := junctiontest.Start(t, junctiontest.Options{Config: yaml, DataDir: first.DataDir})
	restJSON(t, again.URL, "GET", "/api/v1/transform-jobs/resumed", "", &v)
	if v.Progress.Completed < before {
		t.Fatalf("after the restart %d requests are done, %d were before the kill", v.Progress.Completed, before)
	}
	deadline = time.Now().Add(2 * time.Minute)
	for v.TransformJobStatus == "InProgress" {
		if time.Now().After(deadline) {
			t.Fatalf("after the restart: %+v", v)
		}
		time.Sleep(50 * time.Millisecond)
		restJSON(t, again.URL, "GET", "/api/v1/transform-jobs/resumed", "", &v)
	}
	if v.TransformJobStatus != "Completed" || v.Progress.Completed != 2*perObject || v.Progress.Failed != 0 {
		errs, _ := getObject(t, bucket, "out/a.jsonl.errors")
		t.Fatalf("after the restart the job ended %+v\n%.2000s", v, errs)
	}
	for _, name := range []string{"a", "b"} {
		data, ok := getObject(t, bucket, "out/"+name+".jsonl.out")
		if !ok {
			t.Fatalf("no %s.jsonl.out", name)
		}
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if len(lines) != perObject {
			t.Fatalf("%s.jsonl.out has %d lines for %d records", name, len(lines), perObject)
		}
		for i, line := range lines {
			var rec struct {
				ID              string `json:"id"`
				SageMakerOutput struct{ Predictions []any }
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.ID != fmt.Sprintf("%s-%d", name, i) || len(rec.SageMakerOutput.Predictions) != 1 {
				t.Fatalf("%s.jsonl.out line %d: %s", name, i+1, line)
			}
		}
	}
	t.Logf("%d of %d requests done before the kill", before, 2*perObject)
}
