// Package s3test runs a real S3-compatible server for tests: versitygw
// over a temporary directory, one per test binary, started on first use
// on a free loopback port and stopped when the binary's tests end
// (through Run). Each test gets its own bucket. It is for tests only.
package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Credentials and region of the test server.
const (
	AccessKey = "junctiontest"
	SecretKey = "junctiontest-secret"
	Region    = "us-east-1"
)

const install = "versitygw is not on PATH; these tests need a real S3-compatible server. " +
	"Install it with: go install github.com/versity/versitygw/cmd/versitygw@" + Version +
	" (scripts/test.sh does this) and run again"

// Version is the versitygw release the tests are known to work with.
const Version = "v1.8.0"

var server struct {
	once     sync.Once
	endpoint string
	err      error
	cmd      *exec.Cmd
	exit     chan struct{}
	dir      string
}

// Run runs a package's tests and then stops the server, if one was
// started; call it from TestMain: os.Exit(s3test.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop stops the server, if one was started; a TestMain that already
// wraps m.Run another way calls it itself.
func Stop() {
	if s := &server; s.cmd != nil {
		_ = s.cmd.Process.Kill()
		<-s.exit
		_ = os.RemoveAll(s.dir)
		s.cmd = nil
	}
}

// Endpoint returns the base URL of the test binary's S3 server, starting
// it on first use; without versitygw the test fails with how to install
// it.
func Endpoint(tb testing.TB) string {
	tb.Helper()
	server.once.Do(func() { server.err = start() })
	if server.err != nil {
		tb.Fatal(server.err)
	}
	return server.endpoint
}

// binary finds versitygw on PATH or where go install puts it.
func binary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, d := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(d, "bin"))
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errors.New(install)
}

func start() error {
	path, err := binary()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "junction-s3-")
	if err != nil {
		return err
	}
	server.dir = dir
	var last error
	for range 5 { // a free port can be taken between picking and binding it
		port, err := freePort()
		if err != nil {
			return err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		var out bytes.Buffer
		cmd := exec.Command(path, "--port", addr, "posix", dir)
		cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start versitygw: %w", err)
		}
		exit := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exit) }()
		endpoint := "http://" + addr
		if last = waitHTTP(endpoint, exit); last == nil {
			server.endpoint, server.cmd, server.exit = endpoint, cmd, exit
			return nil
		}
		_ = cmd.Process.Kill()
		<-exit
		last = fmt.Errorf("%w\n%s", last, out.String())
	}
	return fmt.Errorf("versitygw did not start: %w", last)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls the server until it answers any HTTP response, the
// process exits or twenty seconds pass.
func waitHTTP(endpoint string, exit <-chan struct{}) error {
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	hc := &http.Client{Timeout: time.Second}
	for {
		if resp, err := hc.Get(endpoint + "/"); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exit:
			return errors.New("versitygw exited")
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return errors.New("versitygw did not answer within 20s")
		}
	}
}

// Client returns an S3 client of the test server (path-style, static
// credentials).
func Client(tb testing.TB) *s3.Client {
	tb.Helper()
	endpoint := Endpoint(tb)
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint), UsePathStyle: true, Region: Region,
		Credentials: credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	})
}

var buckets atomic.Int64

// Bucket creates a bucket of the test's own and returns its name.
func Bucket(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t%d-%d", os.Getpid(), buckets.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Client(tb).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		tb.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

// Put writes an object.
func Put(tb testing.TB, bucket, key string, body []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Client(tb).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		tb.Fatalf("put s3://%s/%s: %v", bucket, key, err)
	}
}

// Keys lists the keys under prefix in bucket, in order.
func Keys(tb testing.TB, bucket, prefix string) []string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys []string
	p := s3.NewListObjectsV2Paginator(Client(tb), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			tb.Fatalf("list s3://%s/%s: %v", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}
