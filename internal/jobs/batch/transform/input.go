package transform

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/junctionhq/junction/internal/blob"
	"github.com/junctionhq/junction/internal/jobs/batch"
)

// request is one line of the stream Open makes of a job's inputs: the
// records of one invocation. Its fields are short because the stream is
// read three times (validation, the run, the output) and its lines are
// kept in no table.
type request struct {
	// Object is the input object's URI, and Rel its name under the input
	// prefix, which its .out takes.
	Object string `json:"o"`
	Rel    string `json:"p"`
	// Line is the line the first record is on, from 1; 0 for a whole
	// object.
	Line int `json:"l,omitempty"`
	// Records is how many records Body holds; an object with none has
	// one request of none, so that its (empty) .out is written.
	Records int `json:"n"`
	// Body is the records, each ending in a newline when split by line.
	Body []byte `json:"b,omitempty"`
	// Error says why the input cannot run (a record too large, no
	// objects); validation fails the job with it.
	Error string `json:"e,omitempty"`
}

// records returns the records of a request's body.
func (r *request) records(split string) [][]byte {
	if split != SplitLine {
		return [][]byte{r.Body}
	}
	out := make([][]byte, 0, r.Records)
	for rec := range bytes.SplitSeq(bytes.TrimSuffix(r.Body, []byte("\n")), []byte("\n")) {
		out = append(out, rec)
	}
	if r.Records == 0 {
		return nil
	}
	return out
}

// payloadLimit is the most bytes one request may carry.
func payloadLimit(s *Spec) int {
	mb := *s.MaxPayloadInMB
	if mb == 0 {
		mb = MaxPayloadLimitInMB
	}
	return mb << 20
}

// lineLimit bounds one line of the request stream: a full payload in
// base64, and room for the names.
func lineLimit(s *Spec) int { return payloadLimit(s)/3*4 + 1<<20 }

// input is a job's input objects, read in order.
type input struct {
	objects *blob.Objects
	spec    *Spec
}

// each calls fn for every input object, in order, with its name under the
// input prefix (S3Prefix) or as the manifest lists it (ManifestFile).
func (in *input) each(ctx context.Context, fn func(loc blob.Location, rel string) error) error {
	src := in.spec.TransformInput.DataSource.S3DataSource
	loc, err := blob.ParseLocation(src.S3URI)
	if err != nil {
		return err
	}
	if src.S3DataType == ManifestFile {
		return in.manifest(ctx, loc, fn)
	}
	if strings.HasSuffix(src.S3URI, "/") && !strings.HasSuffix(loc.Key, "/") {
		loc.Key += "/" // a file:// path is cleaned of it, but it bounds the prefix
	}
	dir := loc.Key[:strings.LastIndex(loc.Key, "/")+1]
	return in.objects.List(ctx, loc, func(o blob.Object) error {
		return fn(o.Location, strings.TrimPrefix(o.Location.Key, dir))
	})
}

// manifest reads a manifest file: a JSON array whose first element is
// {"prefix": "s3://bucket/prefix/"} and whose others are keys relative to
// it. It is read as a stream.
func (in *input) manifest(ctx context.Context, loc blob.Location, fn func(blob.Location, string) error) error {
	r, err := in.objects.Open(ctx, loc)
	if err != nil {
		return err
	}
	defer r.Close()
	dec := json.NewDecoder(bufio.NewReader(r))
	bad := func(format string, args ...any) error {
		return &inputError{fmt.Sprintf("manifest %s: ", loc) + fmt.Sprintf(format, args...)}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return bad(`it must be a JSON array: [{"prefix": "s3://bucket/prefix/"}, "key", ...]`)
	}
	var head struct {
		Prefix string `json:"prefix"`
	}
	if !dec.More() || dec.Decode(&head) != nil || head.Prefix == "" {
		return bad(`its first element must be {"prefix": "s3://bucket/prefix/"}`)
	}
	prefix, err := blob.ParseLocation(head.Prefix)
	if err != nil {
		return bad("prefix: %v", err)
	}
	if strings.HasSuffix(head.Prefix, "/") && !strings.HasSuffix(prefix.Key, "/") {
		prefix.Key += "/"
	}
	for n := 1; dec.More(); n++ {
		var rel string
		if err := dec.Decode(&rel); err != nil || rel == "" {
			return bad("element %d must be a key under the prefix, a non-empty string", n)
		}
		obj := prefix
		obj.Key = prefix.Key + rel
		if err := fn(obj, rel); err != nil {
			return err
		}
	}
	return nil
}

