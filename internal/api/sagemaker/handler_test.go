package sagemaker_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"
	"github.com/aws/smithy-go"

	"github.com/junctionhq/junction/internal/api"
	"github.com/junctionhq/junction/internal/api/sagemaker"
	"github.com/junctionhq/junction/internal/gateway"
	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/store"
)

// env is the surface on a loopback server in front of a fake
// controller, with a real ledger, and the AWS SDK's SageMaker runtime
// client pointed at it.
type env struct {
	t      *testing.T
	log    *syncBuffer
	ctrl   *fakeController
	h      *sagemaker.Handler
	url    string
	db     *sql.DB
	client *sagemakerruntime.Client
}

// newEnv starts the surface; configure adjusts the handler (e.h) before
// it serves.
func newEnv(t *testing.T, configure ...func(*env)) *env {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "junction.db"))
	if err != nil {
		t.Fatal(err)
	}
	lw, err := ledger.NewWriter(ctx, db, ledger.Options{FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctrl: newFakeController(), db: db, log: &syncBuffer{}}
	e.h = &sagemaker.Handler{Gateway: &gateway.Gateway{Endpoints: e.ctrl, Ledger: lw}, Timeout: 5 * time.Second, Log: slog.New(slog.NewTextHandler(e.log, nil))}
	for _, f := range configure {
		f(e)
	}
	mux := http.NewServeMux()
	e.h.Register(mux)
	srv := httptest.NewServer(withInfo(mux))
	t.Cleanup(func() {
		srv.Close()
		lw.Close(context.Background())
		db.Close()
	})
	e.url = srv.URL
	e.client = e.newClient("AKIDEXAMPLE", "secret")
	return e
}

// syncBuffer is a log that handlers write while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// withInfo does what the server's middleware does for a surface: it
// gives each request an id and a start time.
func withInfo(next http.Handler) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &api.Info{RequestID: fmt.Sprintf("req-%d", n.Add(1)), Start: time.Now()}
		next.ServeHTTP(w, r.WithContext(api.WithInfo(r.Context(), info)))
	})
}

// newClient is the SDK's client as an application would configure it
// for Junction: only the endpoint and the credentials differ from
// calling AWS. Retries are off, so that each test sees each answer.
func (e *env) newClient(akid, secret string) *sagemakerruntime.Client {
	return e.clientWith(credentials.NewStaticCredentialsProvider(akid, secret, ""))
}

// clientWith is newClient with any credentials.
func (e *env) clientWith(creds aws.CredentialsProvider) *sagemakerruntime.Client {
	cfg := aws.Config{Region: "us-east-1", Credentials: creds}
	return sagemakerruntime.NewFromConfig(cfg, func(o *sagemakerruntime.Options) {
		o.BaseEndpoint = aws.String(e.url)
		o.Retryer = aws.NopRetryer{}
		o.HTTPClient = &http.Client{Transport: hideWriteTo{http.DefaultTransport}}
	})
}

// hideWriteTo works around a race between the SDK and net/http that a
// server on loopback can lose. The SDK closes a request's body as soon
// as the response's headers arrive, and the closed body's WriteTo then
// fails with io.EOF. net/http may at that moment still be copying the
// body after its last byte, to check that nothing follows Content-Length;
// it takes the io.EOF for a failed write and closes the connection under
// the response being read, which ends a response stream with "use of
// closed network connection". Hiding WriteTo makes net/http call Read,
// which returns a plain end of file.
type hideWriteTo struct{ http.RoundTripper }

func (t hideWriteTo) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r = r.Clone(r.Context())
		r.Body = struct{ io.ReadCloser }{r.Body}
	}
	return t.RoundTripper.RoundTrip(r)
}

// records waits for n ledger records and returns them, oldest first.
func (e *env) records(n int) []ledger.Record {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs, err := ledger.Records(context.Background(), e.db, time.Unix(0, 0), time.Now().Add(time.Hour), 1000)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(recs) >= n {
			for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
				recs[i], recs[j] = recs[j], recs[i]
			}
			return recs
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d ledger records, want %d", len(recs), n)
		}
		time.Sleep(time.Millisecond) // polling the database, not synchronising
	}
}

// record returns the ledger record of a request id.
func (e *env) record(requestID string) ledger.Record {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs, err := ledger.Records(context.Background(), e.db, time.Unix(0, 0), time.Now().Add(time.Hour), 1000)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, r := range recs {
			if r.RequestID == requestID {
				return r
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no ledger record for %s", requestID)
		}
		time.Sleep(time.Millisecond) // polling the database, not synchronising
	}
}

