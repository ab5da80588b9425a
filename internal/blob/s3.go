package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3Options configures the S3 backend.
type S3Options struct {
	// Endpoint is the base URL of an S3-compatible server (MinIO, Ceph,
	// versitygw); empty means AWS's own endpoint for Region.
	Endpoint string
	// Region signs requests; empty means the standard chain's region
	// (AWS_REGION, the shared config), else us-east-1.
	Region string
	// PathStyle addresses buckets as ENDPOINT/BUCKET/KEY rather than
	// BUCKET.ENDPOINT/KEY, as most S3-compatible servers need.
	PathStyle bool
	// AccessKeyID and SecretAccessKey (and SessionToken) are static
	// credentials; empty means the standard AWS chain (environment,
	// shared files, instance role).
	AccessKeyID, SecretAccessKey, SessionToken string
	// PartSize is the part size of multipart uploads (at least 5 MiB;
	// default 8 MiB). An upload holds a few parts in memory, never the
	// whole object.
	PartSize int64
}

// S3 reads and writes objects in S3 or an S3-compatible server. It is a
// Fetcher for s3:// artifacts, and the s3 backend of Objects.
type S3 struct {
	client   *s3.Client
	uploader *manager.Uploader
}

// NewS3 builds the S3 backend. Credentials are resolved lazily, on the
// first request, so a start without network access succeeds.
func NewS3(ctx context.Context, o S3Options) (*S3, error) {
	var loads []func(*awsconfig.LoadOptions) error
	if o.Region != "" {
		loads = append(loads, awsconfig.WithRegion(o.Region))
	}
	if o.AccessKeyID != "" {
		loads = append(loads, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, o.SessionToken)))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loads...)
	if err != nil {
		return nil, fmt.Errorf("blob: s3 configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.PathStyle
	})
	part := o.PartSize
	if part < manager.MinUploadPartSize {
		part = 8 << 20
	}
	up := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = part
		u.Concurrency = 2
	})
	return &S3{client: client, uploader: up}, nil
}

// splitS3 returns the bucket and key an s3://bucket/key URL names.
func splitS3(u *url.URL) (bucket, key string, err error) {
	key = strings.TrimPrefix(u.Path, "/")
	if u.Host == "" || key == "" {
		return "", "", fmt.Errorf("an S3 URI is s3://BUCKET/KEY, with both; got %q", u.String())
	}
	return u.Host, key, nil
}

// Fetch downloads the object u names into tmp, under its own base name
// (so its extension still says whether it is an archive), streaming it to
// disk.
func (s *S3) Fetch(ctx context.Context, u *url.URL, tmp string) (string, error) {
	bucket, key, err := splitS3(u)
	if err != nil {
		return "", err
	}
	if strings.HasSuffix(key, "/") {
		return "", fmt.Errorf("s3://%s/%s is a prefix; an S3 artifact must be a .tar.gz, .tgz or .tar object", bucket, key)
	}
	body, err := s.open(ctx, bucket, key)
	if err != nil {
		return "", err
	}
	defer body.Close()
	dst := filepath.Join(tmp, path.Base(key))
	f, err := os.Create(dst)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return "", fmt.Errorf("download s3://%s/%s: %w", bucket, key, err)
	}
	return dst, f.Close()
}

// open starts reading an object.
func (s *S3) open(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, s3Error(bucket, key, err)
	}
	return out.Body, nil
}

// put uploads r to the key, in parts when it is large. S3 shows the
// object only once the upload completes, so a reader never sees part of
// it; a failed multipart upload is aborted.
func (s *S3) put(ctx context.Context, bucket, key string, r io.Reader, contentType string) error {
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: r}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	if _, err := s.uploader.Upload(ctx, in); err != nil {
		return s3Error(bucket, key, err)
	}
	return nil
}

// exists reports whether the object is there.
func (s *S3) exists(ctx context.Context, bucket, key string) (bool, error) {
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil {
		return true, nil
	}
	if err = s3Error(bucket, key, err); errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return false, err
}

// remove deletes the object; a missing one is not an error.
func (s *S3) remove(ctx context.Context, bucket, key string) error {
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return s3Error(bucket, key, err)
	}
	return nil
}

// s3Error says what went wrong with an object, in words that name it; a
// missing bucket or key wraps ErrNotFound.
func s3Error(bucket, key string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("object s3://%s/%s does not exist: %w", bucket, key, ErrNotFound)
		case "NoSuchBucket":
			return fmt.Errorf("bucket %s of s3://%s/%s does not exist: %w", bucket, bucket, key, ErrNotFound)
		}
		return fmt.Errorf("s3://%s/%s: %s: %s", bucket, key, ae.ErrorCode(), ae.ErrorMessage())
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
		return fmt.Errorf("object s3://%s/%s does not exist: %w", bucket, key, ErrNotFound)
	}
	return fmt.Errorf("s3://%s/%s: %w", bucket, key, err)
}
