package hosting

import (
	"context"
	"fmt"
	"net/url"

	"github.com/junctionhq/junction/internal/blob"
)

// AsyncInference makes an endpoint config asynchronous, as SageMaker's
// AsyncInferenceConfig does: invocations queue (POST
// /endpoints/{name}/async-invocations), are served as instances have room,
// and their answers land as objects under OutputPath (failures under
// FailurePath), with an optional webhook call for each. The queue and its
// workers are package async; hosting only stores and checks the settings.
type AsyncInference struct {
	// OutputPath is the prefix answers are written under: s3://bucket/prefix
	// or file:///dir.
	OutputPath string `json:"output_path"`
	// FailurePath is the prefix failure objects are written under; empty
	// means OutputPath.
	FailurePath string `json:"failure_path,omitempty"`
	// MaxConcurrentInvocationsPerInstance bounds the queued invocations
	// one instance serves at once, 1 to 1000 (default 4).
	MaxConcurrentInvocationsPerInstance int `json:"max_concurrent_invocations_per_instance,omitempty"`
	// Notification calls webhooks when an invocation ends.
	Notification *AsyncNotification `json:"notification,omitempty"`
}

// AsyncNotification names the webhooks told of each finished async
// invocation (SageMaker's SuccessTopic and ErrorTopic, as HTTP).
type AsyncNotification struct {
	SuccessWebhook string `json:"success_webhook,omitempty"`
	ErrorWebhook   string `json:"error_webhook,omitempty"`
}

// DefaultAsyncConcurrency is MaxConcurrentInvocationsPerInstance when not
// set.
const DefaultAsyncConcurrency = 4

// validate checks the settings and fills their defaults.
func (a *AsyncInference) validate() []string {
	if a == nil {
		return nil
	}
	var errs []string
	if a.OutputPath == "" {
		errs = append(errs, "async_inference.output_path: required (s3://bucket/prefix or file:///dir)")
	} else if _, err := blob.ParseLocation(a.OutputPath); err != nil {
		errs = append(errs, fmt.Sprintf("async_inference.output_path: %v", err))
	}
	if a.FailurePath == "" {
		a.FailurePath = a.OutputPath
	} else if _, err := blob.ParseLocation(a.FailurePath); err != nil {
		errs = append(errs, fmt.Sprintf("async_inference.failure_path: %v", err))
	}
	if a.MaxConcurrentInvocationsPerInstance == 0 {
		a.MaxConcurrentInvocationsPerInstance = DefaultAsyncConcurrency
	}
	if n := a.MaxConcurrentInvocationsPerInstance; n < 1 || n > 1000 {
		errs = append(errs, fmt.Sprintf("async_inference.max_concurrent_invocations_per_instance: %d must be between 1 and 1000", n))
	}
	if n := a.Notification; n != nil {
		for field, hook := range map[string]string{"success_webhook": n.SuccessWebhook, "error_webhook": n.ErrorWebhook} {
			if hook == "" {
				continue
			}
			if u, err := url.Parse(hook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Sprintf("async_inference.notification.%s: %q must be an absolute http:// or https:// URL", field, hook))
			}
		}
	}
	return errs
}

// AddEvent appends a line to an endpoint's history, for the parts of
// Junction that serve an endpoint beside the controller (the async
// queue).
func (s *Store) AddEvent(ctx context.Context, endpoint, message string) error {
	return s.addEvent(ctx, endpoint, message)
}
