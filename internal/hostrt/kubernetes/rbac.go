package kubernetes

import (
	rbacv1 "k8s.io/api/rbac/v1"
)

// Rules are all the permissions the runtime needs, in its namespace only
// (a Role, not a ClusterRole): it watches, creates and deletes its pods
// and reads their logs; it keeps the hosting lease (NewLease) in a Lease
// object it creates, reads and renews. It needs nothing cluster-wide, no Secrets, no
// Deployments, and it never writes a pod's status (the kubelet does).
// The Helm chart's Role (deploy/helm/junction/templates/rbac.yaml) grants
// exactly these; a test checks both.
func Rules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "create", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}},
	}
}
