package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/router"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// cascade runs a cascade route: its deployments in order, cheapest first,
// escalating when an answer fails the route's checks or its judge. Every
// attempt that is not the final answer is recorded in the ledger under the
// request id with a ".N" suffix, so the cost of escalation is visible.
func (g *Gateway) cascade(ctx context.Context, c *Call, rt *router.Route, req *llm.Request) (*llm.Response, error) {
	var steps []string
	for i, m := range rt.Members {
		d := m.D
		final := i == len(rt.Members)-1
		c.Target, c.Route = d.Target, rt.Name
		c.Attempts++
		resp, err := g.chatOnce(ctx, c, d, req)
		if err != nil {
			steps = append(steps, d.Model+" failed ("+describe(err)+")")
			if final || !llm.Retryable(err) || ctx.Err() != nil {
				c.Reason = "cascade: " + strings.Join(steps, "; ")
				g.Finish(c, llm.Usage{}, nil, err)
				return nil, err
			}
			g.attempt(c, i, llm.Usage{}, err)
			continue
		}
		ok, why := true, ""
		if !final { // the last answer is returned whatever a check says
			ok, why = g.check(ctx, c, rt, req, resp, i)
		}
		if ok || final {
			if final && i > 0 {
				steps = append(steps, d.Model+" answered, last in cascade")
			} else {
				steps = append(steps, d.Model+" passed")
			}
			c.Reason = "cascade: " + strings.Join(steps, "; ")
			return g.succeed(ctx, c, resp)
		}
		steps = append(steps, d.Model+" "+why)
		c.Reason = "cascade step " + strconv.Itoa(i+1) + ": escalated, " + why
		g.attempt(c, i, resp.Usage, nil)
	}
	return nil, llm.Errorf(503, llm.ErrOverloaded, "cascade %q has no deployments", rt.Name)
}

// attempt records an intermediate upstream call of a request.
func (g *Gateway) attempt(c *Call, step int, usage llm.Usage, err error) {
	a := *c
	a.RequestID = c.RequestID + "." + strconv.Itoa(step+1)
	g.Finish(&a, usage, nil, err)
}

// check applies a cascade's checks and judge to an answer.
func (g *Gateway) check(ctx context.Context, c *Call, rt *router.Route, req *llm.Request, resp *llm.Response, step int) (bool, string) {
	text := responseText(resp)
	for _, ch := range rt.Config.Checks {
		switch ch {
		case "non_empty":
			if strings.TrimSpace(text) == "" && !hasToolCall(resp) {
				return false, "gave an empty answer"
			}
		case "not_truncated":
			if resp.StopReason == llm.StopLength {
				return false, "was truncated at max_tokens"
			}
		case "valid_json":
			if err := validJSON(req.ResponseFormat, text); err != nil {
				return false, "gave invalid JSON (" + err.Error() + ")"
			}
		}
	}
	if j := rt.Config.Judge; j != nil {
		score, err := g.judge(ctx, c, j, req, text, step)
		if err != nil {
			return false, "could not be judged (" + describe(err) + ")"
		}
		if score < j.Threshold {
			return false, fmt.Sprintf("scored %.1f/10 by %s, below %.1f", score*10, j.Model, j.Threshold*10)
		}
	}
	return true, ""
}

