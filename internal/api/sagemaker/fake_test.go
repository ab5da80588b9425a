package sagemaker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"

	"github.com/junctionhq/junction/internal/hosting"
)

// fakeController answers invocations as the hosting controller would,
// for a fixed set of endpoints:
//
//	echo     variants AllTraffic (chosen by default) and canary; answers
//	         "echo:" + the body, the Accept as its Content-Type and the
//	         custom attributes it received, prefixed "seen:"
//	failing  the model server answers 500
//	cold     no instance is up yet (ModelNotReadyException)
//	busy     every instance is at capacity (ServiceUnavailable)
//	faulty   the controller fails with an error of its own
//	hung     the model server never answers, and the controller
//	         returns the context's error
//	mute     the same, but the controller reports the variant that
//	         did not answer, as a *hosting.Error
//
// and, streamed, paced (three parts, each sent when the test says so),
// cut (a part, then the connection resets), lost (a part, then the
// controller loses the instance) and stalls (a part, then nothing). Any
// other endpoint does not exist.
type fakeController struct {
	// next releases the paced stream's parts, one per receive.
	next chan struct{}

	mu  sync.Mutex
	got []hosting.Invocation
}

func newFakeController() *fakeController {
	return &fakeController{next: make(chan struct{})}
}

var endpoints = map[string][]string{
	"echo": {"AllTraffic", "canary"}, "failing": {"AllTraffic"}, "cold": {"AllTraffic"}, "busy": {"AllTraffic"},
	"faulty": {"AllTraffic"}, "hung": {"AllTraffic"}, "mute": {"AllTraffic"},
	"paced": {"AllTraffic"}, "cut": {"AllTraffic"}, "lost": {"AllTraffic"}, "stalls": {"AllTraffic"},
}

// invocations returns what the controller has received.
func (f *fakeController) invocations() []hosting.Invocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// choose records inv and picks its variant: the target, which must be
// one of the endpoint's, or else the first.
func (f *fakeController) choose(inv *hosting.Invocation) (string, error) {
	f.mu.Lock()
	f.got = append(f.got, *inv)
	f.mu.Unlock()
	variants, ok := endpoints[inv.Endpoint]
	if !ok {
		return "", hosting.Validation("Endpoint %s not found.", inv.Endpoint)
	}
	if t := inv.TargetVariant; t != "" {
		if !slices.Contains(variants, t) {
			return "", hosting.Validation("The variant %s is not a production variant of endpoint %s.", t, inv.Endpoint)
		}
		return t, nil
	}
	return variants[0], nil
}

// fail returns the failure of the endpoints that fail before answering,
// or nil.
func (f *fakeController) fail(ctx context.Context, endpoint, variant string) error {
	switch endpoint {
	case "failing":
		return hosting.ModelFailed(variant, http.StatusInternalServerError, `{"error":"CUDA out of memory"}`)
	case "cold":
		return &hosting.Error{Status: http.StatusTooManyRequests, Code: hosting.ErrModelNotReady, Variant: variant,
			Message: "Endpoint cold is scaling up from zero instances; retry in a minute."}
	case "busy":
		return hosting.Unavailable("Every instance of endpoint busy is at its concurrency limit.")
	case "faulty":
		return errors.New("controller: the instance table is inconsistent")
	case "hung":
		<-ctx.Done()
		return fmt.Errorf("invoke variant %s: %w", variant, ctx.Err())
	case "mute":
		<-ctx.Done()
		return &hosting.Error{Status: http.StatusFailedDependency, Code: hosting.ErrModel, Variant: variant, Message: ctx.Err().Error()}
	}
	return nil
}

func (f *fakeController) Invoke(ctx context.Context, inv *hosting.Invocation) (*hosting.Result, error) {
	variant, err := f.choose(inv)
	if err != nil {
		return nil, err
	}
	if err := f.fail(ctx, inv.Endpoint, variant); err != nil {
		return nil, err
	}
	res := &hosting.Result{Variant: variant, Instance: "i-0", ContentType: inv.Accept,
		Body: append([]byte("echo:"), inv.Body...)}
	if inv.CustomAttributes != "" {
		res.CustomAttributes = "seen:" + inv.CustomAttributes
	}
	return res, nil
}

func (f *fakeController) InvokeStream(ctx context.Context, inv *hosting.Invocation) (*hosting.StreamResult, error) {
	variant, err := f.choose(inv)
	if err != nil {
		return nil, err
	}
	if err := f.fail(ctx, inv.Endpoint, variant); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go f.produce(ctx, inv.Endpoint, pw)
	return &hosting.StreamResult{Variant: variant, Instance: "i-0", ContentType: "application/jsonlines",
		CustomAttributes: "stream=1", Body: pr}, nil
}

// produce writes an endpoint's stream. It ends when the stream does, the
// reader closes the pipe or ctx ends.
func (f *fakeController) produce(ctx context.Context, endpoint string, pw *io.PipeWriter) {
	switch endpoint {
	case "paced":
		for _, part := range []string{`{"token":"Hel"}` + "\n", `{"token":"lo"}` + "\n", `{"token":"!"}` + "\n"} {
			select {
			case <-f.next:
			case <-ctx.Done():
				pw.CloseWithError(ctx.Err())
				return
			}
			if _, err := pw.Write([]byte(part)); err != nil {
				return
			}
		}
		pw.Close()
		return
	}
	if _, err := pw.Write([]byte(`{"token":"Hel"}` + "\n")); err != nil {
		return
	}
	switch endpoint {
	case "cut":
		pw.CloseWithError(errors.New("read tcp 10.0.0.7:41234->10.0.0.9:8080: read: connection reset by peer"))
	case "lost":
		pw.CloseWithError(&hosting.Error{Status: http.StatusInternalServerError, Code: hosting.ErrInternalFailure,
			Message: "The instance serving this stream was replaced; retry the request."})
	case "stalls":
		<-ctx.Done()
		pw.CloseWithError(ctx.Err())
	default:
		pw.Close()
	}
}
