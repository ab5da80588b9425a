// Package blob brings the model artifacts of hosted endpoints onto the
// local disk, as the directory a model server reads (SM_MODEL_DIR). An
// artifact is a directory, used as it is, or a tar archive (SageMaker's
// model.tar.gz), unpacked once into a cache keyed by the archive's SHA-256.
//
// Artifacts are named by URI: file:///abs/path, a plain absolute path, or
// s3://bucket/key.tar.gz once an S3 backend is plugged in (WithFetcher("s3",
// s3)); other schemes plug in the same way as a Fetcher, which downloads
// the archive for the Cache to unpack. Objects reads and writes the other
// data Junction keeps in object storage (async inputs and outputs, job
// data, captured traffic) under the same two schemes. The package only
// moves bytes and unpacks: it does not evict old unpacked trees, verify
// signatures, or know which endpoint uses what.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultMaxUnpacked bounds the bytes one archive may unpack to, so that a
// corrupt or hostile archive cannot fill the disk. It leaves room for the
// weights of a 200B-parameter model at 16 bits.
const DefaultMaxUnpacked = 512 << 30

// A Fetcher brings the artifacts of one URI scheme onto the local disk.
type Fetcher interface {
	// Fetch returns a local path for the artifact u names: a directory,
	// used as it is and so meant to outlast the call (a fetcher that
	// downloads directories keeps its own copies), or an archive file
	// (.tar.gz, .tgz, .tar) for the Cache to unpack. tmp is an empty
	// directory on the cache's filesystem where a fetcher may download the
	// archive; the Cache removes it when Resolve returns.
	Fetch(ctx context.Context, u *url.URL, tmp string) (string, error)
}

// Cache resolves artifact URIs to local directories, unpacking archives
// under its directory. It is safe for concurrent use, and several Caches
// (in one process or several) may share a directory.
type Cache struct {
	dir         string
	maxUnpacked int64
	fetchers    map[string]Fetcher

	mu       sync.Mutex
	digests  map[fileKey]string // archive digests already computed
	inflight map[string]*unpack // unpacks in progress, by digest

	unpacks atomic.Int64 // archives this Cache has unpacked (for tests)
}

// fileKey identifies a version of a file well enough not to hash it again.
type fileKey struct {
	path  string
	size  int64
	mtime int64
}

// unpack is one archive being unpacked; others wanting it wait on done.
type unpack struct {
	done chan struct{}
	dir  string
	err  error
}

// Option configures a Cache.
type Option func(*Cache)

// WithFetcher handles the URI scheme with f ("s3", "gs", ...). The file
// scheme is built in.
func WithFetcher(scheme string, f Fetcher) Option {
	return func(c *Cache) { c.fetchers[strings.ToLower(scheme)] = f }
}

// WithMaxUnpacked bounds the bytes one archive may unpack to
// (DefaultMaxUnpacked unless set).
func WithMaxUnpacked(bytes int64) Option {
	return func(c *Cache) {
		if bytes > 0 {
			c.maxUnpacked = bytes
		}
	}
}

// New returns a Cache that unpacks archives under dir, creating it if
// needed. Half-unpacked trees left by processes that died are removed.
func New(dir string, opts ...Option) (*Cache, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: cache dir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("blob: cache dir: %w", err)
	}
	c := &Cache{
		dir: abs, maxUnpacked: DefaultMaxUnpacked,
		fetchers: map[string]Fetcher{"file": fileFetcher{}},
		digests:  map[fileKey]string{}, inflight: map[string]*unpack{},
	}
	for _, o := range opts {
		o(c)
	}
	c.removeStale()
	return c, nil
}

// Dir is the directory holding the unpacked artifacts.
func (c *Cache) Dir() string { return c.dir }

// Resolve returns a local directory holding the artifact uri names. A
// directory is returned as it is; an archive is unpacked on first use into
// <dir>/<sha256 of the archive>/, which later calls (and other processes)
// reuse. Concurrent calls never see a half-unpacked tree.
func (c *Cache) Resolve(ctx context.Context, uri string) (string, error) {
	scheme, u, err := parse(uri)
	if err != nil {
		return "", err
	}
	f := c.fetchers[scheme]
	if f == nil {
		if scheme == "s3" {
			return "", fmt.Errorf("blob: artifact %s: s3:// artifacts need the s3: section of the config", uri)
		}
		return "", fmt.Errorf("blob: %s:// artifacts are not supported; use file:// or s3://", scheme)
	}
	var tmp string
	if _, local := f.(fileFetcher); !local {
		if tmp, err = os.MkdirTemp(c.dir, tempName(".fetch")); err != nil {
			return "", fmt.Errorf("blob: %w", err)
		}
		defer os.RemoveAll(tmp)
	}
	path, err := f.Fetch(ctx, u, tmp)
	if err != nil {
		return "", fmt.Errorf("blob: artifact %s: %w", uri, err)
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("blob: artifact %s: %s does not exist", uri, path)
	}
	if err != nil {
		return "", fmt.Errorf("blob: artifact %s: %w", uri, err)
	}
	if fi.IsDir() {
		return path, nil
	}
	if !fi.Mode().IsRegular() || !isArchive(path) {
		return "", fmt.Errorf("blob: artifact %s: %s is neither a directory nor a .tar.gz, .tgz or .tar archive", uri, path)
	}
	dir, err := c.unpacked(ctx, path, fi)
	if err != nil {
		return "", fmt.Errorf("blob: artifact %s: %w", uri, err)
	}
	return dir, nil
}

