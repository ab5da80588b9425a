package server

import (
	"github.com/junctionhq/junction/internal/governance"
	"github.com/junctionhq/junction/internal/guardrail"
	"github.com/junctionhq/junction/internal/platform/config"
)

// sections are the parts of the config that config leaves to the packages
// they configure, decoded.
type sections struct {
	guardrails []guardrail.Config
	governance governance.Config
}

// decodeSections decodes the guardrails and governance sections and
// checks them by their packages' rules, returning every problem.
func decodeSections(c *config.Config) (sections, []string) {
	var s sections
	var p []string
	if err := c.Guardrails.Decode(&s.guardrails); err != nil {
		p = append(p, err.Error())
	} else {
		p = append(p, guardrail.Validate(s.guardrails)...)
	}
	if err := c.Governance.Decode(&s.governance); err != nil {
		p = append(p, err.Error())
	} else {
		p = append(p, governance.Validate(s.governance)...)
	}
	return s, p
}

// ConfigChecks are the rules of the config's sections that their own
// packages decode and check (guardrails, governance). Pass them to
// config.Load, Parse or Validate, so that one pass reports every problem
// in a config; New checks them again before it opens anything.
func ConfigChecks() []config.Check {
	return []config.Check{func(c *config.Config) []string {
		_, p := decodeSections(c)
		return p
	}}
}
