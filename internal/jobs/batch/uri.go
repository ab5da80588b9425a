package batch

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
)

// Job data named by URI (Bedrock's s3Uri fields) is read and written here.
// file:// URIs are local paths; other schemes are refused with a message
// that says which are supported.

// localPath returns the path a file:// URI names.
func localPath(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("%q is not a URI: %w", uri, err)
	}
	if u.Scheme != "file" {
		return "", fmt.Errorf("%q: only file:// URIs are supported for job data here", uri)
	}
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("%q: a file:// URI names a local path (file:///path)", uri)
	}
	if !filepath.IsAbs(u.Path) {
		return "", fmt.Errorf("%q: the path must be absolute", uri)
	}
	return filepath.Clean(u.Path), nil
}

// CheckURI reports whether Junction can read and write job data at uri.
func CheckURI(uri string) error {
	_, err := localPath(uri)
	return err
}

// OpenURI opens the object uri names.
func OpenURI(_ context.Context, uri string) (io.ReadCloser, error) {
	p, err := localPath(uri)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// WriteURI writes the object uri names through write, replacing it whole
// or not at all.
func WriteURI(_ context.Context, uri string, write func(io.Writer) error) error {
	p, err := localPath(uri)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".junction-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}
