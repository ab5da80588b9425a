// Package guardrail checks text against Bedrock-style guardrail policies:
// word filters (custom words and a managed profanity list), sensitive
// information (PII detectors and custom regexes, each blocked or
// anonymized), denied topics, prompt-attack detection and content filters
// judged by a classifier model. It applies a policy to a whole text
// (Guard.Apply), to a canonical chat request or response (GuardRequest,
// GuardResponse), and to a response being streamed (StreamGuard), where a
// pattern split across chunks is still caught and masked exactly.
//
// The package does not store policies or serve an API: Store keeps them in
// SQLite, and internal/api/guardrail serves ApplyGuardrail and the admin
// routes.
package guardrail

import (
	"fmt"
	"regexp"
	"strings"
)

// Source says which side of a model call text comes from.
type Source string

// Sources, as ApplyGuardrail names them.
const (
	Input  Source = "INPUT"
	Output Source = "OUTPUT"
)

// Action is what a policy does with a finding: block the whole text,
// anonymize the match (sensitive information only), or nothing but
// report it.
type Action string

// Policy actions, as Bedrock's CreateGuardrail names them.
const (
	Block     Action = "BLOCK"
	Anonymize Action = "ANONYMIZE"
	None      Action = "NONE"
)

// Strength is how eagerly a content filter blocks: HIGH blocks findings
// of LOW confidence and up, LOW only findings of HIGH confidence.
type Strength string

// Filter strengths, which are also the confidence levels findings have.
const (
	StrengthNone   Strength = "NONE"
	StrengthLow    Strength = "LOW"
	StrengthMedium Strength = "MEDIUM"
	StrengthHigh   Strength = "HIGH"
)

func (s Strength) rank() int {
	switch s {
	case StrengthLow:
		return 1
	case StrengthMedium:
		return 2
	case StrengthHigh:
		return 3
	}
	return 0
}

// blocks reports whether a filter of strength s blocks a finding of
// confidence c.
func (s Strength) blocks(c Strength) bool {
	return s.rank() > 0 && c.rank() > 0 && c.rank() >= 4-s.rank()
}

// Content filter types. PROMPT_ATTACK is judged by Junction's own
// pattern detector on input; the others by the policy's classifier model.
const (
	FilterHate         = "HATE"
	FilterInsults      = "INSULTS"
	FilterSexual       = "SEXUAL"
	FilterViolence     = "VIOLENCE"
	FilterMisconduct   = "MISCONDUCT"
	FilterPromptAttack = "PROMPT_ATTACK"
)

// ManagedProfanity is the one managed word list.
const ManagedProfanity = "PROFANITY"

// Policy is a guardrail: what to look for and what to do about it. JSON
// uses Bedrock's member names; YAML, the config's snake_case.
type Policy struct {
	Name        string `json:"name" yaml:"name"`
	Description string `json:"description,omitempty" yaml:"description"`
	// BlockedInputMessaging replaces a blocked prompt;
	// BlockedOutputsMessaging a blocked answer.
	BlockedInputMessaging   string                     `json:"blockedInputMessaging" yaml:"blocked_input_messaging"`
	BlockedOutputsMessaging string                     `json:"blockedOutputsMessaging" yaml:"blocked_outputs_messaging"`
	WordPolicy              WordPolicy                 `json:"wordPolicy,omitzero" yaml:"word_policy"`
	SensitiveInformation    SensitiveInformationPolicy `json:"sensitiveInformationPolicy,omitzero" yaml:"sensitive_information_policy"`
	TopicPolicy             TopicPolicy                `json:"topicPolicy,omitzero" yaml:"topic_policy"`
	ContentPolicy           ContentPolicy              `json:"contentPolicy,omitzero" yaml:"content_policy"`
}

// Actions is the action for both sources, with optional per-source
// overrides.
type Actions struct {
	Action       Action `json:"action,omitempty" yaml:"action"`
	InputAction  Action `json:"inputAction,omitempty" yaml:"input_action"`
	OutputAction Action `json:"outputAction,omitempty" yaml:"output_action"`
}

// For returns the action for src; def when none is set.
func (a Actions) For(src Source, def Action) Action {
	if src == Input && a.InputAction != "" {
		return a.InputAction
	}
	if src == Output && a.OutputAction != "" {
		return a.OutputAction
	}
	if a.Action != "" {
		return a.Action
	}
	return def
}

// WordPolicy blocks words and phrases, matched case-insensitively at word
// boundaries.
type WordPolicy struct {
	Words            []Word            `json:"words,omitempty" yaml:"words"`
	ManagedWordLists []ManagedWordList `json:"managedWordLists,omitempty" yaml:"managed_word_lists"`
}

