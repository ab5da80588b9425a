package config

import "fmt"

// Hosting runtimes: where model servers run.
const (
	// RuntimeProcess runs each instance as a child process of this
	// Junction (the default).
	RuntimeProcess = "process"
	// RuntimeKubernetes runs each instance as a pod (see
	// docs/kubernetes.md).
	RuntimeKubernetes = "kubernetes"
)

// Kubernetes configures the kubernetes hosting runtime.
type Kubernetes struct {
	// Kubeconfig is a kubeconfig file; empty means the in-cluster
	// service account (Junction running as a pod).
	Kubeconfig string `yaml:"kubeconfig"`
	// Namespace is where model-server pods run; empty means the
	// kubeconfig context's namespace, or in a cluster Junction's own.
	Namespace string `yaml:"namespace"`
	// Owner labels this Junction's pods (junction.dev/owner), so that two
	// installations can share a namespace; default "junction".
	Owner string `yaml:"owner"`
	// DefaultImage runs models whose server names no image; usually the
	// Junction image, whose binary is the reference model server.
	DefaultImage string `yaml:"default_image"`
	// ImagePullPolicy (Always, IfNotPresent, Never) and ServiceAccount
	// apply to models that set none.
	ImagePullPolicy string `yaml:"image_pull_policy"`
	ServiceAccount  string `yaml:"service_account"`
	// Port is the port model servers listen on in their pods
	// (SAGEMAKER_BIND_TO_PORT); default 8080.
	Port int `yaml:"port"`
	// ArtifactClaim is a PersistentVolumeClaim, mounted by Junction at
	// DATA_DIR/artifacts, that model-server pods mount read-only at the
	// same path; ArtifactHostPath uses that node directory instead (one-
	// node clusters). With neither, models carry their artifact in their
	// image at /opt/ml/model.
	ArtifactClaim    string `yaml:"artifact_claim"`
	ArtifactHostPath bool   `yaml:"artifact_host_path"`
}

// validateRuntime checks hosting.runtime and hosting.kubernetes.
func (h *Hosting) validateRuntime() []string {
	var p []string
	switch h.Runtime {
	case "", RuntimeProcess, RuntimeKubernetes:
	default:
		p = append(p, fmt.Sprintf("hosting.runtime: %q is not %s or %s", h.Runtime, RuntimeProcess, RuntimeKubernetes))
	}
	k := h.Kubernetes
	switch k.ImagePullPolicy {
	case "", "Always", "IfNotPresent", "Never":
	default:
		p = append(p, fmt.Sprintf("hosting.kubernetes.image_pull_policy: %q is not Always, IfNotPresent or Never", k.ImagePullPolicy))
	}
	if k.Port < 0 || k.Port > 65535 {
		p = append(p, "hosting.kubernetes.port: must be a port number (default 8080)")
	}
	if k.ArtifactClaim != "" && k.ArtifactHostPath {
		p = append(p, "hosting.kubernetes: set artifact_claim or artifact_host_path, not both")
	}
	return p
}
