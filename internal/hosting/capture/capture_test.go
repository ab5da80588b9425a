package capture

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/blob"
	"github.com/junctionhq/junction/internal/hosting"
)

func settings(dest string, percent int, modes []string, header *hosting.CaptureContentTypeHeader) *hosting.DataCapture {
	d := &hosting.DataCapture{InitialSamplingPercentage: &percent, DestinationS3URI: dest, CaptureContentTypeHeader: header}
	for _, m := range modes {
		d.CaptureOptions = append(d.CaptureOptions, hosting.CaptureOption{CaptureMode: m})
	}
	return d
}

var both = []string{hosting.CaptureInputAndOutput}

// The lines are SageMaker's data-capture records, field for field, as
// its documentation shows them (testdata/records.jsonl): CSV and JSON
// types listed in capture_content_type_header are kept as text, anything
// else — every type when the header is absent, and a listed type whose
// body is not UTF-8 — is base64; a side not captured is absent.
func TestRecordsMatchSageMakersFormat(t *testing.T) {
	text := &hosting.CaptureContentTypeHeader{CsvContentTypes: []string{"text/csv"}, JsonContentTypes: []string{"Application/JSON"}}
	at := time.Date(2020, 7, 30, 13, 36, 30, 412e6, time.UTC)
	cases := []*event{
		{d: settings("file:///x", 100, both, text), inType: "text/csv", in: []byte("0.00632,18.00,2.310"),
			outType: "text/csv; charset=utf-8", out: []byte("30.4133586884")},
		{d: settings("file:///x", 100, both, text), inType: "application/json", in: []byte(`{"inputs": "<b>hi</b>"}`),
			outType: "application/json", out: []byte(`{"label":"greeting"}`), inferenceID: "order-17"},
		{d: settings("file:///x", 100, both, nil), inType: "application/json", in: []byte(`{"x": 1}`),
			outType: "application/json", out: []byte(`{"y": 2}`)},
		{d: settings("file:///x", 100, []string{hosting.CaptureInput}, text), inType: "text/csv", in: []byte{0xff, 0, 1}},
		{d: settings("file:///x", 100, []string{hosting.CaptureOutput}, text), outType: "image/png", out: []byte("\x89PNG")},
	}
	var got bytes.Buffer
	for _, ev := range cases {
		ev.at = at
		ev.input, ev.output = ev.d.Modes()
		appendLine(&got, ev, "8f45e35c-fa44-40d2-8ed3-1bcab3a596f3")
	}
	want, err := os.ReadFile("testdata/records.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	gl, wl := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
	if len(gl) != len(wl) {
		t.Fatalf("%d lines, want %d:\n%s", len(gl), len(wl), got.String())
	}
	for i := range wl {
		if gl[i] != wl[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, gl[i], wl[i])
		}
	}
}

// An invocation as hosting hands it over.
func invocation(endpoint, inferenceID string, body string) (*hosting.Invocation, *hosting.Result) {
	return &hosting.Invocation{Endpoint: endpoint, ContentType: "application/json", InferenceID: inferenceID, Body: []byte(body)},
		&hosting.Result{Variant: "AllTraffic", ContentType: "application/json", Body: []byte(`{"ok":true}`)}
}

// readObjects returns every capture object under dir, by path relative
// to it, as records; objects still being written are not there yet.
func readObjects(t *testing.T, dir string) map[string][]Record {
	t.Helper()
	out := map[string][]Record{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") {
			return nil // an object being written (.NAME.partial-…), renamed into place when complete
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rel, _ := filepath.Rel(dir, p)
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %q is not a record: %v", rel, sc.Text(), err)
			}
			out[rel] = append(out[rel], r)
		}
		return nil
	})
	return out
}

