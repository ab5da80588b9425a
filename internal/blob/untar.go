package blob

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// maxEntries bounds the entries of one archive.
const maxEntries = 1_000_000

// untar unpacks the tar archive at src, gzipped or not, into the empty
// directory dst. Nothing it writes can land outside dst: entries with
// absolute names or ".." are rejected, as are symbolic links that point
// outside the archive (resolved against the tree unpacked so far, link by
// link, and once more over the finished tree, so that a chain such as
// "a -> ." then "esc -> a/a/../../etc" is caught), entries reached
// through a symbolic link, and hard
// links to anything but a regular file; every file operation also goes
// through an os.Root. Device files and FIFOs are skipped; modes keep only
// their executable bits (files are 0644 or 0755, directories 0755).
func untar(ctx context.Context, src, dst string, maxBytes int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("unpack %s: %w", src, err)
		}
		defer zr.Close()
		r = zr
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer root.Close()
	x := extractor{root: root, links: map[string]bool{}, maxBytes: maxBytes}
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return fmt.Errorf("unpack %s: not a tar archive, or an empty one", src)
			}
			if err := x.finish(); err != nil {
				return fmt.Errorf("unpack %s: %w", src, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("unpack %s: %w", src, err)
		}
		if n >= maxEntries {
			return fmt.Errorf("unpack %s: more than %d entries", src, maxEntries)
		}
		if err := x.entry(hdr, tr); err != nil {
			return fmt.Errorf("unpack %s: entry %q: %w", src, hdr.Name, err)
		}
	}
}

// finish checks every symbolic link again over the finished tree: a link
// that stayed inside when it was made can be turned outward by a link
// made after it (its target's directory becoming a link to "..").
func (x *extractor) finish() error {
	for name := range x.links {
		target, err := x.root.Readlink(name)
		if err != nil {
			return fmt.Errorf("entry %q: %w", name, err)
		}
		if err := x.inside(name, target); err != nil {
			return fmt.Errorf("entry %q: %w", name, err)
		}
	}
	return nil
}

// extractor writes one archive's entries under root.
type extractor struct {
	root     *os.Root
	links    map[string]bool // symbolic links created, by cleaned name
	written  int64
	maxBytes int64
}

func (x *extractor) entry(hdr *tar.Header, body io.Reader) error {
	name, err := x.local(hdr.Name)
	if err != nil || name == "." {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.root.MkdirAll(name, 0o755)
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse:
		x.written += hdr.Size
		if x.written > x.maxBytes {
			return fmt.Errorf("archive unpacks to more than %d bytes", x.maxBytes)
		}
		if err := x.prepare(name); err != nil {
			return err
		}
		out, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644|os.FileMode(hdr.Mode)&0o111)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, body)
		return errors.Join(err, out.Close())
	case tar.TypeSymlink:
		target := hdr.Linkname
		if target == "" || path.IsAbs(target) || !isLocal(path.Join(path.Dir(name), target)) {
			return fmt.Errorf("symbolic link to %q points outside the archive", target)
		}
		if err := x.prepare(name); err != nil {
			return err
		}
		if err := x.inside(name, target); err != nil {
			return err
		}
		x.links[name] = true
		return x.root.Symlink(target, name)
	case tar.TypeLink:
		target, err := x.local(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link: %w", err)
		}
		if fi, err := x.root.Lstat(target); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("hard link to %q, which is not a regular file earlier in the archive", hdr.Linkname)
		}
		if err := x.prepare(name); err != nil {
			return err
		}
		return x.root.Link(target, name)
	default:
		// Devices, FIFOs and kinds a model does not need.
		return nil
	}
}

// local cleans an entry name to a slash-separated path inside the archive
// ("." for the archive's top), or rejects it.
func (x *extractor) local(name string) (string, error) {
	clean := path.Clean(strings.TrimPrefix(name, "./"))
	if path.IsAbs(name) || !isLocal(clean) {
		return "", fmt.Errorf("path %q leaves the archive", name)
	}
	for dir := path.Dir(clean); dir != "."; dir = path.Dir(dir) {
		if x.links[dir] {
			return "", fmt.Errorf("path %q goes through symbolic link %q", name, dir)
		}
	}
	return clean, nil
}

// prepare makes an entry's parent directory and removes an earlier entry
// of the same name (the later one wins, as with tar itself).
func (x *extractor) prepare(name string) error {
	if dir := path.Dir(name); dir != "." {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := x.root.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	delete(x.links, name)
	return nil
}

// isLocal reports whether a cleaned slash path stays inside its root.
func isLocal(p string) bool {
	return p != ".." && !strings.HasPrefix(p, "../") && !path.IsAbs(p)
}

// maxHops bounds the symbolic links followed resolving one link, as the
// kernel's own limit does.
const maxHops = 40

// inside resolves the symbolic link name -> target the way the kernel
// would, following the links already unpacked, and fails if the path
// ever climbs above the archive's top. A component that does not exist
// (yet) is taken as a plain name.
func (x *extractor) inside(name, target string) error {
	hops := 0
	if _, err := x.resolve(splitPath(path.Dir(name)), target, &hops); err != nil {
		return fmt.Errorf("symbolic link to %q points outside the archive: %w", target, err)
	}
	return nil
}

// resolve walks target from the directory dir (components below the
// archive's top) and returns where it ends.
func (x *extractor) resolve(dir []string, target string, hops *int) ([]string, error) {
	if path.IsAbs(target) {
		return nil, fmt.Errorf("it reaches the absolute path %q", target)
	}
	cur := append([]string(nil), dir...)
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return nil, errors.New("it climbs above the archive's top")
			}
			cur = cur[:len(cur)-1]
			continue
		}
		next := append(cur[:len(cur):len(cur)], c)
		fi, err := x.root.Lstat(path.Join(next...))
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		if *hops++; *hops > maxHops {
			return nil, fmt.Errorf("more than %d symbolic links deep", maxHops)
		}
		link, err := x.root.Readlink(path.Join(next...))
		if err != nil {
			return nil, err
		}
		if cur, err = x.resolve(cur, link, hops); err != nil {
			return nil, err
		}
	}
	return cur, nil
}

// splitPath splits a cleaned slash path into its components; "." has none.
func splitPath(p string) []string {
	if p == "." || p == "" {
		return nil
	}
	return strings.Split(p, "/")
}
