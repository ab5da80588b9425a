package hostrt

import (
	"errors"
	"fmt"
	"sort"
)

// Image pull policies, as Kubernetes names them.
const (
	PullAlways       = "Always"
	PullIfNotPresent = "IfNotPresent"
	PullNever        = "Never"
)

// Container says how an instance runs on a runtime that runs containers
// (hostrt/kubernetes): the image and where in the cluster it may run. The
// process runtime ignores it. In a model's server it is flattened into the
// server's fields (server.image, server.node_selector, ...).
type Container struct {
	// Image is the container image; empty means the runtime's default
	// image (the Junction image, whose binary is the reference server).
	Image string `json:"image,omitempty"`
	// ImagePullPolicy is Always, IfNotPresent or Never; empty leaves it to
	// the runtime.
	ImagePullPolicy string `json:"image_pull_policy,omitempty"`
	// ServiceAccount is the service account the server's pod runs as;
	// empty means the runtime's default.
	ServiceAccount string `json:"service_account,omitempty"`
	// NodeSelector restricts the server to nodes with these labels.
	NodeSelector map[string]string `json:"node_selector,omitempty"`
	// Tolerations let the server run on tainted nodes (GPU nodes usually
	// are).
	Tolerations []Toleration `json:"tolerations,omitempty"`
}

// Toleration tolerates a node taint, with Kubernetes' meaning: Operator is
// Equal (the default, Key and Value must match) or Exists (Key alone
// matches; an empty Key matches every taint); an empty Effect matches
// every effect.
type Toleration struct {
	Key      string `json:"key,omitempty"`
	Operator string `json:"operator,omitempty"`
	Value    string `json:"value,omitempty"`
	// Effect is NoSchedule, PreferNoSchedule or NoExecute.
	Effect string `json:"effect,omitempty"`
	// TolerationSeconds bounds how long a NoExecute taint is tolerated.
	TolerationSeconds *int64 `json:"toleration_seconds,omitempty"`
}

// IsZero reports that c asks for nothing.
func (c Container) IsZero() bool {
	return c.Image == "" && c.ImagePullPolicy == "" && c.ServiceAccount == "" &&
		len(c.NodeSelector) == 0 && len(c.Tolerations) == 0
}

// Validate reports every problem with c, one per line, or nil; field names
// are prefixed with prefix ("server.").
func (c Container) Validate(prefix string) error {
	var errs []error
	switch c.ImagePullPolicy {
	case "", PullAlways, PullIfNotPresent, PullNever:
	default:
		errs = append(errs, fmt.Errorf("%simage_pull_policy: %q is not Always, IfNotPresent or Never", prefix, c.ImagePullPolicy))
	}
	keys := make([]string, 0, len(c.NodeSelector))
	for k := range c.NodeSelector {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" {
			errs = append(errs, fmt.Errorf("%snode_selector: a label name must not be empty", prefix))
		}
	}
	for i, t := range c.Tolerations {
		f := fmt.Sprintf("%stolerations[%d]", prefix, i)
		switch t.Operator {
		case "", "Equal":
			if t.Key == "" {
				errs = append(errs, fmt.Errorf("%s.key: required with operator Equal (use operator Exists to match every taint)", f))
			}
		case "Exists":
			if t.Value != "" {
				errs = append(errs, fmt.Errorf("%s.value: must be empty with operator Exists", f))
			}
		default:
			errs = append(errs, fmt.Errorf("%s.operator: %q is not Equal or Exists", f, t.Operator))
		}
		switch t.Effect {
		case "", "NoSchedule", "PreferNoSchedule", "NoExecute":
		default:
			errs = append(errs, fmt.Errorf("%s.effect: %q is not NoSchedule, PreferNoSchedule or NoExecute", f, t.Effect))
		}
		if t.TolerationSeconds != nil && t.Effect != "NoExecute" {
			errs = append(errs, errors.New(f+".toleration_seconds: only with effect NoExecute"))
		}
	}
	return errors.Join(errs...)
}
