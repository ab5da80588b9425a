package router

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Metadata is what a request says about where it belongs. It comes from
// headers (X-Junction-Cost-Tier, X-Junction-Max-Latency-Ms,
// X-Junction-Model-Preference), from the body's metadata object, and from
// the key's tags of the same names as defaults.
type Metadata struct {
	// CostTier is economy, standard or premium; empty means standard.
	CostTier string
	// MaxLatencyMs is the latency budget; 0 means none.
	MaxLatencyMs int
	// Preference names a model or route to use when it exists.
	Preference string
	// Values holds every metadata key and value, for rules.
	Values map[string]string
}

// Metadata header names.
const (
	HeaderCostTier   = "X-Junction-Cost-Tier"
	HeaderMaxLatency = "X-Junction-Max-Latency-Ms"
	HeaderPreference = "X-Junction-Model-Preference"
)

// Cost tiers.
const (
	TierEconomy  = "economy"
	TierStandard = "standard"
	TierPremium  = "premium"
)

// Set records one metadata value, validating the ones Junction reads.
func (m *Metadata) Set(key, value string) error {
	value = strings.TrimSpace(value)
	switch key {
	case "cost_tier":
		switch value {
		case "", TierEconomy, TierStandard, TierPremium:
			m.CostTier = value
		default:
			return fmt.Errorf("cost_tier %q is not one of economy, standard, premium", value)
		}
	case "max_latency_ms":
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 {
			return fmt.Errorf("max_latency_ms %q must be a positive number of milliseconds", value)
		}
		m.MaxLatencyMs = n
	case "model_preference":
		m.Preference = value
	}
	if m.Values == nil {
		m.Values = make(map[string]string, 4)
	}
	m.Values[key] = value
	return nil
}

// MetadataFrom builds a request's metadata: defaults from the key's tags,
// overridden by headers. A bad header value is an error naming it.
func MetadataFrom(h http.Header, tags map[string]string) (Metadata, error) {
	var m Metadata
	for _, k := range []string{"cost_tier", "max_latency_ms", "model_preference"} {
		if v, ok := tags[k]; ok {
			if err := m.Set(k, v); err != nil {
				return m, fmt.Errorf("key tag %w", err)
			}
		}
	}
	for k, name := range map[string]string{"cost_tier": HeaderCostTier, "max_latency_ms": HeaderMaxLatency, "model_preference": HeaderPreference} {
		if v := h.Get(name); v != "" {
			if err := m.Set(k, v); err != nil {
				return m, fmt.Errorf("%s header: %w", name, err)
			}
		}
	}
	return m, nil
}
