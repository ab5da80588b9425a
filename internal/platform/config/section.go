package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"

	"gopkg.in/yaml.v3"
)

// Section is a part of the config file that config keeps as written, for
// the package it configures to decode and check: the guardrails section
// (package guardrail) and the governance section (package governance).
// config imports neither, so that the dependency runs one way, from the
// configured packages to config and never back; their rules reach
// Validate as Checks, which the binary's assembly (package server) names.
type Section struct {
	// doc is the whole file after ${ENV} expansion and key the section's
	// name in it: Decode reads the section from the file itself, so that
	// its errors give line numbers as Parse's own do.
	doc []byte
	key string
	set bool
}

// Check validates a part of the config that config cannot: a Section,
// decoded and checked by its own package. It returns every problem, each
// with its path ("guardrails[1].word_policy.words[0].text: required").
type Check func(*Config) []string

// UnmarshalYAML implements yaml.Unmarshaler: it only notes that the file
// has the section; Parse fills in where to read it from.
func (s *Section) UnmarshalYAML(*yaml.Node) error {
	s.set = true
	return nil
}

// IsZero reports whether the file has no such section.
func (s Section) IsZero() bool { return !s.set }

// Decode decodes the section into v, a pointer, refusing fields that v's
// type does not have. Without the section, v is left as it is.
func (s Section) Decode(v any) error {
	if !s.set || s.doc == nil {
		return nil
	}
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return fmt.Errorf("config: %s: decode into a pointer, not %T", s.key, v)
	}
	// The whole file, strictly, into {key: *v, everything else: ignored}.
	doc := reflect.New(reflect.StructOf([]reflect.StructField{
		{Name: "Section", Type: t.Elem(), Tag: reflect.StructTag(`yaml:"` + s.key + `"`)},
		{Name: "Rest", Type: reflect.TypeOf(map[string]yaml.Node(nil)), Tag: `yaml:",inline"`},
	}))
	dec := yaml.NewDecoder(bytes.NewReader(s.doc))
	dec.KnownFields(true)
	if err := dec.Decode(doc.Interface()); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", s.key, err)
	}
	reflect.ValueOf(v).Elem().Set(doc.Elem().Field(0))
	return nil
}

// SectionOf returns the section key holding v, for a config built in code
// rather than read from a file.
func SectionOf(key string, v any) (Section, error) {
	b, err := yaml.Marshal(map[string]any{key: v})
	if err != nil {
		return Section{}, fmt.Errorf("config: %s: %w", key, err)
	}
	return Section{doc: b, key: key, set: true}, nil
}

// sections points each of the config's sections at the file they were
// read from.
func (c *Config) sections(doc []byte) {
	for _, s := range []struct {
		sec *Section
		key string
	}{{&c.Guardrails, "guardrails"}, {&c.Governance, "governance"}} {
		s.sec.doc, s.sec.key = doc, s.key
	}
}
