package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/testkit/s3test"
)

func TestMain(m *testing.M) { os.Exit(s3test.Run(m)) }

// newS3 is the backend on the test server, with static credentials.
func newS3(t *testing.T) *S3 {
	t.Helper()
	s, err := NewS3(context.Background(), S3Options{Endpoint: s3test.Endpoint(t), Region: s3test.Region, PathStyle: true,
		AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestS3ArtifactIsUnpackedOnce(t *testing.T) {
	bucket := s3test.Bucket(t)
	archive, err := os.ReadFile(writeArchive(t, t.TempDir(), "model.tar.gz", model))
	if err != nil {
		t.Fatal(err)
	}
	s3test.Put(t, bucket, "models/v1/model.tar.gz", archive)
	c := newCache(t, WithFetcher("s3", newS3(t)))
	uri := "s3://" + bucket + "/models/v1/model.tar.gz"
	first, err := c.Resolve(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(first, "config.json")); got != `{"layers":2}` {
		t.Fatalf("config.json = %q", got)
	}
	again, err := c.Resolve(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(archive)
	if first != again || filepath.Base(first) != hexString(sum[:]) {
		t.Fatalf("resolved %s then %s; want both the archive's digest directory", first, again)
	}
	if n := c.unpacks.Load(); n != 1 {
		t.Fatalf("unpacked %d times, want once", n)
	}
	if left, _ := filepath.Glob(filepath.Join(c.Dir(), ".fetch-*")); len(left) != 0 {
		t.Fatalf("downloads left behind: %v", left)
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestS3ArtifactErrorsNameTheObject: whatever is wrong with an s3://
// artifact, the error names the object.
func TestS3ArtifactErrorsNameTheObject(t *testing.T) {
	bucket := s3test.Bucket(t)
	s3test.Put(t, bucket, "bad.tar.gz", []byte("not gzip at all, not tar either"))
	s3test.Put(t, bucket, "weights.bin", []byte("x"))
	c := newCache(t, WithFetcher("s3", newS3(t)))
	b := "s3://" + bucket
	tests := []struct{ uri, want string }{
		{b + "/missing.tar.gz", "object " + b + "/missing.tar.gz does not exist"},
		{"s3://no-such-bucket-here/m.tar.gz", "bucket no-such-bucket-here of s3://no-such-bucket-here/m.tar.gz does not exist"},
		{b + "/bad.tar.gz", "artifact " + b + "/bad.tar.gz: unpack"},
		{b + "/weights.bin", "artifact " + b + "/weights.bin: "},
		{b + "/models/", "is a prefix"},
		{"s3:///key.tar.gz", "an S3 URI is s3://BUCKET/KEY"},
	}
	for _, tc := range tests {
		_, err := c.Resolve(context.Background(), tc.uri)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Resolve(%q) = %v, want an error containing %q", tc.uri, err, tc.want)
		}
	}
}

func TestS3WrongCredentialsAreRefused(t *testing.T) {
	bucket := s3test.Bucket(t)
	s3test.Put(t, bucket, "m.tar.gz", []byte("x"))
	s, err := NewS3(context.Background(), S3Options{Endpoint: s3test.Endpoint(t), PathStyle: true,
		AccessKeyID: s3test.AccessKey, SecretAccessKey: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = newCache(t, WithFetcher("s3", s)).Resolve(context.Background(), "s3://"+bucket+"/m.tar.gz")
	if err == nil || !strings.Contains(err.Error(), "s3://"+bucket+"/m.tar.gz") || errors.Is(err, ErrNotFound) {
		t.Fatalf("Resolve with a wrong secret = %v, want a refusal naming the object", err)
	}
}

// TestS3StandardCredentialChain: with no credentials in the options, the
// standard chain's environment variables sign the requests.
func TestS3StandardCredentialChain(t *testing.T) {
	bucket := s3test.Bucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
	t.Setenv("AWS_REGION", s3test.Region)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	s, err := NewS3(context.Background(), S3Options{Endpoint: s3test.Endpoint(t), PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	o := &Objects{S3: s}
	l := Location{Scheme: "s3", Bucket: bucket, Key: "k"}
	if err := o.Put(context.Background(), l, strings.NewReader("hello"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	if ok, err := o.Exists(context.Background(), l); !ok || err != nil {
		t.Fatalf("Exists = %v, %v", ok, err)
	}
}

// pattern is a reader of n deterministic bytes that holds none of them.
type pattern struct{ n, off int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n-p.off {
		b = b[:p.n-p.off]
	}
	for i := range b {
		b[i] = byte((p.off + int64(i)) * 7 % 251)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// failing yields n bytes and then fails.
type failing struct{ pattern }

func (f *failing) Read(b []byte) (int, error) {
	n, err := f.pattern.Read(b)
	if err == io.EOF {
		return 0, errors.New("the source broke")
	}
	return n, err
}

func locations(t *testing.T) map[string]Location {
	return map[string]Location{
		"s3":   {Scheme: "s3", Bucket: s3test.Bucket(t), Key: "out/dir/result.out"},
		"file": {Scheme: "file", Key: filepath.Join(t.TempDir(), "out", "dir", "result.out")},
	}
}

// TestObjectsRoundTrip writes an object larger than several multipart
// parts from a reader that never holds it whole, reads it back, and
// removes it, on both backends.
func TestObjectsRoundTrip(t *testing.T) {
	o := &Objects{S3: newS3(t)}
	ctx := context.Background()
	const size = 12<<20 + 123
	want := sha256.New()
	io.Copy(want, &pattern{n: size})
	for name, l := range locations(t) {
		t.Run(name, func(t *testing.T) {
			if ok, err := o.Exists(ctx, l); ok || err != nil {
				t.Fatalf("Exists before = %v, %v", ok, err)
			}
			if _, err := o.Open(ctx, l); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), l.String()) {
				t.Fatalf("Open before = %v, want ErrNotFound naming %s", err, l)
			}
			if err := o.Put(ctx, l, &pattern{n: size}, "application/octet-stream"); err != nil {
				t.Fatal(err)
			}
			r, err := o.Open(ctx, l)
			if err != nil {
				t.Fatal(err)
			}
			got := sha256.New()
			n, err := io.Copy(got, r)
			r.Close()
			if err != nil || n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
				t.Fatalf("read back %d bytes (%v), want %d identical bytes", n, err, size)
			}
			if err := o.Remove(ctx, l); err != nil {
				t.Fatal(err)
			}
			if ok, _ := o.Exists(ctx, l); ok {
				t.Fatal("object still there after Remove")
			}
			if err := o.Remove(ctx, l); err != nil {
				t.Fatalf("removing a missing object: %v", err)
			}
		})
	}
}

// TestObjectsFailedPutLeavesNothing: a source that breaks mid-upload
// (after several parts) leaves no object and no partial file, and an
// object already there is kept whole.
func TestObjectsFailedPutLeavesNothing(t *testing.T) {
	o := &Objects{S3: newS3(t)}
	ctx := context.Background()
	for name, l := range locations(t) {
		t.Run(name, func(t *testing.T) {
			err := o.Put(ctx, l, &failing{pattern{n: 11 << 20}}, "")
			if err == nil || !strings.Contains(err.Error(), "the source broke") {
				t.Fatalf("Put = %v, want the source's error", err)
			}
			if ok, _ := o.Exists(ctx, l); ok {
				t.Fatal("a failed Put left an object")
			}
			if err := o.Put(ctx, l, strings.NewReader("whole"), ""); err != nil {
				t.Fatal(err)
			}
			o.Put(ctx, l, &failing{pattern{n: 100}}, "")
			r, err := o.Open(ctx, l)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r)
			r.Close()
			if string(b) != "whole" {
				t.Fatalf("after a failed overwrite the object is %q, want the old one whole", b)
			}
			if l.Scheme == "file" {
				entries, _ := os.ReadDir(filepath.Dir(l.Key))
				if len(entries) != 1 {
					t.Fatalf("files beside the object: %v, want only it", entries)
				}
			}
		})
	}
}

func TestParseLocation(t *testing.T) {
	good := map[string]Location{
		"s3://b/k/x.json":  {Scheme: "s3", Bucket: "b", Key: "k/x.json"},
		"s3://b":           {Scheme: "s3", Bucket: "b"},
		"file:///tmp/a/in": {Scheme: "file", Key: "/tmp/a/in"},
	}
	for uri, want := range good {
		got, err := ParseLocation(uri)
		if err != nil || got != want {
			t.Errorf("ParseLocation(%q) = %+v, %v; want %+v", uri, got, err, want)
		}
	}
	if j := (Location{Scheme: "s3", Bucket: "b", Key: "out"}).Join("id.out").String(); j != "s3://b/out/id.out" {
		t.Errorf("Join = %s", j)
	}
	for _, bad := range []string{"http://x/y", "s3:///k", "file://host/p", "relative/path", "%zz"} {
		if _, err := ParseLocation(bad); err == nil {
			t.Errorf("ParseLocation(%q) succeeded", bad)
		}
	}
}
