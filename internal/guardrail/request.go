package guardrail

import (
	"context"

	"github.com/junctionhq/junction/internal/wire/llm"
)

// GuardRequest applies the guardrail (source INPUT) to the text parts of
// a request's user and system messages, and of tool results: each part
// on its own, so that each is masked in place. Prompt-attack detection
// runs on user text only, since system prompts legitimately give
// instructions. It returns the combined result and the request to send:
// req itself when nothing changed, a copy with masked text when something
// was anonymized, or nil when the request is blocked (answer it with
// BlockedResponse).
func GuardRequest(ctx context.Context, g *Guard, req *llm.Request) (Result, *llm.Request, error) {
	total := Result{Action: ActionNone, ActionReason: "No action."}
	var msgs []llm.Message // the copy, made on the first change
	for i, m := range req.Messages {
		if m.Role == llm.RoleAssistant {
			continue
		}
		for j, p := range m.Content {
			text := p.Text
			if p.Type == llm.PartToolResult && p.ToolResult != nil {
				text = p.ToolResult.Content
			} else if p.Type != llm.PartText {
				continue
			}
			r, err := g.apply(ctx, Input, text, m.Role == llm.RoleUser)
			if err != nil {
				return Result{}, nil, err
			}
			merge(&total, &r)
			if r.Blocked {
				continue
			}
			if r.Output != text {
				if msgs == nil {
					msgs = make([]llm.Message, len(req.Messages))
					copy(msgs, req.Messages)
				}
				if len(msgs[i].Content) > 0 && &msgs[i].Content[0] == &req.Messages[i].Content[0] {
					msgs[i].Content = append([]llm.Part(nil), m.Content...)
				}
				if p.Type == llm.PartToolResult {
					tr := *p.ToolResult
					tr.Content = r.Output
					msgs[i].Content[j].ToolResult = &tr
				} else {
					msgs[i].Content[j].Text = r.Output
				}
			}
		}
	}
	if total.Blocked {
		total.Output = g.Policy.BlockedInputMessaging
		return total, nil, nil
	}
	if msgs == nil {
		return total, req, nil
	}
	out := *req
	out.Messages = msgs
	return total, &out, nil
}

// merge folds a part's result into the request's.
func merge(total, r *Result) {
	if r.Action == ActionIntervened {
		total.Action = ActionIntervened
		if r.Blocked || !total.Blocked {
			total.ActionReason = r.ActionReason
		}
	}
	total.Blocked = total.Blocked || r.Blocked
	total.Findings = append(total.Findings, r.Findings...)
	total.Characters += r.Characters
	total.Usage.Add(r.Usage)
	a, b := &total.Assessment, &r.Assessment
	if b.TopicPolicy != nil {
		if a.TopicPolicy == nil {
			a.TopicPolicy = &TopicAssessment{}
		}
		a.TopicPolicy.Topics = append(a.TopicPolicy.Topics, b.TopicPolicy.Topics...)
	}
	if b.ContentPolicy != nil {
		if a.ContentPolicy == nil {
			a.ContentPolicy = &ContentAssessment{}
		}
		a.ContentPolicy.Filters = append(a.ContentPolicy.Filters, b.ContentPolicy.Filters...)
	}
	if b.WordPolicy != nil {
		if a.WordPolicy == nil {
			a.WordPolicy = &WordAssessment{CustomWords: []WordFinding{}, ManagedWordLists: []ManagedWordFinding{}}
		}
		a.WordPolicy.CustomWords = append(a.WordPolicy.CustomWords, b.WordPolicy.CustomWords...)
		a.WordPolicy.ManagedWordLists = append(a.WordPolicy.ManagedWordLists, b.WordPolicy.ManagedWordLists...)
	}
	if b.SensitiveInformationPolicy != nil {
		if a.SensitiveInformationPolicy == nil {
			a.SensitiveInformationPolicy = &SensitiveInformationAssessment{PIIEntities: []PIIFinding{}, Regexes: []RegexFinding{}}
		}
		a.SensitiveInformationPolicy.PIIEntities = append(a.SensitiveInformationPolicy.PIIEntities, b.SensitiveInformationPolicy.PIIEntities...)
		a.SensitiveInformationPolicy.Regexes = append(a.SensitiveInformationPolicy.Regexes, b.SensitiveInformationPolicy.Regexes...)
	}
}

// GuardResponse applies the guardrail (source OUTPUT) to the text of a
// complete answer. It returns the result and the answer to send: resp
// itself, a copy with masked text, or, when blocked, a copy whose text
// is the policy's blocked message with stop reason content_filter.
func GuardResponse(ctx context.Context, g *Guard, resp *llm.Response) (Result, *llm.Response, error) {
	total := Result{Action: ActionNone, ActionReason: "No action."}
	var content []llm.Part
	for j, p := range resp.Content {
		if p.Type != llm.PartText {
			continue
		}
		r, err := g.Apply(ctx, Output, p.Text)
		if err != nil {
			return Result{}, nil, err
		}
		merge(&total, &r)
		if !r.Blocked && r.Output != p.Text {
			if content == nil {
				content = append([]llm.Part(nil), resp.Content...)
			}
			content[j].Text = r.Output
		}
	}
	if total.Blocked {
		total.Output = g.Policy.BlockedOutputsMessaging
		out := *resp
		out.Content = []llm.Part{{Type: llm.PartText, Text: total.Output}}
		out.StopReason = llm.StopContentFilter
		return total, &out, nil
	}
	if content == nil {
		return total, resp, nil
	}
	out := *resp
	out.Content = content
	return total, &out, nil
}

// BlockedResponse is the answer to a request GuardRequest blocked: the
// policy's blocked input message, stop reason content_filter, no tokens.
func BlockedResponse(g *Guard, req *llm.Request) *llm.Response {
	return &llm.Response{ID: "guardrail-blocked", Model: req.Model, StopReason: llm.StopContentFilter,
		Content: []llm.Part{{Type: llm.PartText, Text: g.Policy.BlockedInputMessaging}}}
}
