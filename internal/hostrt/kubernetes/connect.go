package kubernetes

import (
	"fmt"

	kubeclient "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Connect returns a client for the cluster that kubeconfig names, and the
// namespace its current context names. An empty kubeconfig follows
// kubectl's rules ($KUBECONFIG, then ~/.kube/config) and, when they find
// nothing, uses the pod's service account (Junction running in the
// cluster), whose namespace is Junction's own.
func Connect(kubeconfig string) (kubeclient.Interface, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes: no cluster to talk to (kubeconfig %q, or in-cluster service account): %w", kubeconfig, err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes: namespace: %w", err)
	}
	cfg.UserAgent = "junction"
	client, err := kubeclient.NewForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	return client, ns, nil
}
