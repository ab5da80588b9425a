package blob

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// entry is one member of a test archive.
type entry struct {
	name string
	kind byte // tar.TypeReg unless set
	body string
	link string
	mode int64
}

// writeArchive writes entries as a tar archive to dir/name, gzipped when
// the name says so, and returns its path.
func writeArchive(t testing.TB, dir, name string, entries []entry) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.kind, Linkname: e.link, Mode: e.mode}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if !strings.HasSuffix(name, ".tar") {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(data)
		zw.Close()
		data = gz.Bytes()
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var model = []entry{
	{name: "./", kind: tar.TypeDir},
	{name: "./config.json", body: `{"layers":2}`},
	{name: "code/", kind: tar.TypeDir},
	{name: "code/serve", body: "#!/bin/sh\n", mode: 0o755},
	{name: "weights/part-0.bin", body: "0123456789"},
	{name: "latest", kind: tar.TypeSymlink, link: "weights/part-0.bin"},
	{name: "weights/same.bin", kind: tar.TypeLink, link: "weights/part-0.bin"},
	{name: "code/../code/up", kind: tar.TypeSymlink, link: "../config.json"},
	{name: "dev/null", kind: tar.TypeChar},
	{name: "pipe", kind: tar.TypeFifo},
}

func newCache(t *testing.T, opts ...Option) *Cache {
	t.Helper()
	c, err := New(filepath.Join(t.TempDir(), "cache"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDirectoryIsUsedAsIs(t *testing.T) {
	c := newCache(t)
	dir := t.TempDir()
	for _, uri := range []string{dir, "file://" + dir, "file://" + dir + "/", "file://localhost" + dir} {
		got, err := c.Resolve(context.Background(), uri)
		if err != nil || got != dir {
			t.Fatalf("Resolve(%q) = %q, %v; want %q", uri, got, err, dir)
		}
	}
	if entries, _ := os.ReadDir(c.Dir()); len(entries) != 0 {
		t.Fatalf("resolving a directory left %d entries in the cache", len(entries))
	}
}

func TestArchiveIsUnpackedOnce(t *testing.T) {
	for _, name := range []string{"model.tar.gz", "model.tgz", "model.tar"} {
		t.Run(name, func(t *testing.T) {
			c := newCache(t)
			archive := writeArchive(t, t.TempDir(), name, model)
			dir, err := c.Resolve(context.Background(), "file://"+archive)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte(read(t, archive)))
			if want := filepath.Join(c.Dir(), hex.EncodeToString(sum[:])); dir != want {
				t.Fatalf("unpacked into %s, want %s", dir, want)
			}
			if got := read(t, filepath.Join(dir, "config.json")); got != `{"layers":2}` {
				t.Fatalf("config.json = %q", got)
			}
			if got := read(t, filepath.Join(dir, "latest")); got != "0123456789" {
				t.Fatalf("symbolic link reads %q", got)
			}
			if got := read(t, filepath.Join(dir, "weights/same.bin")); got != "0123456789" {
				t.Fatalf("hard link reads %q", got)
			}
			if got := read(t, filepath.Join(dir, "code/up")); got != `{"layers":2}` {
				t.Fatalf("relative symbolic link reads %q", got)
			}
			if fi, err := os.Stat(filepath.Join(dir, "code/serve")); err != nil || fi.Mode().Perm() != 0o755 {
				t.Fatalf("code/serve: %v, %v", fi.Mode(), err)
			}
			for _, skipped := range []string{"dev/null", "pipe"} {
				if _, err := os.Lstat(filepath.Join(dir, skipped)); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("%s was unpacked: %v", skipped, err)
				}
			}

			again, err := c.Resolve(context.Background(), archive)
			if err != nil || again != dir {
				t.Fatalf("second Resolve = %q, %v", again, err)
			}
			if n := c.unpacks.Load(); n != 1 {
				t.Fatalf("unpacked %d times", n)
			}
			// A new Cache (a restarted Junction) finds the tree too.
			c2, err := New(c.Dir())
			if err != nil {
				t.Fatal(err)
			}
			if got, err := c2.Resolve(context.Background(), archive); err != nil || got != dir || c2.unpacks.Load() != 0 {
				t.Fatalf("new cache: %q, %v, %d unpacks", got, err, c2.unpacks.Load())
			}
		})
	}
}

func TestEscapingEntriesAreRejected(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		want    string
	}{
		{"dot dot", []entry{{name: "../evil", body: "x"}}, "leaves the archive"},
		{"dot dot inside", []entry{{name: "a/../../evil", body: "x"}}, "leaves the archive"},
		{"absolute", []entry{{name: "/tmp/evil", body: "x"}}, "leaves the archive"},
		{"absolute symlink", []entry{{name: "passwd", kind: tar.TypeSymlink, link: "/etc/passwd"}}, "points outside"},
		{"climbing symlink", []entry{{name: "a/b", kind: tar.TypeSymlink, link: "../../etc"}}, "points outside"},
		{"write through symlink", []entry{
			{name: "up", kind: tar.TypeSymlink, link: "."},
			{name: "up/x", kind: tar.TypeSymlink, link: "../outside"},
		}, "goes through symbolic link"},
		// a -> . makes a/a the top itself, so a/a/../.. is above it,
		// though the text "a/a/../../etc" stays inside.
		{"chain through a link to the top", []entry{
			{name: "a", kind: tar.TypeSymlink, link: "."},
			{name: "esc", kind: tar.TypeSymlink, link: "a/a/../../etc"},
		}, "points outside"},
		// esc is inside when made; b -> a/a, made later, turns b/.. outward.
		{"link turned outward by a later link", []entry{
			{name: "a", kind: tar.TypeSymlink, link: "."},
			{name: "esc", kind: tar.TypeSymlink, link: "b/../etc"},
			{name: "b", kind: tar.TypeSymlink, link: "a/a"},
		}, "points outside"},
		{"link loop", []entry{
			{name: "p", kind: tar.TypeSymlink, link: "q"},
			{name: "q", kind: tar.TypeSymlink, link: "p"},
		}, "symbolic links deep"},
		{"hard link out", []entry{{name: "h", kind: tar.TypeLink, link: "../outside"}}, "leaves the archive"},
		{"hard link to symlink", []entry{
			{name: "a/l", kind: tar.TypeSymlink, link: "../x"},
			{name: "l2", kind: tar.TypeLink, link: "a/l"},
		}, "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(t)
			archive := writeArchive(t, t.TempDir(), "bad.tar.gz", tc.entries)
			_, err := c.Resolve(context.Background(), archive)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Resolve = %v, want an error saying %q", err, tc.want)
			}
			entries, _ := os.ReadDir(c.Dir())
			if len(entries) != 0 {
				t.Fatalf("a rejected archive left %v in the cache", entries)
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(c.Dir()), "evil")); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("a file was written outside the cache")
			}
		})
	}
}

