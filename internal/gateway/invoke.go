package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/junctionhq/junction/internal/governance"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// HostedProvider is the ledger's and the metrics' provider for an
// invocation of a model endpoint Junction hosts.
const HostedProvider = "endpoint"

// CodeThrottling is the runtime's error code, in the ledger, of an
// invocation refused by a rate limit.
const CodeThrottling = "ThrottlingException"

// Endpoints runs invocations of the model endpoints Junction hosts: the
// hosting controller.
//
// Invoke returns the model server's answer or an error, a *hosting.Error
// when it is the runtime's; it returns when ctx ends. InvokeStream returns
// once the model server has begun to answer; the caller reads the Body
// until it ends and closes it.
type Endpoints interface {
	Invoke(ctx context.Context, inv *hosting.Invocation) (*hosting.Result, error)
	InvokeStream(ctx context.Context, inv *hosting.Invocation) (*hosting.StreamResult, error)
}

// Invoke runs one invocation of a hosted endpoint through the call
// lifecycle and ends the call: admission under the rate limits that apply
// to the caller and the endpoint (model:ENDPOINT), the hosting
// controller's pick-and-retry, and exactly one ledger record and one
// metrics observation. It is the one way in for every invocation — the
// SageMaker runtime surface, async queues, batch transform.
//
// c is begun by the caller with its Surface, RequestID, Key, Tags and
// Start; Invoke names the endpoint as its Model and marks it Hosted. The
// error is a *hosting.Error for a failure of the runtime's (a timeout
// after inv.Timeout included), an *llm.Error for a refusal by a rate
// limit (429, with RetryAfter) or by unreachable shared counters (503),
// the context's error when ctx ended first, or another error for a fault
// in Junction (recorded as an InternalFailure).
func (g *Gateway) Invoke(ctx context.Context, c *Call, inv *hosting.Invocation) (*hosting.Result, error) {
	if err := g.beginInvocation(ctx, c, inv); err != nil {
		g.Finish(c, llm.Usage{}, nil, err)
		return nil, err
	}
	if inv.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, inv.Timeout, hosting.ErrTimedOut)
		defer cancel()
	}
	res, err := g.Endpoints.Invoke(ctx, inv)
	if err == nil && res == nil {
		err = errors.New("the hosting controller returned neither a result nor an error")
	}
	if err != nil {
		err = invocationFailed(ctx, c, inv, err)
		g.Finish(c, llm.Usage{}, nil, err)
		return nil, err
	}
	c.Variant, c.ModelLatency = res.Variant, res.ModelLatency
	g.Finish(c, llm.Usage{}, nil, nil)
	return res, nil
}

// InvokeStream begins a streamed invocation of a hosted endpoint: it
// admits the call as Invoke does and returns once the model server has
// begun to answer. A failure to begin ends the call. Otherwise the call
// stays open: the caller reads the stream and ends the call with Finish
// (nil when the stream ended whole, else a *hosting.Error or the
// context's error), and defers End in case it does not. A caller whose
// stream ended whole sets c.ModelLatency from res.ModelLatency() first,
// so that the metrics split the call's latency as Invoke's.
//
// Waiting for the stream to begin is bounded by ctx alone; a caller that
// bounds it should cancel ctx with the cause hosting.ErrTimedOut, and the
// failure is then the runtime's timeout error after inv.Timeout.
func (g *Gateway) InvokeStream(ctx context.Context, c *Call, inv *hosting.Invocation) (*hosting.StreamResult, error) {
	c.Stream = true
	if err := g.beginInvocation(ctx, c, inv); err != nil {
		g.Finish(c, llm.Usage{}, nil, err)
		return nil, err
	}
	res, err := g.Endpoints.InvokeStream(ctx, inv)
	if err == nil && (res == nil || res.Body == nil) {
		err = errors.New("the hosting controller returned neither a stream nor an error")
	}
	if err != nil {
		err = invocationFailed(ctx, c, inv, err)
		g.Finish(c, llm.Usage{}, nil, err)
		return nil, err
	}
	c.Variant = res.Variant
	return res, nil
}

// beginInvocation names the call's endpoint and admits it under the rate
// limits for its key; a call without a key (Junction's own) is not
// governed. Invocations are paid per instance-second, not per call, so
// budgets never refuse them.
func (g *Gateway) beginInvocation(ctx context.Context, c *Call, inv *hosting.Invocation) error {
	c.Model, c.Hosted, c.TargetModel = inv.Endpoint, true, inv.TargetModel
	if g.Governance == nil || c.Key == nil {
		return nil
	}
	k := c.Key
	a, err := g.Governance.Admit(ctx, &governance.Request{
		Subject: governance.Subject{Key: k.ID, Team: k.Tags["team"], Project: k.Tags["project"], Model: c.Model, Tags: c.Tags},
		KeyRPM:  k.RPM, KeyTPM: k.TPM, MaxOutput: -1,
	})
	c.gov, c.govBy = a, c
	return err
}

// invocationFailed is the error an invocation failed with, as recorded
// and returned: the client's hang-up as the context's error, the
// invocation's own deadline as the runtime's timeout error, and the
// variant that failed noted on the call.
func invocationFailed(ctx context.Context, c *Call, inv *hosting.Invocation, err error) error {
	var he *hosting.Error
	isHosting := errors.As(err, &he)
	if isHosting && he.Variant != "" {
		c.Variant = he.Variant
	}
	if errors.Is(context.Cause(ctx), hosting.ErrTimedOut) {
		variant := c.Variant
		if variant == "" {
			variant = inv.TargetVariant
		}
		if variant == "" {
			variant = inv.Endpoint
		}
		return hosting.TimedOut(variant, inv.Timeout)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// invocationError is how an invocation's failure is recorded: by the
// runtime's error code and status, a rate-limit refusal as AWS's
// ThrottlingException, and anything else as an InternalFailure.
func invocationError(err error) (status int, code string) {
	var he *hosting.Error
	if errors.As(err, &he) {
		status = he.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		return status, he.Code
	}
	var le *llm.Error
	if errors.As(err, &le) {
		switch le.Status {
		case http.StatusTooManyRequests:
			return le.Status, CodeThrottling
		case http.StatusServiceUnavailable:
			return le.Status, hosting.ErrServiceUnavailable
		}
		if le.Type == llm.ErrInternal {
			return le.Status, hosting.ErrInternalFailure
		}
		return le.Status, string(le.Type)
	}
	return http.StatusInternalServerError, hosting.ErrInternalFailure
}
