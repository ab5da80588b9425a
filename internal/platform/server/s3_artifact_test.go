package server_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
	"github.com/junctionhq/junction/internal/hosting/refmodel"
	"github.com/junctionhq/junction/internal/testkit/s3test"
)

// s3YAML is the s3 section that points Junction at the test S3 server.
func s3YAML(t testing.TB) string {
	return fmt.Sprintf("s3: {endpoint: %q, region: %s, path_style: true, access_key_id: %s, secret_access_key: %s}\n",
		s3test.Endpoint(t), s3test.Region, s3test.AccessKey, s3test.SecretKey)
}

// s3Model creates a reference-server model whose artifact is an s3:// URI.
func (j *junction) s3Model(name, artifact string) {
	j.t.Helper()
	j.admin("POST", "/api/v1/models", hosting.Model{Name: name, Artifact: artifact,
		Server: hosting.Server{Command: "junction", Args: []string{"model-server"}, Env: map[string]string{modelserver.EnvFaults: "1"}, StartupTimeoutSeconds: 30}},
		http.StatusCreated, nil)
}

// TestS3ArtifactDeploys: a SageMaker-style model.tar.gz in S3 is
// downloaded, unpacked and served; a missing object and a bad archive
// fail their endpoints with a reason that names the object.
func TestS3ArtifactDeploys(t *testing.T) {
	bucket := s3test.Bucket(t)
	tgz := filepath.Join(t.TempDir(), "model.tar.gz")
	if err := refmodel.WriteDemoTarGz(tgz); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	s3test.Put(t, bucket, "models/demo/model.tar.gz", data)
	s3test.Put(t, bucket, "models/bad/model.tar.gz", []byte("this is not a gzip stream"))
	j := startHosted(t, t.TempDir(), "", s3YAML(t))

	good := "s3://" + bucket + "/models/demo/model.tar.gz"
	j.s3Model("demo", good)
	j.endpointConfig("demo-c", hosting.Variant{Name: "a", Model: "demo", InstanceType: "ml.g6.xlarge"})
	j.admin("POST", "/api/v1/endpoints", map[string]string{"name": "demo", "config": "demo-c"}, http.StatusCreated, nil)
	j.waitEndpoint("demo", 60*time.Second, inService)
	status, _, body := j.invoke("demo", `{"inputs":"the site is down again"}`, "Content-Type", "application/json")
	if status != http.StatusOK || !strings.Contains(string(body), "label") {
		t.Fatalf("invoking the s3-deployed endpoint: %d %s", status, body)
	}

	for name, uri := range map[string]string{
		"missing": "s3://" + bucket + "/models/missing/model.tar.gz",
		"bad":     "s3://" + bucket + "/models/bad/model.tar.gz",
	} {
		j.s3Model(name, uri)
		j.endpointConfig(name+"-c", hosting.Variant{Name: "a", Model: name, InstanceType: "ml.g6.xlarge"})
		j.admin("POST", "/api/v1/endpoints", map[string]string{"name": name, "config": name + "-c"}, http.StatusCreated, nil)
		ep := j.waitEndpoint(name, 30*time.Second, func(e *hosting.Endpoint) bool { return e.Status == hosting.StatusFailed })
		if !strings.Contains(ep.FailureReason, uri) {
			t.Errorf("endpoint %s failed with %q, want a reason naming %s", name, ep.FailureReason, uri)
		}
	}
}