func TestInvokeEndpointPassesHeadersBothWays(t *testing.T) {
	e := newEnv(t)
	out, err := e.client.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName:     aws.String("echo"),
		Body:             []byte(`{"inputs":"hello"}`),
		ContentType:      aws.String("application/json"),
		Accept:           aws.String("application/x-custom"),
		CustomAttributes: aws.String(`trace_id=c000b4f9, "tier"=gold`),
		InferenceId:      aws.String("inf-0042"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out.Body), `echo:{"inputs":"hello"}`; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	if got := aws.ToString(out.ContentType); got != "application/x-custom" {
		t.Errorf("ContentType %q, want the container's, application/x-custom", got)
	}
	if got := aws.ToString(out.InvokedProductionVariant); got != "AllTraffic" {
		t.Errorf("InvokedProductionVariant %q, want AllTraffic", got)
	}
	if got, want := aws.ToString(out.CustomAttributes), `seen:trace_id=c000b4f9, "tier"=gold`; got != want {
		t.Errorf("CustomAttributes %q, want %q", got, want)
	}
	if id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata); id != "req-1" {
		t.Errorf("request id %q, want Junction's, req-1", id)
	}

	invs := e.ctrl.invocations()
	if len(invs) != 1 {
		t.Fatalf("%d invocations reached the controller", len(invs))
	}
	inv := invs[0]
	if inv.Endpoint != "echo" || inv.TargetVariant != "" || inv.ContentType != "application/json" ||
		inv.Accept != "application/x-custom" || inv.CustomAttributes != `trace_id=c000b4f9, "tier"=gold` ||
		inv.InferenceID != "inf-0042" || string(inv.Body) != `{"inputs":"hello"}` {
		t.Errorf("the controller received %+v", inv)
	}

	rec := e.record("req-1")
	if rec.Surface != "sagemaker" || rec.Model != "echo" || rec.Provider != "endpoint" || rec.Deployment != "AllTraffic" ||
		rec.Status != 200 || rec.ErrorType != "" || rec.Stream || rec.InputTokens != 0 || rec.OutputTokens != 0 ||
		rec.CostUSD == nil || *rec.CostUSD != 0 || rec.LatencyMS <= 0 {
		t.Errorf("ledger record %+v", rec)
	}
}

// An answer without a Content-Type reaches the client without one:
// SageMaker passes the container's through, and net/http must not
// guess one.
func TestInvokeEndpointWithoutContentType(t *testing.T) {
	e := newEnv(t)
	out, err := e.client.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("echo"), Body: []byte("<html>1,2,3</html>"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.ContentType != nil || out.CustomAttributes != nil {
		t.Errorf("ContentType %v and CustomAttributes %v, want neither", aws.ToString(out.ContentType), aws.ToString(out.CustomAttributes))
	}
}

func TestTargetVariant(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		target, want string
	}{
		{"", "AllTraffic"},
		{"canary", "canary"},
		{"AllTraffic", "AllTraffic"},
	} {
		in := &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("echo"), Body: []byte("x")}
		if tc.target != "" {
			in.TargetVariant = aws.String(tc.target)
		}
		out, err := e.client.InvokeEndpoint(context.Background(), in)
		if err != nil {
			t.Fatalf("target %q: %v", tc.target, err)
		}
		if got := aws.ToString(out.InvokedProductionVariant); got != tc.want {
			t.Errorf("target %q: invoked %q, want %q", tc.target, got, tc.want)
		}
	}
	_, err := e.client.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("echo"), Body: []byte("x"), TargetVariant: aws.String("shadow"),
	})
	var ve *types.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(aws.ToString(ve.Message), "shadow") {
		t.Fatalf("an unknown target variant: %v, want a ValidationError naming it", err)
	}
	recs := e.records(4)
	for i, want := range []string{"AllTraffic", "canary", "AllTraffic", ""} {
		if recs[i].Deployment != want {
			t.Errorf("record %d: deployment %q, want %q", i, recs[i].Deployment, want)
		}
	}
}

// statusOf returns the HTTP status and request id an SDK error carries.
func statusOf(t *testing.T, err error) (int, string) {
	t.Helper()
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("%v (%T) carries no HTTP response", err, err)
	}
	return re.HTTPStatusCode(), re.ServiceRequestID()
}

