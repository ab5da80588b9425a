package governance

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Subject is what a request is, as far as scopes are concerned.
type Subject struct {
	// Key is the API key's id.
	Key string
	// Team and Project are the key's team and project ("" when none).
	Team, Project string
	// Model is the name the client asked for: a model, a route or a
	// self-hosted endpoint.
	Model string
	// Tags are the request's tags (the key's defaults overlaid with the
	// request's own).
	Tags map[string]string
}

// term kinds, in the order a scope's canonical form lists them.
const (
	termKey = iota
	termTeam
	termProject
	termModel
	termTag
)

var termNames = [...]string{"key", "team", "project", "model", "tag"}

// term is one condition of a scope: a kind, for tags the tag's name, and
// the value to match ("*": any value, each one counted apart).
type term struct {
	kind  int
	tag   string
	value string
}

// Scope is a parsed scope: "global" (no terms) or terms that must all
// match. Its String is canonical: terms sorted, so "model:m|team:t" and
// "team:t|model:m" name the same counters.
type Scope struct {
	terms []term
	// wild is set when some term matches each value apart.
	wild bool
}

// ParseScope reads a scope: "global", or terms joined by "|", each one of
// key:ID, team:NAME, project:TEAM/NAME, model:NAME, tag:NAME=VALUE, where
// a value of "*" stands for each value apart ("key:*" is a limit per key).
func ParseScope(s string) (Scope, error) {
	s = strings.TrimSpace(s)
	if s == "global" {
		return Scope{}, nil
	}
	if s == "" {
		return Scope{}, errors.New(`required ("global", key:ID, team:NAME, project:TEAM/NAME, model:NAME or tag:NAME=VALUE, joined by "|")`)
	}
	var sc Scope
	seen := map[string]bool{}
	for _, part := range strings.Split(s, "|") {
		kind, value, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || value == "" {
			return Scope{}, fmt.Errorf("%q: a term is KIND:VALUE (key, team, project, model or tag)", part)
		}
		t := term{kind: -1, value: value}
		for i, n := range termNames {
			if kind == n {
				t.kind = i
			}
		}
		switch t.kind {
		case -1:
			return Scope{}, fmt.Errorf("%q: %q is not one of key, team, project, model, tag", part, kind)
		case termTag:
			name, v, ok := strings.Cut(value, "=")
			if !ok || name == "" || v == "" {
				return Scope{}, fmt.Errorf("%q: a tag term is tag:NAME=VALUE", part)
			}
			t.tag, t.value = name, v
		case termProject:
			if team, name, ok := strings.Cut(value, "/"); value != "*" && (!ok || team == "" || name == "") {
				return Scope{}, fmt.Errorf("%q: a project term is project:TEAM/NAME", part)
			}
		}
		if strings.ContainsAny(t.value, "|{}") || strings.ContainsAny(t.tag, "|{}=") {
			return Scope{}, fmt.Errorf("%q: values must not contain '|', '{' or '}'", part)
		}
		id := kind + ":" + t.tag
		if seen[id] {
			return Scope{}, fmt.Errorf("%q: %s is named twice", s, strings.TrimSuffix(id, ":"))
		}
		seen[id] = true
		sc.wild = sc.wild || t.value == "*"
		sc.terms = append(sc.terms, t)
	}
	sort.Slice(sc.terms, func(i, j int) bool {
		a, b := sc.terms[i], sc.terms[j]
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		return a.tag < b.tag
	})
	return sc, nil
}

// MustParseScope is ParseScope for scopes known to be valid.
func MustParseScope(s string) Scope {
	sc, err := ParseScope(s)
	if err != nil {
		panic(err)
	}
	return sc
}

// String returns the scope's canonical form.
func (s Scope) String() string {
	if len(s.terms) == 0 {
		return "global"
	}
	var b strings.Builder
	for i, t := range s.terms {
		if i > 0 {
			b.WriteByte('|')
		}
		writeTerm(&b, t, t.value)
	}
	return b.String()
}

// Wildcard reports whether the scope counts each value of some term apart.
func (s Scope) Wildcard() bool { return s.wild }

// keyOnly reports whether the scope is a single key term: the rules a
// key's own limits replace.
func (s Scope) keyOnly() bool { return len(s.terms) == 1 && s.terms[0].kind == termKey }

// Match reports whether the scope applies to subj and, if so, names the
// counter subj is charged to: the scope with each "*" replaced by subj's
// value ("key:*" gives "key:key_1a2b").
func (s Scope) Match(subj *Subject) (string, bool) {
	if len(s.terms) == 0 {
		return "global", true
	}
	var b strings.Builder
	for i, t := range s.terms {
		v := t.get(subj)
		if v == "" || (t.value != "*" && t.value != v) {
			return "", false
		}
		if i > 0 {
			b.WriteByte('|')
		}
		writeTerm(&b, t, v)
	}
	return b.String(), true
}

// get returns subj's value for the term's kind.
func (t term) get(subj *Subject) string {
	switch t.kind {
	case termKey:
		return subj.Key
	case termTeam:
		return subj.Team
	case termProject:
		if subj.Team == "" || subj.Project == "" {
			return ""
		}
		return subj.Team + "/" + subj.Project
	case termModel:
		return subj.Model
	}
	return subj.Tags[t.tag]
}

func writeTerm(b *strings.Builder, t term, value string) {
	b.WriteString(termNames[t.kind])
	b.WriteByte(':')
	if t.kind == termTag {
		b.WriteString(t.tag)
		b.WriteByte('=')
	}
	b.WriteString(value)
}

// validName reports whether s is a usable team or project name.
func validName(s string) bool {
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
