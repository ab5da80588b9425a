// Package azure is the provider adapter for Azure OpenAI Service. Azure
// speaks OpenAI's chat-completions format, so the OpenAI adapter does the
// work; what differs is where and how it is called: the deployment, not
// the model, is named in the URL
// ({endpoint}/openai/deployments/{deployment}/chat/completions), every
// call carries api-version, and the key goes in the api-key header (or a
// Microsoft Entra ID token as a bearer token). Azure's content-filter
// refusals (400 code content_filter, finish_reason content_filter) map to
// content-policy errors and refusals like OpenAI's.
package azure

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/junctionhq/junction/internal/provider/openai"
)

// DefaultAPIVersion is the api-version sent when the configuration names
// none: the latest generally available data-plane version.
const DefaultAPIVersion = "2024-10-21"

// Config configures an Azure OpenAI provider.
type Config struct {
	// Name is the provider's name in Junction's config, used in errors.
	Name string
	// Endpoint is the resource's endpoint, e.g.
	// https://my-resource.openai.azure.com.
	Endpoint string
	// APIVersion is the api-version query parameter; empty means
	// DefaultAPIVersion.
	APIVersion string
	// APIKey is the resource's key, sent in the api-key header; with
	// Bearer set it is an Entra ID token, sent as Authorization: Bearer.
	APIKey string
	Bearer bool
	// Client is the HTTP client; nil means the default upstream client.
	Client *http.Client
}

// New returns the provider for cfg. Models' upstream_model names the
// deployment.
func New(cfg Config) *openai.Provider {
	base := strings.TrimRight(cfg.Endpoint, "/")
	version := cfg.APIVersion
	if version == "" {
		version = DefaultAPIVersion
	}
	query := "?api-version=" + url.QueryEscape(version)
	oc := openai.Config{Name: cfg.Name, APIKey: cfg.APIKey, Client: cfg.Client,
		URL: func(op, deployment string) string {
			return base + "/openai/deployments/" + url.PathEscape(deployment) + "/" + op + query
		}}
	if !cfg.Bearer {
		oc.AuthHeader = "api-key"
	}
	return openai.New(oc)
}
