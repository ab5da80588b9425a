package transform

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"strconv"

	"github.com/junctionhq/junction/internal/blob"
	"github.com/junctionhq/junction/internal/jobs/batch"
)

// Output keys of a finished transform job (batch.Job.Output).
const (
	// OutputObjects counts the .out objects written; FailedObjects the
	// inputs that got none, because a request failed or never ran.
	OutputObjects = "output_objects"
	FailedObjects = "failed_objects"
	// FirstErrors is the URI of the first <input>.errors written.
	FirstErrors = "errors_uri"
	// FailedRecords counts the records of the failed requests.
	FailedRecords = "failed_records"
)

// errAbandoned ends the upload of an .out that is not to be written.
var errAbandoned = errors.New("abandoned: the input has records that failed or never ran")

// upload is an object being written as a stream. Abandoning it leaves no
// object: blob.Objects.Put writes whole objects or none.
type upload struct {
	pw   *io.PipeWriter
	w    *bufio.Writer
	done chan error
}

func (t *Transform) startUpload(ctx context.Context, loc blob.Location) *upload {
	pr, pw := io.Pipe()
	u := &upload{pw: pw, w: bufio.NewWriterSize(pw, 64<<10), done: make(chan error, 1)}
	go func() {
		err := t.Objects.Put(ctx, loc, pr, "")
		pr.CloseWithError(err) // unblocks a writer if Put gave up early
		u.done <- err
	}()
	return u
}

// close ends the object and waits for it to be stored.
func (u *upload) close() error {
	err := u.w.Flush()
	u.pw.CloseWithError(err)
	if perr := <-u.done; perr != nil {
		return perr
	}
	return err
}

// abandon ends the upload without an object.
func (u *upload) abandon() {
	u.pw.CloseWithError(errAbandoned)
	<-u.done
}

// object is the output of one input object being assembled.
type object struct {
	rel        string
	out, errs  *upload
	broken     bool // a request failed or never ran: no .out
	hadFailure bool
}

// Finish writes <input>.out for each input whose requests all succeeded,
// their answers in input order, and <input>.errors listing the failed
// requests of the others. A job stopped or failed halfway writes the
// inputs it finished, as SageMaker does.
func (t *Transform) Finish(ctx context.Context, j *batch.Job, entries iter.Seq2[batch.Entry, error]) (map[string]string, error) {
	s := SpecOf(j)
	base, err := blob.ParseLocation(s.TransformOutput.S3OutputPath)
	if err != nil {
		return nil, err
	}
	var written, failedObjects, failedRecords int
	firstErrors := ""
	var cur *object
	end := func() error {
		if cur == nil {
			return nil
		}
		o := cur
		cur = nil
		if o.errs != nil {
			if err := o.errs.close(); err != nil {
				if o.out != nil {
					o.out.abandon()
				}
				return err
			}
		}
		if o.broken {
			failedObjects++
			if o.out != nil {
				o.out.abandon()
			}
			return nil
		}
		if o.out == nil { // no records, or none with an answer
			o.out = t.startUpload(ctx, base.Join(o.rel+".out"))
		}
		written++
		return o.out.close()
	}
	abort := func() {
		if cur != nil {
			for _, u := range []*upload{cur.out, cur.errs} {
				if u != nil {
					u.abandon()
				}
			}
		}
	}
	for en, err := range entries {
		if err != nil {
			abort()
			return nil, err
		}
		var r request
		if err := json.Unmarshal(en.Input, &r); err != nil {
			abort()
			return nil, err
		}
		if cur == nil || cur.rel != r.Rel {
			if err := end(); err != nil {
				return nil, err
			}
			cur = &object{rel: r.Rel}
		}
		var o outcome
		if en.Done {
			json.Unmarshal(en.Output, &o)
		}
		switch {
		case !en.Done:
			cur.broken = true
		case en.Failed || o.Error != nil:
			cur.broken = true
			failedRecords += r.Records
			if cur.errs == nil {
				loc := base.Join(cur.rel + ".errors")
				if firstErrors == "" {
					firstErrors = loc.String()
				}
				cur.errs = t.startUpload(ctx, loc)
			}
			b, _ := json.Marshal(o.Error)
			cur.errs.w.Write(b)
			cur.errs.w.WriteByte('\n')
		case !cur.broken:
			if cur.out == nil {
				cur.out = t.startUpload(ctx, base.Join(cur.rel+".out"))
			}
			cur.out.w.Write(o.Body)
		}
	}
	if err := end(); err != nil {
		return nil, err
	}
	out := map[string]string{OutputObjects: strconv.Itoa(written), FailedObjects: strconv.Itoa(failedObjects),
		FailedRecords: strconv.Itoa(failedRecords), "output_path": s.TransformOutput.S3OutputPath}
	if firstErrors != "" {
		out[FirstErrors] = firstErrors
	}
	return out, nil
}