// Each failure the controller reports reaches the SDK as the runtime's
// typed error, with its fields, its status and the request id.
func TestInvokeEndpointErrorsDecodeAsTheSDKsTypes(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		endpoint string
		status   int
		check    func(t *testing.T, err error)
	}{
		{"nonexistent", 400, func(t *testing.T, err error) {
			var ve *types.ValidationError
			if !errors.As(err, &ve) || aws.ToString(ve.Message) != "Endpoint nonexistent not found." {
				t.Errorf("%v, want ValidationError 'Endpoint nonexistent not found.'", err)
			}
		}},
		{"failing", 424, func(t *testing.T, err error) {
			var me *types.ModelError
			if !errors.As(err, &me) {
				t.Fatalf("%v, want a ModelError", err)
			}
			if aws.ToInt32(me.OriginalStatusCode) != 500 || aws.ToString(me.OriginalMessage) != `{"error":"CUDA out of memory"}` {
				t.Errorf("OriginalStatusCode %d, OriginalMessage %q", aws.ToInt32(me.OriginalStatusCode), aws.ToString(me.OriginalMessage))
			}
			if want := `Received server error (500) from AllTraffic with message "{\"error\":\"CUDA out of memory\"}".`; aws.ToString(me.Message) != want {
				t.Errorf("Message %q, want %q", aws.ToString(me.Message), want)
			}
			if me.LogStreamArn != nil {
				t.Errorf("LogStreamArn %q: Junction has no CloudWatch log stream to point at", *me.LogStreamArn)
			}
		}},
		{"cold", 429, func(t *testing.T, err error) {
			var ne *types.ModelNotReadyException
			if !errors.As(err, &ne) || !strings.Contains(aws.ToString(ne.Message), "scaling up from zero") {
				t.Errorf("%v, want ModelNotReadyException", err)
			}
		}},
		{"busy", 503, func(t *testing.T, err error) {
			var su *types.ServiceUnavailable
			if !errors.As(err, &su) || !strings.Contains(aws.ToString(su.Message), "concurrency limit") {
				t.Errorf("%v, want ServiceUnavailable", err)
			}
		}},
		{"faulty", 500, func(t *testing.T, err error) {
			var fe *types.InternalFailure
			if !errors.As(err, &fe) {
				t.Fatalf("%v, want InternalFailure", err)
			}
			msg := aws.ToString(fe.Message)
			if strings.Contains(msg, "instance table") || !strings.Contains(msg, "req-") {
				t.Errorf("Message %q: it should name the request id and keep the cause to the log", msg)
			}
			if log := e.log.String(); !strings.Contains(log, "instance table is inconsistent") {
				t.Errorf("the cause is not in the log:\n%s", log)
			}
		}},
	} {
		t.Run(tc.endpoint, func(t *testing.T) {
			_, err := e.client.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
				EndpointName: aws.String(tc.endpoint), Body: []byte("x"),
			})
			if err == nil {
				t.Fatal("no error")
			}
			tc.check(t, err)
			status, id := statusOf(t, err)
			if status != tc.status || !strings.HasPrefix(id, "req-") {
				t.Errorf("status %d, request id %q; want %d and Junction's id", status, id, tc.status)
			}
			var ae smithy.APIError
			errors.As(err, &ae)
			rec := e.record(id)
			if rec.Status != tc.status || rec.ErrorType != ae.ErrorCode() || rec.Model != tc.endpoint {
				t.Errorf("ledger record %+v, want status %d, error type %s", rec, tc.status, ae.ErrorCode())
			}
		})
	}
}

