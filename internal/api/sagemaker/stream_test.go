package sagemaker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"

	"github.com/junctionhq/junction/internal/api/sagemaker"
)

// stream starts a streamed invocation of endpoint.
func (e *env) stream(ctx context.Context, endpoint string) (*sagemakerruntime.InvokeEndpointWithResponseStreamOutput, error) {
	return e.client.InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
		EndpointName:     aws.String(endpoint),
		Body:             []byte(`{"inputs":"Hello","stream":true}`),
		ContentType:      aws.String("application/json"),
		Accept:           aws.String("application/jsonlines"),
		CustomAttributes: aws.String("session=7"),
		InferenceId:      aws.String("inf-7"),
	})
}

// nextPart waits for the stream's next event, which must be a
// PayloadPart, and returns its bytes; ok is false when the stream ended.
func nextPart(t *testing.T, events <-chan types.ResponseStream) (part string, ok bool) {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			return "", false
		}
		p, isPart := ev.(*types.ResponseStreamMemberPayloadPart)
		if !isPart {
			t.Fatalf("event %T, want a PayloadPart", ev)
		}
		return string(p.Value.Bytes), true
	case <-time.After(5 * time.Second):
		t.Fatal("no event in 5s")
	}
	return "", false
}

// Each part reaches the client as its own PayloadPart, in order, before
// the model server sends the next: the fake sends a part only when the
// test has received the one before.
func TestStreamDeliversEachPartAsItArrives(t *testing.T) {
	e := newEnv(t)
	out, err := e.stream(context.Background(), "paced")
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ContentType) != "application/jsonlines" || aws.ToString(out.InvokedProductionVariant) != "AllTraffic" ||
		aws.ToString(out.CustomAttributes) != "stream=1" {
		t.Errorf("ContentType %q, InvokedProductionVariant %q, CustomAttributes %q", aws.ToString(out.ContentType),
			aws.ToString(out.InvokedProductionVariant), aws.ToString(out.CustomAttributes))
	}
	id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	s := out.GetStream()
	defer s.Close()
	for _, want := range []string{`{"token":"Hel"}` + "\n", `{"token":"lo"}` + "\n", `{"token":"!"}` + "\n"} {
		e.ctrl.next <- struct{}{}
		got, ok := nextPart(t, s.Events())
		if !ok || got != want {
			t.Fatalf("part %q (ok %v), want %q", got, ok, want)
		}
	}
	if part, ok := nextPart(t, s.Events()); ok {
		t.Fatalf("a part %q after the last", part)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream error %v", err)
	}

	inv := e.ctrl.invocations()[0]
	if inv.Accept != "application/jsonlines" || inv.ContentType != "application/json" || inv.CustomAttributes != "session=7" ||
		inv.InferenceID != "inf-7" || string(inv.Body) != `{"inputs":"Hello","stream":true}` {
		t.Errorf("the controller received %+v", inv)
	}
	rec := e.record(id)
	if !rec.Stream || rec.Status != 200 || rec.ErrorType != "" || rec.Deployment != "AllTraffic" || rec.TTFTMS == nil ||
		rec.CostUSD == nil || *rec.CostUSD != 0 {
		t.Errorf("ledger record %+v", rec)
	}
}

// A failure after the stream began ends it with the runtime's exception
// event, after the parts already sent; the SDK returns it from Err.
func TestStreamFailures(t *testing.T) {
	e := newEnv(t, func(e *env) { e.h.Timeout = 100 * time.Millisecond })
	for _, tc := range []struct {
		endpoint string
		status   int
		check    func(t *testing.T, err error) string
	}{
		{"cut", 424, func(t *testing.T, err error) string {
			var me *types.ModelStreamError
			if !errors.As(err, &me) || aws.ToString(me.ErrorCode_) != sagemaker.StreamBroken {
				t.Fatalf("%v, want ModelStreamError StreamBroken", err)
			}
			if msg := aws.ToString(me.Message); strings.Contains(msg, "10.0.0.9") || !strings.Contains(msg, "AllTraffic") {
				t.Errorf("Message %q: it should name the variant and keep addresses to the log", msg)
			}
			return "ModelStreamError"
		}},
		{"stalls", 424, func(t *testing.T, err error) string {
			var me *types.ModelStreamError
			if !errors.As(err, &me) || aws.ToString(me.ErrorCode_) != sagemaker.StreamTimeExceeded {
				t.Fatalf("%v, want ModelStreamError ModelInvocationTimeExceeded", err)
			}
			return "ModelStreamError"
		}},
		{"lost", 500, func(t *testing.T, err error) string {
			var fe *types.InternalStreamFailure
			if !errors.As(err, &fe) || !strings.Contains(aws.ToString(fe.Message), "was replaced") {
				t.Fatalf("%v, want InternalStreamFailure", err)
			}
			return "InternalStreamFailure"
		}},
	} {
		t.Run(tc.endpoint, func(t *testing.T) {
			out, err := e.stream(context.Background(), tc.endpoint)
			if err != nil {
				t.Fatal(err)
			}
			id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
			s := out.GetStream()
			defer s.Close()
			if part, ok := nextPart(t, s.Events()); !ok || part != `{"token":"Hel"}`+"\n" {
				t.Fatalf("first part %q (ok %v)", part, ok)
			}
			if part, ok := nextPart(t, s.Events()); ok {
				t.Fatalf("a part %q after the failure", part)
			}
			code := tc.check(t, s.Err())
			if rec := e.record(id); !rec.Stream || rec.Status != tc.status || rec.ErrorType != code || rec.TTFTMS == nil {
				t.Errorf("ledger record %+v, want status %d, error type %s", rec, tc.status, code)
			}
		})
	}
}

// A failure before the stream began is the same typed error as
// InvokeEndpoint's.
func TestStreamFailsBeforeItBegins(t *testing.T) {
	e := newEnv(t, func(e *env) { e.h.Timeout = 50 * time.Millisecond })
	_, err := e.stream(context.Background(), "cold")
	var ne *types.ModelNotReadyException
	if !errors.As(err, &ne) {
		t.Errorf("%v, want ModelNotReadyException", err)
	}
	_, err = e.stream(context.Background(), "mute")
	var me *types.ModelError
	if !errors.As(err, &me) || !strings.Contains(aws.ToString(me.OriginalMessage), "timed out while waiting for a response from container AllTraffic") {
		t.Errorf("%v, want the timeout's ModelError", err)
	}
	_, err = e.client.InvokeEndpointWithResponseStream(context.Background(), &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
		EndpointName: aws.String("paced"), Body: []byte("x"), InferenceId: aws.String(strings.Repeat("i", 65)),
	})
	var ve *types.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(aws.ToString(ve.Message), "X-Amzn-SageMaker-Inference-Id") {
		t.Errorf("%v, want a ValidationError naming X-Amzn-SageMaker-Inference-Id", err)
	}
}

// A client that hangs up mid-stream ends the model server's stream and
// is recorded as such.
func TestStreamClientHangsUp(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, err := e.stream(ctx, "paced")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	s := out.GetStream()
	e.ctrl.next <- struct{}{}
	if _, ok := nextPart(t, s.Events()); !ok {
		t.Fatal("no first part")
	}
	cancel()
	s.Close()
	if rec := e.record(id); rec.Status != 499 || rec.ErrorType != "client_closed" {
		t.Errorf("ledger record %+v, want 499 client_closed", rec)
	}
}