func responseText(resp *llm.Response) string {
	var b strings.Builder
	for _, p := range resp.Content {
		if p.Type == llm.PartText {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

func hasToolCall(resp *llm.Response) bool {
	for _, p := range resp.Content {
		if p.Type == llm.PartToolCall {
			return true
		}
	}
	return false
}

// validJSON checks an answer against the request's response_format: any
// JSON object for json_object, and the schema's top-level required
// properties for json_schema. With no response_format it checks that the
// answer is JSON at all.
func validJSON(format json.RawMessage, text string) error {
	var rf struct {
		Type       string `json:"type"`
		JSONSchema struct {
			Schema struct {
				Required []string `json:"required"`
			} `json:"schema"`
		} `json:"json_schema"`
	}
	if len(format) > 0 {
		json.Unmarshal(format, &rf)
	}
	trimmed := strings.TrimSpace(text)
	if rf.Type == "" || rf.Type == "text" {
		if !json.Valid([]byte(trimmed)) {
			return fmt.Errorf("not JSON")
		}
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(trimmed), &obj); err != nil {
		return fmt.Errorf("not a JSON object")
	}
	for _, k := range rf.JSONSchema.Schema.Required {
		if _, ok := obj[k]; !ok {
			return fmt.Errorf("missing required %q", k)
		}
	}
	return nil
}

// judgePrompt asks a model to grade an answer.
const judgePrompt = `You grade answers. Rate how well the ANSWER responds to the QUESTION, from 0 (useless or wrong) to 10 (complete and correct). Reply with the number only.

QUESTION:
%s

ANSWER:
%s`

// judge asks the judge model for a score in [0, 1]. Its call is recorded
// in the ledger as its own attempt.
func (g *Gateway) judge(ctx context.Context, c *Call, j *config.Judge, req *llm.Request, answer string, step int) (float64, error) {
	d := g.Router.Deployment(j.Model)
	if d == nil {
		return 0, llm.Errorf(500, llm.ErrInternal, "judge model %q is not configured", j.Model)
	}
	var question string
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == llm.RoleUser {
			question = req.Messages[i].Text()
			break
		}
	}
	maxTokens, temp := 8, 0.0
	jr := &llm.Request{
		Messages:    []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: fmt.Sprintf(judgePrompt, question, answer)}}}},
		MaxTokens:   &maxTokens,
		Temperature: &temp,
	}
	jc := *c
	jc.Target, jc.Route, jc.Reason = d.Target, c.Route, "cascade judge of step "+strconv.Itoa(step+1)
	jc.RequestID = c.RequestID + ".judge" + strconv.Itoa(step+1)
	resp, err := g.chatOnce(ctx, &jc, d, jr)
	var usage llm.Usage
	if resp != nil {
		usage = resp.Usage
	}
	g.Finish(&jc, usage, nil, err)
	if err != nil {
		return 0, err
	}
	return parseScore(responseText(resp))
}

// parseScore reads the first number in a judge's reply, on a 0-10 scale.
func parseScore(s string) (float64, error) {
	start := strings.IndexAny(s, "0123456789")
	if start < 0 {
		return 0, llm.Errorf(502, llm.ErrUpstream, "judge replied without a score: %q", s)
	}
	end := start
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.') {
		end++
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s[start:end], "."), 64)
	if err != nil || v < 0 || v > 10 {
		return 0, llm.Errorf(502, llm.ErrUpstream, "judge replied with a bad score: %q", s)
	}
	return v / 10, nil
}

// replay turns a complete response into a stream, for routes (cascades)
// that must see a whole answer before the client may.
type replay struct {
	events []llm.Event
}

func newReplay(id, model string, resp *llm.Response) *replay {
	r := &replay{events: []llm.Event{{Type: llm.EventStart, ID: id, Model: model}}}
	tool := 0
	for _, p := range resp.Content {
		switch p.Type {
		case llm.PartText:
			r.events = append(r.events, llm.Event{Type: llm.EventText, Text: p.Text})
		case llm.PartToolCall:
			r.events = append(r.events,
				llm.Event{Type: llm.EventToolCall, Index: tool, ToolCall: &llm.ToolCall{ID: p.ToolCall.ID, Name: p.ToolCall.Name}},
				llm.Event{Type: llm.EventToolArgs, Index: tool, ToolCall: &llm.ToolCall{Arguments: p.ToolCall.Arguments}})
			tool++
		}
	}
	u := resp.Usage
	r.events = append(r.events, llm.Event{Type: llm.EventStop, StopReason: resp.StopReason}, llm.Event{Type: llm.EventUsage, Usage: &u})
	return r
}

func (r *replay) Recv() (llm.Event, error) {
	if len(r.events) == 0 {
		return llm.Event{}, io.EOF
	}
	ev := r.events[0]
	r.events = r.events[1:]
	return ev, nil
}

func (r *replay) Close() error { return nil }
