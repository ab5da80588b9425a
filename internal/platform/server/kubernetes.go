package server

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hostrt"
	"github.com/junctionhq/junction/internal/hostrt/kubernetes"
	"github.com/junctionhq/junction/internal/platform/config"
)

// newKubernetesRuntime connects to the cluster hosting.kubernetes names
// and starts the pod runtime; artifacts are shared with the pods through
// the volume mounted at DATA_DIR/artifacts (see docs/kubernetes.md). The
// replicas' hosting lease is a Lease object in the pods' namespace.
func newKubernetesRuntime(cfg *config.Config, log *slog.Logger) (hostrt.Runtime, hosting.Lease, error) {
	k := cfg.Hosting.Kubernetes
	client, ns, err := kubernetes.Connect(k.Kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	if k.Namespace != "" {
		ns = k.Namespace
	}
	opts := kubernetes.Options{Namespace: ns, Owner: k.Owner, DefaultImage: k.DefaultImage, ImagePullPolicy: k.ImagePullPolicy,
		ServiceAccount: k.ServiceAccount, Port: k.Port, Log: log}
	if k.ArtifactClaim != "" || k.ArtifactHostPath {
		opts.Artifacts = kubernetes.ArtifactVolume{Root: filepath.Join(cfg.Server.DataDir, "artifacts"), Claim: k.ArtifactClaim, HostPath: k.ArtifactHostPath}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rt, err := kubernetes.New(ctx, client, opts)
	if err != nil {
		return nil, nil, err
	}
	name := kubernetes.DefaultLeaseName
	if k.Owner != "" && k.Owner != "junction" {
		name += "-" + k.Owner
	}
	return rt, kubernetes.NewLease(client, ns, name, "", hosting.DefaultLeaseTTL), nil
}
