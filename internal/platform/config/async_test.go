package config

import (
	"strings"
	"testing"
)

func TestS3AsyncAndCaptureValidation(t *testing.T) {
	y := `
s3: {endpoint: "minio:9000", access_key_id: AK, part_size: 1024}
async: {lease_ttl: 10ms, max_attempts: -1, file_input_dirs: [relative/dir]}
capture: {window: 1ms, buffer_bytes: -1}
`
	_, err := Parse([]byte(y), env(nil))
	if err == nil {
		t.Fatal("a bad s3 and async section passed")
	}
	for _, w := range []string{"s3.endpoint:", "s3: give both access_key_id and secret_access_key", "s3.part_size:",
		"async.lease_ttl:", "async: lease_ttl, max_attempts", "async.file_input_dirs[0]:",
		"capture.window:", "capture.buffer_bytes:"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%s", w, err)
		}
	}
	c, err := Parse([]byte("s3: {endpoint: \"http://127.0.0.1:7070\", path_style: true}\n"), env(nil))
	if err != nil || !c.S3.PathStyle || c.S3.Endpoint != "http://127.0.0.1:7070" {
		t.Fatalf("a good s3 section: %+v, %v", c.S3, err)
	}
}
