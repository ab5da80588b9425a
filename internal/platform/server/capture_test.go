package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/capture"
	"github.com/junctionhq/junction/internal/testkit/s3test"
)

// captureRecords polls the S3 server until the objects under prefix hold
// n records, and returns them by object key.
func captureRecords(t *testing.T, bucket, prefix string, n int) map[string][]capture.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := map[string][]capture.Record{}
		total := 0
		for _, key := range s3test.Keys(t, bucket, prefix) {
			obj, err := s3test.Client(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(obj.Body)
			for sc.Scan() {
				var r capture.Record
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					t.Fatalf("%s: %q is not a capture record: %v", key, sc.Text(), err)
				}
				out[key] = append(out[key], r)
				total++
			}
			obj.Body.Close()
		}
		if total >= n {
			if total > n {
				t.Fatalf("%d records under %s, want %d: %+v", total, prefix, n, out)
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records under %s after 30s, want %d", total, prefix, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Data capture with the AWS SDK: an endpoint config's data_capture
// records the real-time invocations of its endpoint (InvokeEndpoint) and
// the async ones (InvokeEndpointAsync) in the real S3 server, in
// SageMaker's layout and format — the body as sent, the model's answer,
// the caller's inference id — counted in /metrics; a config whose
// data_capture is wrong is refused field by field.
func TestDataCaptureWithTheSageMakerSDK(t *testing.T) {
	bucket := s3test.Bucket(t)
	j := startHosted(t, t.TempDir(), "", s3YAML(t)+"capture: {window: 200ms}\nasync: {lease_ttl: 2s}\n")
	j.model("scorer", demoArtifact(t), "byoc", nil)
	hundred := 100
	dc := func(mode string) *hosting.DataCapture {
		return &hosting.DataCapture{InitialSamplingPercentage: &hundred, DestinationS3URI: "s3://" + bucket + "/capture",
			CaptureOptions:           []hosting.CaptureOption{{CaptureMode: mode}},
			CaptureContentTypeHeader: &hosting.CaptureContentTypeHeader{JsonContentTypes: []string{"application/json"}}}
	}
	variant := []hosting.Variant{{Name: "AllTraffic", Model: "scorer", InstanceType: "ml.g6.xlarge"}}
	j.admin("POST", "/api/v1/endpoint-configs", hosting.EndpointConfig{Name: "rt-c", Variants: variant,
		DataCapture: dc(hosting.CaptureInputAndOutput)}, http.StatusCreated, nil)
	j.admin("POST", "/api/v1/endpoint-configs", hosting.EndpointConfig{Name: "aq-c", Variants: variant,
		DataCapture:    dc(hosting.CaptureInput),
		AsyncInference: &hosting.AsyncInference{OutputPath: "s3://" + bucket + "/out"}}, http.StatusCreated, nil)
	for _, name := range []string{"rt", "aq"} {
		j.admin("POST", "/api/v1/endpoints", map[string]string{"name": name, "config": name + "-c"}, http.StatusCreated, nil)
		j.waitEndpoint(name, 60*time.Second, inService)
	}
	sm := j.sagemakerClient()
	ctx := context.Background()
	for i := range 5 {
		_, err := sm.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("rt"),
			ContentType: aws.String("application/json"), InferenceId: aws.String(fmt.Sprint("rt-", i)),
			Body: fmt.Appendf(nil, `{"inputs": "ticket %d: <b>refund</b> please"}`, i)})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		out, err := sm.InvokeEndpointAsync(ctx, &sagemakerruntime.InvokeEndpointAsyncInput{EndpointName: aws.String("aq"),
			ContentType: aws.String("application/json"), InferenceId: aws.String(fmt.Sprint("aq-", i)),
			Body: fmt.Appendf(nil, `{"inputs": "queued %d"}`, i)})
		if err != nil {
			t.Fatal(err)
		}
		waitObject(t, aws.ToString(out.OutputLocation))
	}

	now := time.Now().UTC()
	key := regexp.MustCompile(`^capture/(rt|aq)/AllTraffic/(\d{4}/\d\d/\d\d/\d\d)/\d\d-\d\d-\d\d\d-[0-9a-f-]{36}\.jsonl$`)
	seen := map[string]bool{}
	for k, recs := range captureRecords(t, bucket, "capture/rt/", 5) {
		if m := key.FindStringSubmatch(k); m == nil || (m[2] != now.Format("2006/01/02/15") && m[2] != now.Add(-time.Hour).Format("2006/01/02/15")) {
			t.Errorf("object key %s is not capture/ENDPOINT/VARIANT/<this hour>/mm-ss-mmm-UUID.jsonl", k)
		}
		for _, r := range recs {
			in, out := r.CaptureData.EndpointInput, r.CaptureData.EndpointOutput
			if in == nil || out == nil {
				t.Fatalf("a real-time record without both sides: %+v", r)
			}
			id := r.EventMetadata.InferenceID
			seen[id] = true
			want := fmt.Sprintf(`{"inputs": "ticket %s: <b>refund</b> please"}`, strings.TrimPrefix(id, "rt-"))
			if in.Data != want || in.Encoding != capture.EncodingJSON || in.Mode != capture.ModeInput || in.ObservedContentType != "application/json" {
				t.Errorf("input of %s: %+v, want the body as sent, JSON", id, in)
			}
			if !strings.Contains(out.Data, `"label"`) || out.Mode != capture.ModeOutput {
				t.Errorf("output of %s: %+v", id, out)
			}
			if _, err := time.Parse(time.RFC3339, r.EventMetadata.InferenceTime); err != nil || r.EventMetadata.EventID == "" || r.EventVersion != "0" {
				t.Errorf("metadata of %s: %+v, version %q", id, r.EventMetadata, r.EventVersion)
			}
		}
	}
	if len(seen) != 5 {
		t.Errorf("inference ids captured: %v, want rt-0 to rt-4", seen)
	}
	for _, recs := range captureRecords(t, bucket, "capture/aq/", 2) {
		for _, r := range recs {
			if in := r.CaptureData.EndpointInput; in == nil || r.CaptureData.EndpointOutput != nil || !strings.Contains(in.Data, "queued") ||
				!strings.HasPrefix(r.EventMetadata.InferenceID, "aq-") {
				t.Errorf("an async record captured with mode Input: %+v", r)
			}
		}
	}
	_, _, metrics := j.do("GET", "/metrics", "", "")
	for _, want := range []string{`junction_capture_records_total{endpoint="rt",outcome="written"} 5`,
		`junction_capture_records_total{endpoint="aq",outcome="written"} 2`, `junction_capture_records_total{endpoint="rt",outcome="dropped"} 0`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A wrong data_capture is refused, every problem named.
	seventy := 170
	status, _, body := j.do("POST", "/api/v1/endpoint-configs", adminKey, mustJSON(t, hosting.EndpointConfig{Name: "bad", Variants: variant,
		DataCapture: &hosting.DataCapture{InitialSamplingPercentage: &seventy, DestinationS3URI: "ftp://x/y",
			CaptureOptions:           []hosting.CaptureOption{{CaptureMode: "Everything"}},
			CaptureContentTypeHeader: &hosting.CaptureContentTypeHeader{CsvContentTypes: []string{"not a type"}}}}))
	if status != http.StatusBadRequest {
		t.Fatalf("a bad data_capture: %d %s", status, body)
	}
	for _, want := range []string{"data_capture.initial_sampling_percentage: 170", "data_capture.destination_s3_uri:",
		"data_capture.capture_options[0].capture_mode:", "data_capture.capture_content_type_header.csv_content_types[0]:"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the refusal lacks %q: %s", want, body)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