func TestSizeBound(t *testing.T) {
	c := newCache(t, WithMaxUnpacked(100))
	archive := writeArchive(t, t.TempDir(), "big.tar.gz", []entry{{name: "a", body: strings.Repeat("x", 60)}, {name: "b", body: strings.Repeat("x", 60)}})
	if _, err := c.Resolve(context.Background(), archive); err == nil || !strings.Contains(err.Error(), "more than 100 bytes") {
		t.Fatalf("Resolve = %v", err)
	}
}

func TestResolveErrors(t *testing.T) {
	c := newCache(t)
	dir := t.TempDir()
	plain := filepath.Join(dir, "weights.bin")
	os.WriteFile(plain, []byte("x"), 0o644)
	garbage := filepath.Join(dir, "garbage.tar.gz")
	os.WriteFile(garbage, []byte("not gzip at all, not tar either"), 0o644)
	missing := filepath.Join(dir, "missing.tar.gz")
	tests := []struct{ uri, want string }{
		{"s3://bucket/model.tar.gz", "s3:// artifacts need the s3: section of the config"},
		{"gs://bucket/model.tar.gz", "gs:// artifacts are not supported; use file:// or s3://"},
		{"file://" + missing, missing + " does not exist"},
		{missing, missing + " does not exist"},
		{"models/m.tar.gz", "want an absolute path"},
		{"file://models/m.tar.gz", `not host "models"`},
		{"file://" + plain, "neither a directory nor a .tar.gz"},
		{garbage, "unpack " + garbage},
	}
	for _, tc := range tests {
		_, err := c.Resolve(context.Background(), tc.uri)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Resolve(%q) = %v, want an error containing %q", tc.uri, err, tc.want)
		}
	}
}