// parse splits an artifact name into its scheme and URL; a plain absolute
// path is a file URI.
func parse(uri string) (string, *url.URL, error) {
	if filepath.IsAbs(uri) {
		return "file", &url.URL{Scheme: "file", Path: uri}, nil
	}
	u, err := url.Parse(uri)
	if err != nil {
		return "", nil, fmt.Errorf("blob: artifact %q: %w", uri, err)
	}
	if u.Scheme == "" {
		return "", nil, fmt.Errorf("blob: artifact %q: want an absolute path or a URI such as file:///models/m.tar.gz", uri)
	}
	return strings.ToLower(u.Scheme), u, nil
}

// fileFetcher resolves file: URIs to local paths.
type fileFetcher struct{}

func (fileFetcher) Fetch(_ context.Context, u *url.URL, _ string) (string, error) {
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("a file URI names a local path, not host %q (write file:///abs/path)", u.Host)
	}
	if u.Opaque != "" || !filepath.IsAbs(u.Path) {
		return "", errors.New("a file URI needs an absolute path (file:///abs/path)")
	}
	return filepath.Clean(u.Path), nil
}

func isArchive(path string) bool {
	for _, ext := range []string{".tar.gz", ".tgz", ".tar"} {
		if strings.HasSuffix(strings.ToLower(path), ext) {
			return true
		}
	}
	return false
}

// unpacked returns the directory holding the archive's contents, unpacking
// it if no one has yet. Within a process one caller unpacks and the others
// wait for it; across processes each unpacks into a temporary directory and
// renames it into place, and a loser of that race uses the winner's tree.
func (c *Cache) unpacked(ctx context.Context, archive string, fi fs.FileInfo) (string, error) {
	digest, err := c.digest(archive, fi)
	if err != nil {
		return "", err
	}
	dest := filepath.Join(c.dir, digest)
	for {
		if isDir(dest) {
			return dest, nil
		}
		c.mu.Lock()
		u := c.inflight[digest]
		leader := u == nil
		if leader {
			u = &unpack{done: make(chan struct{})}
			c.inflight[digest] = u
		}
		c.mu.Unlock()
		if leader {
			u.dir, u.err = c.unpackInto(ctx, archive, dest)
			c.mu.Lock()
			delete(c.inflight, digest)
			c.mu.Unlock()
			close(u.done)
			return u.dir, u.err
		}
		select {
		case <-u.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		// The leader's context may have ended while ours has not: try
		// again, perhaps as the leader.
		if u.err == nil || !(errors.Is(u.err, context.Canceled) || errors.Is(u.err, context.DeadlineExceeded)) {
			return u.dir, u.err
		}
	}
}

// unpackInto unpacks archive into a fresh temporary directory and renames
// it to dest, so dest appears complete or not at all.
func (c *Cache) unpackInto(ctx context.Context, archive, dest string) (string, error) {
	tmp, err := os.MkdirTemp(c.dir, tempName(".partial"))
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // after a successful rename, tmp no longer exists
	if err := untar(ctx, archive, tmp, c.maxUnpacked); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dest); err != nil {
		if isDir(dest) { // another process unpacked it first
			return dest, nil
		}
		return "", err
	}
	c.unpacks.Add(1)
	return dest, nil
}

// digest is the archive's SHA-256 in hex, remembered for an unchanged file.
func (c *Cache) digest(path string, fi fs.FileInfo) (string, error) {
	key := fileKey{path: path, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	c.mu.Lock()
	d, ok := c.digests[key]
	c.mu.Unlock()
	if ok {
		return d, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	d = hex.EncodeToString(h.Sum(nil))
	c.mu.Lock()
	c.digests[key] = d
	c.mu.Unlock()
	return d, nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// tempName is the pattern of a temporary directory: the prefix, then this
// process's pid, so that New can tell which are abandoned.
func tempName(prefix string) string {
	return prefix + "-" + strconv.Itoa(os.Getpid()) + "-*"
}

// removeStale deletes temporary directories of processes no longer
// running, and of this process's earlier runs under an old pid only after
// a day (the pid may have been reused).
func (c *Cache) removeStale() {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, ".partial-") && !strings.HasPrefix(name, ".fetch-") {
			continue
		}
		parts := strings.SplitN(name, "-", 3)
		pid, err := strconv.Atoi(parts[1])
		stale := err != nil || !processRunning(pid)
		if !stale {
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > 24*time.Hour && pid != os.Getpid() {
				stale = true
			}
		}
		if stale {
			os.RemoveAll(filepath.Join(c.dir, name))
		}
	}
}

// processRunning reports whether a process with pid exists.
func processRunning(pid int) bool {
	if pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return true
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}
