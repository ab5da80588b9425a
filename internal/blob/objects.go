package blob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// ErrNotFound says an object does not exist.
var ErrNotFound = errors.New("not found")

// Objects reads and writes whole objects by URI — file:///abs/path, and
// s3://bucket/key when an S3 backend is set — for data that is not an
// artifact: async inputs and outputs, job data, captured traffic. Every
// read and write streams; nothing holds a whole object in memory.
type Objects struct {
	// S3 serves s3:// URIs; nil refuses them.
	S3 *S3
}

// Location is a parsed object URI.
type Location struct {
	// Scheme is file or s3.
	Scheme string
	// Bucket is the S3 bucket; empty for files.
	Bucket string
	// Key is the S3 key, or the absolute file path.
	Key string
}

// String is the URI again.
func (l Location) String() string {
	if l.Scheme == "s3" {
		return "s3://" + l.Bucket + "/" + l.Key
	}
	return (&url.URL{Scheme: "file", Path: l.Key}).String()
}

// Join appends name to a location that names a prefix (an output path).
func (l Location) Join(name string) Location {
	if l.Scheme == "s3" {
		prefix := l.Key
		if prefix != "" && !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		l.Key = prefix + name
		return l
	}
	l.Key = filepath.Join(l.Key, name)
	return l
}

// ParseLocation parses an object or prefix URI: s3://bucket[/key] or
// file:///abs/path. A bare s3://bucket names the bucket's root, a
// prefix.
func ParseLocation(uri string) (Location, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return Location{}, fmt.Errorf("%q is not a URI: %w", uri, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "s3":
		if u.Host == "" {
			return Location{}, fmt.Errorf("%q: an S3 URI is s3://BUCKET/KEY", uri)
		}
		return Location{Scheme: "s3", Bucket: u.Host, Key: strings.TrimPrefix(u.Path, "/")}, nil
	case "file":
		p, err := fileFetcher{}.Fetch(context.Background(), u, "")
		if err != nil {
			return Location{}, fmt.Errorf("%q: %w", uri, err)
		}
		return Location{Scheme: "file", Key: p}, nil
	}
	return Location{}, fmt.Errorf("%q: want an s3:// or file:// URI", uri)
}

func (o *Objects) s3(l Location) (*S3, error) {
	if o == nil || o.S3 == nil {
		return nil, fmt.Errorf("%s: s3:// is not configured (set s3: in the config)", l)
	}
	if l.Key == "" || strings.HasSuffix(l.Key, "/") {
		return nil, fmt.Errorf("%s names a prefix, not an object", l)
	}
	return o.S3, nil
}

// Open starts reading an object; the caller closes it. A missing object
// is an error that wraps ErrNotFound.
func (o *Objects) Open(ctx context.Context, l Location) (io.ReadCloser, error) {
	if l.Scheme == "s3" {
		s, err := o.s3(l)
		if err != nil {
			return nil, err
		}
		return s.open(ctx, l.Bucket, l.Key)
	}
	f, err := os.Open(l.Key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("object %s does not exist: %w", l, ErrNotFound)
	}
	return f, err
}

// Put writes r as the object at l, replacing any there, atomically: a
// reader sees the old object or the whole new one, never a part, and a
// write that fails leaves no object. A file is written under a temporary
// name beside it and renamed; S3 shows an object only once its upload
// (multipart when large) completes.
func (o *Objects) Put(ctx context.Context, l Location, r io.Reader, contentType string) error {
	if l.Scheme == "s3" {
		s, err := o.s3(l)
		if err != nil {
			return err
		}
		return s.put(ctx, l.Bucket, l.Key, r, contentType)
	}
	dir := filepath.Dir(l.Key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var suffix [8]byte
	rand.Read(suffix[:])
	tmp := filepath.Join(dir, "."+filepath.Base(l.Key)+".partial-"+hex.EncodeToString(suffix[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // after the rename, nothing is there
	if _, err := io.Copy(f, contextReader{ctx, r}); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", l, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, l.Key)
}

// Exists reports whether the object is there.
func (o *Objects) Exists(ctx context.Context, l Location) (bool, error) {
	if l.Scheme == "s3" {
		s, err := o.s3(l)
		if err != nil {
			return false, err
		}
		return s.exists(ctx, l.Bucket, l.Key)
	}
	_, err := os.Stat(l.Key)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Remove deletes the object; a missing one is not an error.
func (o *Objects) Remove(ctx context.Context, l Location) error {
	if l.Scheme == "s3" {
		s, err := o.s3(l)
		if err != nil {
			return err
		}
		return s.remove(ctx, l.Bucket, l.Key)
	}
	if err := os.Remove(l.Key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// contextReader stops a copy when ctx ends.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