// A request the runtime's model refuses is a ValidationError naming what
// is wrong, and reaches no model server.
func TestInvokeEndpointValidation(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		in   sagemakerruntime.InvokeEndpointInput
		want string
	}{
		{"custom attributes too long", sagemakerruntime.InvokeEndpointInput{CustomAttributes: aws.String(strings.Repeat("a", 1025))},
			"X-Amzn-SageMaker-Custom-Attributes"},
		{"custom attributes not ASCII", sagemakerruntime.InvokeEndpointInput{CustomAttributes: aws.String("café")},
			"X-Amzn-SageMaker-Custom-Attributes"},
		{"inference id too long", sagemakerruntime.InvokeEndpointInput{InferenceId: aws.String(strings.Repeat("i", 65))},
			"X-Amzn-SageMaker-Inference-Id"},
		{"inference id not ASCII", sagemakerruntime.InvokeEndpointInput{InferenceId: aws.String("inférence")},
			"X-Amzn-SageMaker-Inference-Id"},
		{"endpoint name", sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("my_endpoint")}, "EndpointName"},
		{"endpoint name too long", sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String(strings.Repeat("e", 64))}, "EndpointName"},
		{"target variant name", sagemakerruntime.InvokeEndpointInput{TargetVariant: aws.String("-canary")}, "X-Amzn-SageMaker-Target-Variant"},
		{"target model too long", sagemakerruntime.InvokeEndpointInput{TargetModel: aws.String(strings.Repeat("m", 1025))}, "X-Amzn-SageMaker-Target-Model"},
		{"empty body", sagemakerruntime.InvokeEndpointInput{Body: []byte{}}, "Body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in.EndpointName == nil {
				in.EndpointName = aws.String("echo")
			}
			if in.Body == nil {
				in.Body = []byte("x")
			}
			_, err := e.client.InvokeEndpoint(context.Background(), &in)
			var ve *types.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("%v, want a ValidationError", err)
			}
			if !strings.Contains(aws.ToString(ve.Message), tc.want) {
				t.Errorf("message %q does not name %s", aws.ToString(ve.Message), tc.want)
			}
			if status, _ := statusOf(t, err); status != 400 {
				t.Errorf("status %d, want 400", status)
			}
		})
	}
	if n := len(e.ctrl.invocations()); n != 0 {
		t.Errorf("%d invalid requests reached the controller", n)
	}
}

// A body over the limit is refused as AWS refuses it, with a
// ValidationError (not 413) that names the limit; the default limit is
// SageMaker's 6 MB.
func TestInvokeEndpointBodyLimit(t *testing.T) {
	e := newEnv(t)
	if _, err := e.client.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("echo"), Body: bytes.Repeat([]byte("a"), sagemaker.DefaultMaxBodyBytes),
	}); err != nil {
		t.Fatalf("a body of exactly the limit: %v", err)
	}
	_, err := e.client.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("echo"), Body: bytes.Repeat([]byte("a"), sagemaker.DefaultMaxBodyBytes+1),
	})
	var ve *types.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(aws.ToString(ve.Message), "6291456-byte limit") {
		t.Fatalf("%v, want a ValidationError naming the 6291456-byte limit", err)
	}
	if status, _ := statusOf(t, err); status != 400 {
		t.Errorf("status %d, want 400", status)
	}
}

// A container that does not answer within the timeout is a ModelError
// worded as SageMaker words it, with original status 0. It names the
// variant when the controller's error does, else the endpoint.
func TestInvokeEndpointTimeout(t *testing.T) {
	e := newEnv(t, func(e *env) { e.h.Timeout = 50 * time.Millisecond })
	for _, tc := range []struct{ endpoint, container string }{
		{"mute", "AllTraffic"},
		{"hung", "hung"},
	} {
		t.Run(tc.endpoint, func(t *testing.T) {
			_, err := e.client.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
				EndpointName: aws.String(tc.endpoint), Body: []byte("x"),
			})
			var me *types.ModelError
			if !errors.As(err, &me) {
				t.Fatalf("%v, want a ModelError", err)
			}
			if me.OriginalStatusCode == nil || *me.OriginalStatusCode != 0 {
				t.Errorf("OriginalStatusCode %v, want 0: the container sent none", me.OriginalStatusCode)
			}
			want := "Your invocation timed out while waiting for a response from container " + tc.container + ":"
			if !strings.HasPrefix(aws.ToString(me.OriginalMessage), want) ||
				!strings.HasPrefix(aws.ToString(me.Message), "Received server error (0) from "+tc.container+" with message") {
				t.Errorf("Message %q, OriginalMessage %q", aws.ToString(me.Message), aws.ToString(me.OriginalMessage))
			}
			status, id := statusOf(t, err)
			if status != 424 {
				t.Errorf("status %d, want 424", status)
			}
			if rec := e.record(id); rec.Status != 424 || rec.ErrorType != "ModelError" || rec.LatencyMS < 50 {
				t.Errorf("ledger record %+v", rec)
			}
		})
	}
}

// A path under /endpoints/ that is not a served operation is answered in
// AWS's shape, not with net/http's 404 page.
func TestUnknownOperation(t *testing.T) {
	e := newEnv(t)
	_, err := e.client.InvokeEndpointAsync(context.Background(), &sagemakerruntime.InvokeEndpointAsyncInput{
		EndpointName: aws.String("echo"), InputLocation: aws.String("s3://bucket/in.json"),
	})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != sagemaker.CodeUnknownOperation {
		t.Fatalf("%v, want UnknownOperationException", err)
	}
	if status, _ := statusOf(t, err); status != 404 {
		t.Errorf("status %d, want 404", status)
	}
}
