package config

import "time"

// Responses configures the OpenAI Responses API surface.
type Responses struct {
	// Retention is how long a stored response (store: true, the
	// default) is kept for GET /v1/responses/{id} and
	// previous_response_id; zero means 30 days, as OpenAI keeps them.
	Retention time.Duration `yaml:"retention"`
}

func (r Responses) validate() []string {
	if r.Retention < 0 {
		return []string{"responses.retention: must not be negative"}
	}
	return nil
}
