package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/junctionhq/junction/internal/guardrail"
	"github.com/junctionhq/junction/internal/platform/tracing"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// guard finds the guardrail a call is checked against: one the key
// enforces, else one the route or model enforces, else the request's
// (header, Converse guardrailConfig, or key tag), else the route's or
// model's. A request that asks for another guardrail, or another mode,
// than an enforced one gets 403. It returns nil when there is none.
func (g *Gateway) guard(ctx context.Context, c *Call) (*guardrail.Guard, guardrail.Mode, error) {
	name, mode := c.GuardName, c.GuardMode
	var enforced, enforcedMode, by string
	switch {
	case c.KeyGuard != "":
		enforced, enforcedMode, by = c.KeyGuard, c.KeyGuardMode, "the API key"
	case c.plan != nil && c.plan.GuardrailEnforced():
		enforced, enforcedMode = c.plan.Guardrail()
		by = "model or route " + c.Model
	}
	if enforced != "" {
		if (name != "" && name != enforced) || (mode != "" && mode != enforcedMode && !(mode == string(guardrail.Sync) && enforcedMode == "")) {
			return nil, "", &llm.Error{Status: http.StatusForbidden, Type: llm.ErrPermission, Param: "guardrail", Message: fmt.Sprintf(
				"guardrail %q (mode %q) is enforced by %s; the request may not replace it with %q (mode %q): drop X-Junction-Guardrail, X-Junction-Guardrail-Mode or guardrailConfig",
				enforced, enforcedMode, by, name, mode)}
		}
		name, mode = enforced, enforcedMode
	}
	if name == "" && c.plan != nil {
		name, mode = c.plan.Guardrail()
	}
	if name == "" {
		return nil, "", nil
	}
	if g.Guardrails == nil {
		return nil, "", llm.BadRequest("guardrail", "guardrail %q: no guardrails are configured", name)
	}
	id, version, ok := strings.Cut(name, ":")
	if !ok {
		version = guardrail.Draft
	}
	gd, err := g.Guardrails.Lookup(ctx, id, version)
	if err != nil {
		e := llm.AsError(err)
		if e.Status == http.StatusNotFound {
			e = llm.BadRequest("guardrail", "guardrail %q: %s", name, e.Message)
		}
		return nil, "", e
	}
	switch guardrail.Mode(mode) {
	case "", guardrail.Sync:
		return gd, guardrail.Sync, nil
	case guardrail.Async:
		return gd, guardrail.Async, nil
	}
	return nil, "", llm.BadRequest("guardrail_mode", "guardrail mode %q is not one of sync, async", mode)
}

// outcome notes a guardrail's result on the call, for the ledger and the
// X-Junction-Guardrail-Action header, and counts an intervention in the
// metrics.
func (g *Gateway) outcome(c *Call, gd *guardrail.Guard, where string, r guardrail.Result) {
	c.GuardID = gd.ID
	if where == "input" {
		c.GuardInput = &r
	} else {
		c.GuardOutput = &r
	}
	if r.Action != guardrail.ActionIntervened {
		if c.Guardrail == "" {
			c.Guardrail = gd.ID + ":" + gd.Version + " NONE"
		}
		return
	}
	if g.Metrics != nil {
		g.Metrics.GuardrailIntervention(gd.ID, where, r.Blocked)
	}
	what := "anonymized"
	if r.Blocked {
		what = "blocked"
	}
	note := where + " " + what
	if c.Guardrail == "" || strings.HasSuffix(c.Guardrail, " NONE") {
		c.Guardrail = gd.ID + ":" + gd.Version + " INTERVENED " + note
	} else {
		c.Guardrail += ", " + note
	}
}

// guardedChat checks the request, runs the call, and checks the answer.
func (g *Gateway) guardedChat(ctx context.Context, c *Call, gd *guardrail.Guard, req *llm.Request) (*llm.Response, error) {
	greq, blocked, err := g.guardInput(ctx, c, gd, req)
	if err != nil || blocked != nil {
		return blocked, err
	}
	c.guardOutput = gd // checked by succeed, before the call is recorded
	return g.chat(ctx, c, greq)
}

// admit runs a chat call's governance and finds its guardrail; a refusal is
// recorded here, so the caller only returns the error.
func (g *Gateway) admit(ctx context.Context, c *Call, req *llm.Request) (*guardrail.Guard, guardrail.Mode, error) {
	if err := g.governChat(ctx, c, req); err != nil {
		g.Finish(c, llm.Usage{}, nil, err)
		return nil, "", err
	}
	gd, mode, err := g.guard(ctx, c)
	if err != nil {
		g.Finish(c, llm.Usage{}, nil, err)
		return nil, "", err
	}
	return gd, mode, nil
}

// guardInput checks a request against its guardrail. It returns the request
// to send on, or the answer for a blocked input (the call is then recorded:
// a blocked input never reaches the model), or a recorded error.
func (g *Gateway) guardInput(ctx context.Context, c *Call, gd *guardrail.Guard, req *llm.Request) (*llm.Request, *llm.Response, error) {
	gctx, span := tracing.Start(ctx, "guardrail input")
	r, greq, err := guardrail.GuardRequest(gctx, gd, req)
	tracing.Guarded(span, r.Action, err)
	if err != nil {
		g.Finish(c, llm.Usage{}, nil, err)
		return nil, nil, err
	}
	g.outcome(c, gd, "input", r)
	if greq == nil {
		g.Finish(c, llm.Usage{}, nil, nil)
		return nil, guardrail.BlockedResponse(gd, req), nil
	}
	return greq, nil, nil
}