// TestConcurrentResolves: many resolves at once, through two Caches on one
// directory as two Junction processes would, all get the same complete
// tree, and each Cache unpacks at most once.
func TestConcurrentResolves(t *testing.T) {
	root := filepath.Join(t.TempDir(), "cache")
	var files []entry
	for i := range 50 {
		files = append(files, entry{name: "shard-" + strconv.Itoa(i), body: strings.Repeat(strconv.Itoa(i), 1000)})
	}
	archive := writeArchive(t, t.TempDir(), "m.tar.gz", files)
	caches := make([]*Cache, 2)
	for i := range caches {
		c, err := New(root)
		if err != nil {
			t.Fatal(err)
		}
		caches[i] = c
	}
	var wg sync.WaitGroup
	dirs := make([]string, 16)
	errs := make([]error, 16)
	for i := range dirs {
		wg.Go(func() {
			dirs[i], errs[i] = caches[i%2].Resolve(context.Background(), archive)
			if errs[i] == nil { // the tree is complete as soon as it is visible
				if got, err := os.ReadFile(filepath.Join(dirs[i], "shard-49")); err != nil || len(got) != 2000 {
					errs[i] = errors.New("incomplete tree")
				}
			}
		})
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Fatalf("resolve %d = %q, %v; first got %q", i, dirs[i], errs[i], dirs[0])
		}
	}
	for i, c := range caches {
		if n := c.unpacks.Load(); n > 1 {
			t.Fatalf("cache %d unpacked %d times", i, n)
		}
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Fatalf("cache holds %v, want only the unpacked tree", entries)
	}
}

// memFetcher serves one archive under its own scheme, as an S3 fetcher
// would after downloading.
type memFetcher struct {
	t    testing.TB
	tmps []string
}

func (f *memFetcher) Fetch(ctx context.Context, u *url.URL, tmp string) (string, error) {
	f.tmps = append(f.tmps, tmp)
	if u.Host != "bucket" {
		return "", errors.New("no such bucket")
	}
	return writeArchive(f.t, tmp, "model.tar.gz", model), nil
}

func TestFetcherPlugsIn(t *testing.T) {
	f := &memFetcher{t: t}
	c := newCache(t, WithFetcher("mem", f))
	dir, err := c.Resolve(context.Background(), "mem://bucket/model.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "config.json")); got != `{"layers":2}` {
		t.Fatalf("config.json = %q", got)
	}
	if _, err := os.Stat(f.tmps[0]); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the fetcher's temporary directory is still there: %v", err)
	}
	if _, err := c.Resolve(context.Background(), "mem://other/m.tar.gz"); err == nil || !strings.Contains(err.Error(), "mem://other/m.tar.gz: no such bucket") {
		t.Fatalf("Resolve = %v", err)
	}
}

func TestAbandonedTempDirsAreRemoved(t *testing.T) {
	root := filepath.Join(t.TempDir(), "cache")
	dead := filepath.Join(root, ".partial-999999999-123")
	mine := filepath.Join(root, ".partial-"+strconv.Itoa(os.Getpid())+"-456")
	for _, d := range []string{dead, mine} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("abandoned %s kept: %v", dead, err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Fatalf("a live process's %s was removed: %v", mine, err)
	}
}

func BenchmarkResolveCached(b *testing.B) {
	c, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	archive := writeArchive(b, b.TempDir(), "m.tar.gz", model)
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.Resolve(ctx, archive); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLosingTheRenameRace: when another process has put the tree in place
// while this one unpacked, this one uses it and drops its own copy.
func TestLosingTheRenameRace(t *testing.T) {
	c := newCache(t)
	archive := writeArchive(t, t.TempDir(), "m.tar.gz", model)
	dest := filepath.Join(c.Dir(), "digest")
	os.MkdirAll(dest, 0o755)
	os.WriteFile(filepath.Join(dest, "theirs"), []byte("x"), 0o644)
	got, err := c.unpackInto(context.Background(), archive, dest)
	if err != nil || got != dest {
		t.Fatalf("unpackInto = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dest, "theirs")); err != nil {
		t.Fatalf("the winner's tree was replaced: %v", err)
	}
	if entries, _ := os.ReadDir(c.Dir()); len(entries) != 1 {
		t.Fatalf("cache holds %v, want only the winner's tree", entries)
	}
}
