package blob

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/junctionhq/junction/internal/testkit/s3test"
)

// TestObjectsList lists by key prefix, in key order, on both backends: a
// prefix ending in / is a folder; one that does not also matches the keys
// that merely begin with it; folders are walked; hidden files are not
// listed.
func TestObjectsList(t *testing.T) {
	o := &Objects{S3: newS3(t)}
	ctx := context.Background()
	keys := []string{"in/b.txt", "in/a/z.txt", "in/a-c.txt", "inbox/x.txt", "other/y.txt"}
	bases := map[string]Location{"s3": {Scheme: "s3", Bucket: s3test.Bucket(t)}, "file": {Scheme: "file", Key: t.TempDir()}}
	for name, base := range bases {
		t.Run(name, func(t *testing.T) {
			at := func(key string) Location {
				if base.Scheme == "s3" {
					return Location{Scheme: "s3", Bucket: base.Bucket, Key: key}
				}
				return Location{Scheme: "file", Key: filepath.Join(base.Key, key)}
			}
			for _, k := range keys {
				if err := o.Put(ctx, at(k), strings.NewReader(k), ""); err != nil {
					t.Fatal(err)
				}
			}
			if base.Scheme == "file" {
				o.Put(ctx, at("in/.partial"), strings.NewReader("hidden"), "")
			}
			list := func(prefix string) []string {
				l := at(prefix)
				if strings.HasSuffix(prefix, "/") && base.Scheme == "file" {
					l.Key += "/"
				}
				var got []string
				err := o.List(ctx, l, func(obj Object) error {
					rel := strings.TrimPrefix(obj.Location.Key, base.Key)
					got = append(got, strings.TrimPrefix(rel, "/"))
					if obj.Size != int64(len(strings.TrimPrefix(rel, "/"))) {
						t.Errorf("%s: size %d", rel, obj.Size)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				return got
			}
			if got, want := list("in/"), []string{"in/a-c.txt", "in/a/z.txt", "in/b.txt"}; !slices.Equal(got, want) {
				t.Errorf("list in/ = %v, want %v", got, want)
			}
			if got, want := list("in"), []string{"in/a-c.txt", "in/a/z.txt", "in/b.txt", "inbox/x.txt"}; !slices.Equal(got, want) {
				t.Errorf("list in = %v, want %v", got, want)
			}
			if got := list("none/"); len(got) != 0 {
				t.Errorf("list none/ = %v, want nothing", got)
			}
		})
	}
}