// Records gather into one object per endpoint variant and window, filed
// as SageMaker files them (ENDPOINT/VARIANT/yyyy/mm/dd/hh/mm-ss-mmm-UUID.jsonl),
// and each window's object appears when the window ends, not at Close.
func TestWindowsBecomeObjectsUnderSageMakersLayout(t *testing.T) {
	dir := t.TempDir()
	w := New(&blob.Objects{}, Options{Window: 100 * time.Millisecond})
	w.Start()
	defer w.Close(context.Background())
	d := settings("file://"+dir+"/capture", 100, both, nil)
	at := time.Now()
	for i := range 5 {
		inv, res := invocation("scorer", fmt.Sprint("inf-", i), `{"n":1}`)
		w.Capture(d, inv, res, at)
	}
	inv, res := invocation("ranker", "", `{"n":2}`)
	w.Capture(d, inv, res, at)

	deadline := time.Now().Add(10 * time.Second)
	var objs map[string][]Record
	for {
		objs = readObjects(t, dir)
		if len(objs) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(objs) != 2 {
		t.Fatalf("objects before Close: %v, want one per endpoint", objs)
	}
	name := regexp.MustCompile(`^capture/(scorer|ranker)/AllTraffic/` + at.UTC().Format("2006/01/02/15") +
		`/\d\d-\d\d-\d\d\d-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.jsonl$`)
	ids := map[string]bool{}
	for p, recs := range objs {
		if !name.MatchString(p) {
			t.Errorf("object %s is not named ENDPOINT/VARIANT/yyyy/mm/dd/hh/mm-ss-mmm-UUID.jsonl", p)
		}
		for _, r := range recs {
			ids[r.EventMetadata.EventID] = true
			if r.CaptureData.EndpointInput == nil || r.CaptureData.EndpointOutput == nil || r.EventVersion != "0" {
				t.Errorf("%s: record %+v", p, r)
			}
		}
	}
	if len(ids) != 6 {
		t.Fatalf("%d distinct event ids in %v, want 6", len(ids), objs)
	}
	if s := w.Stats(); s.Written != 6 || s.Objects != 2 || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// Sampling takes about the configured share; 0 percent or capture
// disabled take nothing; Close writes what is left.
func TestSampling(t *testing.T) {
	dir := t.TempDir()
	w := New(&blob.Objects{}, Options{Window: time.Hour, BufferBytes: 1 << 30, Queue: 10000})
	w.Start()
	off := false
	for _, c := range []struct {
		d *hosting.DataCapture
	}{
		{settings("file://"+dir, 20, both, nil)},
		{settings("file://"+dir+"/none", 0, both, nil)},
		{&hosting.DataCapture{EnableCapture: &off, InitialSamplingPercentage: settings("", 100, nil, nil).InitialSamplingPercentage,
			DestinationS3URI: "file://" + dir + "/off", CaptureOptions: []hosting.CaptureOption{{CaptureMode: hosting.CaptureInput}}}},
	} {
		for range 5000 {
			inv, res := invocation("ep", "", "x")
			if c.d.Enabled() { // hosting's rule: a disabled config is never handed over
				w.Capture(c.d, inv, res, time.Now())
			}
		}
	}
	w.Close(context.Background())
	n := 0
	for _, recs := range readObjects(t, dir) {
		n += len(recs)
	}
	// 20% of 5000 is 1000, with a standard deviation of about 28.
	if n < 850 || n > 1150 {
		t.Fatalf("%d of 5000 captured at 20%%", n)
	}
	if s := w.Stats(); s.Written != int64(n) || s.HeldBytes != 0 {
		t.Fatalf("stats %+v after Close, %d records in objects", s, n)
	}
}

// A full buffer drops records and counts them, without blocking the
// caller; what was taken is still written.
func TestFullBufferDropsAndCounts(t *testing.T) {
	dir := t.TempDir()
	w := New(&blob.Objects{}, Options{Window: time.Hour, BufferBytes: 4000})
	d := settings("file://"+dir, 100, both, nil)
	body := strings.Repeat("a", 600) // about 1,200 bytes reserved each
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10 { // the worker is not running: nothing drains
			inv, res := invocation("ep", "", body)
			w.Capture(d, inv, res, time.Now())
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Capture blocked on a full buffer")
	}
	s := w.Stats()
	if s.Dropped != 7 || s.HeldBytes > 4000 {
		t.Fatalf("stats with a full buffer: %+v, want 3 taken and 7 dropped", s)
	}
	w.Start()
	w.Close(context.Background())
	if s := w.Stats(); s.Written != 3 || s.HeldBytes != 0 {
		t.Fatalf("stats after Close: %+v", s)
	}
}

// An object that cannot be written is retried, then its records are
// counted as failed and their memory released.
func TestFailedWritesAreCounted(t *testing.T) {
	w := New(&blob.Objects{}, Options{Window: 10 * time.Millisecond, Attempts: 2}) // no S3 configured
	w.Start()
	inv, res := invocation("ep", "", "{}")
	w.Capture(settings("s3://bucket/capture", 100, both, nil), inv, res, time.Now())
	deadline := time.Now().Add(10 * time.Second)
	for w.Stats().Failed == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	w.Close(context.Background())
	if s := w.Stats(); s.Failed != 1 || s.Written != 0 || s.HeldBytes != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// BenchmarkCapture is the cost an invocation pays when its endpoint
// captures traffic: sampling and the hand-over, at 100% and at 10%. The
// worker's
// encoding and writing are off the caller's path and not counted: the
// benchmark takes the records off the clock as the worker would. With capture off the
// cost is one nil check in hosting (see BenchmarkCaptureOverhead in
// internal/platform/server for whole invocations).
func BenchmarkCapture(b *testing.B) {
	inv, res := invocation("ep", "inf-1", strings.Repeat("x", 1024))
	at := time.Now()
	for _, pct := range []int{100, 10} {
		b.Run(fmt.Sprintf("sampled-%d%%", pct), func(b *testing.B) {
			w := New(&blob.Objects{}, Options{Queue: 1 << 12})
			d := settings("file:///x", pct, both, nil)
			b.ReportAllocs()
			for b.Loop() {
				w.Capture(d, inv, res, at)
				if len(w.in) == cap(w.in) {
					// Take the records as the worker would, off the clock.
					b.StopTimer()
					for len(w.in) > 0 {
						ev := <-w.in
						w.held.Add(-ev.cost)
					}
					b.StartTimer()
				}
			}
			if s := w.Stats(); s.Dropped != 0 {
				b.Fatalf("%d of %d records dropped: the benchmark measured drops, not hand-overs", s.Dropped, b.N)
			}
		})
	}
}

// BenchmarkEncode is the worker's cost per record: one line for a
// 1 KiB JSON request and answer, kept as text and in base64.
func BenchmarkEncode(b *testing.B) {
	body := []byte(`{"inputs":"` + strings.Repeat("x", 1000) + `"}`)
	for _, c := range []struct {
		name   string
		header *hosting.CaptureContentTypeHeader
	}{{"json", &hosting.CaptureContentTypeHeader{JsonContentTypes: []string{"application/json"}}}, {"base64", nil}} {
		b.Run(c.name, func(b *testing.B) {
			ev := &event{d: settings("file:///x", 100, both, c.header), endpoint: "ep", variant: "a", at: time.Now(),
				inType: "application/json", outType: "application/json", in: body, out: body, input: true, output: true}
			var buf bytes.Buffer
			b.SetBytes(int64(2 * len(body)))
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				appendLine(&buf, ev, "8f45e35c-fa44-40d2-8ed3-1bcab3a596f3")
			}
		})
	}
}