// Word is a custom word or phrase; its action is BLOCK or NONE.
type Word struct {
	Text    string `json:"text" yaml:"text"`
	Actions `yaml:",inline"`
}

// ManagedWordList enables a list shipped with Junction (PROFANITY).
type ManagedWordList struct {
	Type    string `json:"type" yaml:"type"`
	Actions `yaml:",inline"`
}

// SensitiveInformationPolicy finds PII and custom patterns.
type SensitiveInformationPolicy struct {
	PIIEntities []PIIEntity `json:"piiEntities,omitempty" yaml:"pii_entities"`
	Regexes     []Regex     `json:"regexes,omitempty" yaml:"regexes"`
}

// PIIEntity enables a detector (see PIITypes); its action is BLOCK,
// ANONYMIZE (replaced by "{TYPE}") or NONE.
type PIIEntity struct {
	Type    string `json:"type" yaml:"type"`
	Actions `yaml:",inline"`
}

// Regex is a custom pattern (Go RE2 syntax); ANONYMIZE replaces a match
// with "{NAME}".
type Regex struct {
	Name        string `json:"name" yaml:"name"`
	Description string `json:"description,omitempty" yaml:"description"`
	Pattern     string `json:"pattern" yaml:"pattern"`
	Actions     `yaml:",inline"`
}

// TopicPolicy denies topics.
type TopicPolicy struct {
	Topics []Topic `json:"topics,omitempty" yaml:"topics"`
	// EmbeddingModel, when set, also matches topics by meaning: the text
	// is denied when its embedding's cosine similarity to a topic's
	// definition or an example reaches Threshold (default 0.8). Needs an
	// embedder (Options.Embed).
	EmbeddingModel string  `json:"embeddingModel,omitempty" yaml:"embedding_model"`
	Threshold      float64 `json:"threshold,omitempty" yaml:"threshold"`
}

// Topic is a denied topic. Without an embedding model it is detected when
// the text contains one of its examples or phrases (case and spacing
// ignored); its action is BLOCK or NONE.
type Topic struct {
	Name       string   `json:"name" yaml:"name"`
	Definition string   `json:"definition" yaml:"definition"`
	Examples   []string `json:"examples,omitempty" yaml:"examples"`
	// Phrases are short phrases that signal the topic, matched like
	// examples; Junction's addition to Bedrock's shape.
	Phrases []string `json:"phrases,omitempty" yaml:"phrases"`
	Actions `yaml:",inline"`
}

// ContentPolicy holds the content filters.
type ContentPolicy struct {
	Filters []ContentFilter `json:"filters,omitempty" yaml:"filters"`
	// ClassifierModel judges HATE, INSULTS, SEXUAL, VIOLENCE and
	// MISCONDUCT (through Options.Classifier); PROMPT_ATTACK needs none.
	ClassifierModel string `json:"classifierModel,omitempty" yaml:"classifier_model"`
}

// ContentFilter is one content category with its strength per source; an
// empty strength is NONE (off). Its action is BLOCK (default) or NONE.
type ContentFilter struct {
	Type           string   `json:"type" yaml:"type"`
	InputStrength  Strength `json:"inputStrength,omitempty" yaml:"input_strength"`
	OutputStrength Strength `json:"outputStrength,omitempty" yaml:"output_strength"`
	Actions        `yaml:",inline"`
}

func (f ContentFilter) strength(src Source) Strength {
	if src == Input {
		return f.InputStrength
	}
	return f.OutputStrength
}