// inputError is a problem with the input itself: validation reports it as
// the job's failure rather than as a fault of Junction's.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

// write writes the job's requests to w, in input order.
func (in *input) write(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	emit := func(r *request) error {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		bw.Write(b)
		return bw.WriteByte('\n')
	}
	objects := 0
	err := in.each(ctx, func(loc blob.Location, rel string) error {
		objects++
		return in.split(ctx, loc, rel, emit)
	})
	var ie *inputError
	if errors.As(err, &ie) {
		err = emit(&request{Error: ie.msg})
	}
	if err != nil {
		return err
	}
	if objects == 0 {
		emit(&request{Error: fmt.Sprintf("no input objects: nothing is under %s", in.spec.TransformInput.DataSource.S3DataSource.S3URI)})
	}
	return bw.Flush()
}

// split reads one object and emits its requests.
func (in *input) split(ctx context.Context, loc blob.Location, rel string, emit func(*request) error) error {
	body, err := in.objects.Open(ctx, loc)
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			return &inputError{fmt.Sprintf("input object %s does not exist", loc)}
		}
		return err
	}
	defer body.Close()
	var r io.Reader = body
	if in.spec.TransformInput.CompressionType == CompressionGzip {
		gz, err := gzip.NewReader(body)
		if err != nil {
			return &inputError{fmt.Sprintf("input object %s is not gzip (CompressionType is Gzip): %v", loc, err)}
		}
		defer gz.Close()
		r = gz
	}
	limit := payloadLimit(in.spec)
	uri := loc.String()
	tooLarge := func(what string, n int) error {
		return &inputError{fmt.Sprintf("%s of %s holds %d bytes, more than MaxPayloadInMB allows (%d MB)", what, uri, n, limit>>20)}
	}
	if in.spec.TransformInput.SplitType != SplitLine {
		data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
		if err != nil {
			return fmt.Errorf("reading %s: %w", uri, err)
		}
		if len(data) > limit {
			return tooLarge("the object", len(data))
		}
		return emit(&request{Object: uri, Rel: rel, Records: 1, Body: data})
	}
	single := in.spec.BatchStrategy == SingleRecord
	cur := &request{Object: uri, Rel: rel}
	sent := false
	flush := func() error {
		if cur.Records == 0 {
			return nil
		}
		sent = true
		err := emit(cur)
		cur = &request{Object: uri, Rel: rel}
		return err
	}
	err = batch.ScanLines(r, limit, func(_, n int, rec []byte) error {
		if len(rec)+1 > limit {
			return tooLarge(fmt.Sprintf("line %d", n), len(rec))
		}
		if cur.Records > 0 && (single || len(cur.Body)+len(rec)+1 > limit) {
			if err := flush(); err != nil {
				return err
			}
		}
		if cur.Records == 0 {
			cur.Line = n
		}
		cur.Body = append(append(cur.Body, rec...), '\n')
		cur.Records++
		return nil
	})
	if errors.Is(err, batch.ErrLineTooLong) {
		return &inputError{fmt.Sprintf("%s: %v; MaxPayloadInMB allows %d MB", uri, err, limit>>20)}
	}
	if err != nil {
		var ie *inputError
		if errors.As(err, &ie) {
			return err
		}
		return fmt.Errorf("reading %s: %w", uri, err)
	}
	if err := flush(); err != nil {
		return err
	}
	if !sent {
		return emit(&request{Object: uri, Rel: rel})
	}
	return nil
}
