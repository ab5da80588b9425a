package guardrail

// Assessment is what a guardrail found in a text, in ApplyGuardrail's
// shape: one member per policy type that has findings.
type Assessment struct {
	TopicPolicy                *TopicAssessment                `json:"topicPolicy,omitempty"`
	ContentPolicy              *ContentAssessment              `json:"contentPolicy,omitempty"`
	WordPolicy                 *WordAssessment                 `json:"wordPolicy,omitempty"`
	SensitiveInformationPolicy *SensitiveInformationAssessment `json:"sensitiveInformationPolicy,omitempty"`
	InvocationMetrics          *InvocationMetrics              `json:"invocationMetrics,omitempty"`
}

// TopicAssessment lists the denied topics found.
type TopicAssessment struct {
	Topics []TopicFinding `json:"topics"`
}

// TopicFinding is a denied topic found.
type TopicFinding struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Action   string `json:"action"`
	Detected bool   `json:"detected"`
}

// ContentAssessment lists the content filters that fired.
type ContentAssessment struct {
	Filters []ContentFinding `json:"filters"`
}

// ContentFinding is a content filter's judgement.
type ContentFinding struct {
	Type           string `json:"type"`
	Confidence     string `json:"confidence"`
	FilterStrength string `json:"filterStrength,omitempty"`
	Action         string `json:"action"`
	Detected       bool   `json:"detected"`
}

// WordAssessment lists the words found.
type WordAssessment struct {
	CustomWords      []WordFinding        `json:"customWords"`
	ManagedWordLists []ManagedWordFinding `json:"managedWordLists"`
}

// WordFinding is a custom word found.
type WordFinding struct {
	Match    string `json:"match"`
	Action   string `json:"action"`
	Detected bool   `json:"detected"`
}

// ManagedWordFinding is a managed-list word found.
type ManagedWordFinding struct {
	Match    string `json:"match"`
	Type     string `json:"type"`
	Action   string `json:"action"`
	Detected bool   `json:"detected"`
}

// SensitiveInformationAssessment lists the PII and regex matches.
type SensitiveInformationAssessment struct {
	PIIEntities []PIIFinding   `json:"piiEntities"`
	Regexes     []RegexFinding `json:"regexes"`
}

// PIIFinding is a PII entity found.
type PIIFinding struct {
	Match    string `json:"match"`
	Type     string `json:"type"`
	Action   string `json:"action"`
	Detected bool   `json:"detected"`
}

// RegexFinding is a custom regex match.
type RegexFinding struct {
	Name     string `json:"name"`
	Match    string `json:"match"`
	Regex    string `json:"regex"`
	Action   string `json:"action"`
	Detected bool   `json:"detected"`
}

// InvocationMetrics are the per-assessment metrics.
type InvocationMetrics struct {
	GuardrailProcessingLatency int64     `json:"guardrailProcessingLatency"`
	Usage                      Usage     `json:"usage"`
	GuardrailCoverage          *Coverage `json:"guardrailCoverage,omitempty"`
}

// Usage counts policy units: a text unit is up to 1,000 characters,
// counted once for each policy type the guardrail has.
type Usage struct {
	TopicPolicyUnits                    int `json:"topicPolicyUnits"`
	ContentPolicyUnits                  int `json:"contentPolicyUnits"`
	WordPolicyUnits                     int `json:"wordPolicyUnits"`
	SensitiveInformationPolicyUnits     int `json:"sensitiveInformationPolicyUnits"`
	SensitiveInformationPolicyFreeUnits int `json:"sensitiveInformationPolicyFreeUnits"`
	ContextualGroundingPolicyUnits      int `json:"contextualGroundingPolicyUnits"`
}

// Add accumulates o into u.
func (u *Usage) Add(o Usage) {
	u.TopicPolicyUnits += o.TopicPolicyUnits
	u.ContentPolicyUnits += o.ContentPolicyUnits
	u.WordPolicyUnits += o.WordPolicyUnits
	u.SensitiveInformationPolicyUnits += o.SensitiveInformationPolicyUnits
	u.SensitiveInformationPolicyFreeUnits += o.SensitiveInformationPolicyFreeUnits
	u.ContextualGroundingPolicyUnits += o.ContextualGroundingPolicyUnits
}