// Validate checks a policy and returns every problem, each prefixed with
// its path under at (e.g. "guardrails[0]").
func (p *Policy) Validate(at string) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, at+"."+fmt.Sprintf(format, args...)) }
	if strings.TrimSpace(p.Name) == "" {
		add("name: required")
	}
	if p.BlockedInputMessaging == "" {
		add("blocked_input_messaging: required: the text that replaces a blocked prompt")
	}
	if p.BlockedOutputsMessaging == "" {
		add("blocked_outputs_messaging: required: the text that replaces a blocked answer")
	}
	actions := func(path string, a Actions, allowed ...Action) {
		for _, v := range []Action{a.Action, a.InputAction, a.OutputAction} {
			if v == "" {
				continue
			}
			ok := false
			for _, x := range allowed {
				ok = ok || v == x
			}
			if !ok {
				add("%s: action %q is not one of %v", path, v, allowed)
			}
		}
	}
	for i, w := range p.WordPolicy.Words {
		path := fmt.Sprintf("word_policy.words[%d]", i)
		if normalizePhrase(w.Text) == "" {
			add("%s.text: required", path)
		}
		actions(path, w.Actions, Block, None)
	}
	for i, l := range p.WordPolicy.ManagedWordLists {
		path := fmt.Sprintf("word_policy.managed_word_lists[%d]", i)
		if l.Type != ManagedProfanity {
			add("%s.type: %q is not a managed list; the one list is PROFANITY", path, l.Type)
		}
		actions(path, l.Actions, Block, None)
	}
	seen := map[string]bool{}
	for i, e := range p.SensitiveInformation.PIIEntities {
		path := fmt.Sprintf("sensitive_information_policy.pii_entities[%d]", i)
		if _, ok := piiKindOf(e.Type); !ok {
			add("%s.type: %q is not detected by Junction; it detects %s (use a regex for others)", path, e.Type, strings.Join(piiNames[:], ", "))
		} else if seen[e.Type] {
			add("%s.type: %s is listed twice", path, e.Type)
		}
		seen[e.Type] = true
		actions(path, e.Actions, Block, Anonymize, None)
	}
	names := map[string]bool{}
	for i, r := range p.SensitiveInformation.Regexes {
		path := fmt.Sprintf("sensitive_information_policy.regexes[%d]", i)
		switch {
		case r.Name == "":
			add("%s.name: required", path)
		case names[r.Name]:
			add("%s.name: %q is used twice", path, r.Name)
		}
		names[r.Name] = true
		if r.Pattern == "" {
			add("%s.pattern: required", path)
		} else if len(r.Pattern) > 500 {
			add("%s.pattern: longer than 500 characters", path)
		} else if _, err := regexp.Compile(r.Pattern); err != nil {
			add("%s.pattern: %v", path, err)
		}
		actions(path, r.Actions, Block, Anonymize, None)
	}
	for i, t := range p.TopicPolicy.Topics {
		path := fmt.Sprintf("topic_policy.topics[%d]", i)
		if t.Name == "" {
			add("%s.name: required", path)
		}
		if t.Definition == "" || len(t.Definition) > 200 {
			add("%s.definition: required, at most 200 characters", path)
		}
		if len(t.Examples) > 5 {
			add("%s.examples: at most 5", path)
		}
		if len(t.Examples)+len(t.Phrases) == 0 && p.TopicPolicy.EmbeddingModel == "" {
			add("%s: give examples or phrases to match, or set topic_policy.embedding_model", path)
		}
		actions(path, t.Actions, Block, None)
	}
	if th := p.TopicPolicy.Threshold; th < 0 || th > 1 {
		add("topic_policy.threshold: must be from 0 to 1")
	}
	for i, f := range p.ContentPolicy.Filters {
		path := fmt.Sprintf("content_policy.filters[%d]", i)
		switch f.Type {
		case FilterHate, FilterInsults, FilterSexual, FilterViolence, FilterMisconduct:
			if p.ContentPolicy.ClassifierModel == "" {
				add("%s.type: %s is judged by a classifier model: set content_policy.classifier_model", path, f.Type)
			}
		case FilterPromptAttack:
			if f.OutputStrength != "" && f.OutputStrength != StrengthNone {
				add("%s.output_strength: PROMPT_ATTACK applies to input only; leave it NONE", path)
			}
		default:
			add("%s.type: %q is not one of HATE, INSULTS, SEXUAL, VIOLENCE, MISCONDUCT, PROMPT_ATTACK", path, f.Type)
		}
		for _, s := range []Strength{f.InputStrength, f.OutputStrength} {
			if s != "" && s.rank() == 0 && s != StrengthNone {
				add("%s: strength %q is not one of NONE, LOW, MEDIUM, HIGH", path, s)
			}
		}
		actions(path, f.Actions, Block, None)
	}
	return out
}

// Config is a guardrail defined in Junction's config file, under
// "guardrails:". It is served as version Version (default 1) and DRAFT.
type Config struct {
	// ID is the guardrail identifier clients name; it defaults to the
	// policy's name.
	ID      string `yaml:"id"`
	Version int    `yaml:"version"`
	Policy  `yaml:",inline"`
}

// Validate checks the config's guardrails and returns every problem with
// its path ("guardrails[1].word_policy.words[0].text: required").
func Validate(cfgs []Config) []string {
	var out []string
	ids := map[string]bool{}
	for i := range cfgs {
		c := &cfgs[i]
		at := fmt.Sprintf("guardrails[%d]", i)
		id := c.ID
		if id == "" {
			id = c.Name
		}
		if !validID(id) {
			out = append(out, fmt.Sprintf("%s.id: %q may hold only letters, digits, '-', '_' and '.' (1 to 64)", at, id))
		} else if ids[id] {
			out = append(out, fmt.Sprintf("%s.id: %q is used by another guardrail", at, id))
		}
		ids[id] = true
		if c.Version < 0 {
			out = append(out, at+".version: must not be negative")
		}
		out = append(out, c.Policy.Validate(at)...)
	}
	return out
}

func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
