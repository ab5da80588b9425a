package blob

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Object is an object found by List.
type Object struct {
	Location Location
	// Size is its length in bytes.
	Size int64
}

// List calls fn for each object whose key begins with prefix, in the
// order of their keys (bytewise, as S3 lists them), and stops at fn's
// first error, returning it. An S3 prefix is a key prefix, so
// s3://b/in/part lists in/part-1 and in/partition/x; a file prefix is a
// path prefix the same way, and hidden files (a name starting with a dot,
// such as the temporary files of a Put in progress) are left out. An S3
// listing is read a page at a time; a directory's is read whole (its
// paths, not their contents) to sort it.
func (o *Objects) List(ctx context.Context, prefix Location, fn func(Object) error) error {
	if prefix.Scheme == "s3" {
		if o == nil || o.S3 == nil {
			return errors.New(prefix.String() + ": s3:// is not configured (set s3: in the config)")
		}
		return o.S3.list(ctx, prefix.Bucket, prefix.Key, fn)
	}
	return listFiles(ctx, prefix.Key, fn)
}

func (s *S3) list(ctx context.Context, bucket, prefix string, fn func(Object) error) error {
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return s3Error(bucket, prefix, err)
		}
		for _, obj := range page.Contents {
			key := aws.ToString(obj.Key)
			if strings.HasSuffix(key, "/") {
				continue // a folder marker, not data
			}
			if err := fn(Object{Location: Location{Scheme: "s3", Bucket: bucket, Key: key}, Size: aws.ToInt64(obj.Size)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// listFiles lists the regular files whose path begins with prefix, in
// bytewise order of their paths.
func listFiles(ctx context.Context, prefix string, fn func(Object) error) error {
	root := prefix
	if !strings.HasSuffix(prefix, string(filepath.Separator)) {
		root = filepath.Dir(prefix)
	}
	var paths []Object
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		// A directory is walked only if files under it can match.
		if d.IsDir() {
			if p != root && !strings.HasPrefix(p+string(filepath.Separator), prefix) && !strings.HasPrefix(prefix, p+string(filepath.Separator)) {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(p, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		paths = append(paths, Object{Location: Location{Scheme: "file", Key: p}, Size: info.Size()})
		return nil
	})
	if err != nil {
		return err
	}
	// WalkDir visits a directory's entries in name order, which is not
	// bytewise path order ("a/b" before "a-c" by name, after by path).
	sortObjects(paths)
	for _, obj := range paths {
		if err := fn(obj); err != nil {
			return err
		}
	}
	return nil
}

func sortObjects(objs []Object) {
	slices.SortFunc(objs, func(a, b Object) int { return strings.Compare(a.Location.Key, b.Location.Key) })
}
