package blob

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzUntar: whatever archive a model names, unpacking it writes nothing
// outside its directory, and an archive it accepts leaves no symbolic link
// that resolves outside it (a refused one is removed by the Cache); a bad
// archive is an error, never a panic.
func FuzzUntar(f *testing.F) {
	dir := f.TempDir()
	for i, entries := range [][]entry{model,
		{{name: "a", kind: tar.TypeSymlink, link: "."}, {name: "esc", kind: tar.TypeSymlink, link: "a/a/../../etc"}},
		{{name: "up", kind: tar.TypeSymlink, link: "."}, {name: "up/x", kind: tar.TypeSymlink, link: "../outside"}},
		{{name: "../evil", body: "x"}},
		{{name: "d/", kind: tar.TypeDir}, {name: "d/f", body: "x"}, {name: "h", kind: tar.TypeLink, link: "d/f"}},
	} {
		for _, ext := range []string{".tar", ".tar.gz"} {
			b, err := os.ReadFile(writeArchive(f, dir, "seed"+string(rune('a'+i))+ext, entries))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, archive []byte) {
		root := t.TempDir()
		src := filepath.Join(root, "in.tar")
		if err := os.WriteFile(src, archive, 0o644); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, "out")
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		err := untar(context.Background(), src, dst, 1<<20)
		if entries, _ := os.ReadDir(root); len(entries) != 2 {
			t.Fatalf("unpacking wrote beside its directory: %v", entries)
		}
		if err != nil {
			return
		}
		if dst, err = filepath.EvalSymlinks(dst); err != nil {
			t.Fatal(err)
		}
		filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.Type()&os.ModeSymlink == 0 {
				return nil
			}
			if real, err := filepath.EvalSymlinks(p); err == nil && real != dst && !strings.HasPrefix(real, dst+string(filepath.Separator)) {
				t.Fatalf("link %s resolves to %s, outside %s", p, real, dst)
			}
			return nil
		})
	})
}