// Coverage is how many characters were guarded of how many sent.
type Coverage struct {
	TextCharacters TextCoverage `json:"textCharacters"`
}

// TextCoverage counts characters.
type TextCoverage struct {
	Guarded int `json:"guarded"`
	Total   int `json:"total"`
}

// assessedAction is Bedrock's past-tense action for a finding.
func assessedAction(a Action) string {
	switch a {
	case Block:
		return "BLOCKED"
	case Anonymize:
		return "ANONYMIZED"
	}
	return "NONE"
}

func (g *Guard) assess(fs []Finding) Assessment {
	var a Assessment
	for _, f := range fs {
		act := assessedAction(f.Action)
		switch f.Policy {
		case "word":
			if a.WordPolicy == nil {
				a.WordPolicy = &WordAssessment{CustomWords: []WordFinding{}, ManagedWordLists: []ManagedWordFinding{}}
			}
			a.WordPolicy.CustomWords = append(a.WordPolicy.CustomWords, WordFinding{Match: f.Match, Action: act, Detected: true})
		case "managedWord":
			if a.WordPolicy == nil {
				a.WordPolicy = &WordAssessment{CustomWords: []WordFinding{}, ManagedWordLists: []ManagedWordFinding{}}
			}
			a.WordPolicy.ManagedWordLists = append(a.WordPolicy.ManagedWordLists, ManagedWordFinding{Match: f.Match, Type: f.Type, Action: act, Detected: true})
		case "pii", "regex":
			if a.SensitiveInformationPolicy == nil {
				a.SensitiveInformationPolicy = &SensitiveInformationAssessment{PIIEntities: []PIIFinding{}, Regexes: []RegexFinding{}}
			}
			if f.Policy == "pii" {
				a.SensitiveInformationPolicy.PIIEntities = append(a.SensitiveInformationPolicy.PIIEntities, PIIFinding{Match: f.Match, Type: f.Type, Action: act, Detected: true})
			} else {
				a.SensitiveInformationPolicy.Regexes = append(a.SensitiveInformationPolicy.Regexes, RegexFinding{Name: f.Name, Match: f.Match,
					Regex: g.regexPattern(f.Name), Action: act, Detected: true})
			}
		case "topic":
			if a.TopicPolicy == nil {
				a.TopicPolicy = &TopicAssessment{}
			}
			dup := false
			for _, t := range a.TopicPolicy.Topics {
				dup = dup || t.Name == f.Name
			}
			if !dup {
				a.TopicPolicy.Topics = append(a.TopicPolicy.Topics, TopicFinding{Name: f.Name, Type: "DENY", Action: act, Detected: true})
			}
		case "content":
			if a.ContentPolicy == nil {
				a.ContentPolicy = &ContentAssessment{}
			}
			a.ContentPolicy.Filters = append(a.ContentPolicy.Filters, ContentFinding{Type: f.Type, Confidence: string(f.Confidence),
				FilterStrength: string(f.Strength), Action: act, Detected: true})
		}
	}
	return a
}

func (g *Guard) regexPattern(name string) string {
	for _, r := range g.Policy.SensitiveInformation.Regexes {
		if r.Name == name {
			return r.Pattern
		}
	}
	return ""
}

// usage counts the policy units of a text of n characters.
func (g *Guard) usage(n int) Usage {
	units := (n + 999) / 1000
	if n == 0 {
		units = 0
	}
	p := &g.Policy
	var u Usage
	if len(p.TopicPolicy.Topics) > 0 {
		u.TopicPolicyUnits = units
	}
	if len(p.ContentPolicy.Filters) > 0 {
		u.ContentPolicyUnits = units
	}
	if len(p.WordPolicy.Words)+len(p.WordPolicy.ManagedWordLists) > 0 {
		u.WordPolicyUnits = units
	}
	if len(p.SensitiveInformation.PIIEntities)+len(p.SensitiveInformation.Regexes) > 0 {
		u.SensitiveInformationPolicyUnits = units
	}
	return u
}
