package kubernetes

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeclient "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// DefaultLeaseName is the Lease object (coordination.k8s.io/v1) the
// replicas of one Junction share, suffixed with the owner when it is not
// "junction".
const DefaultLeaseName = "junction-hosting"

// Lease is the hosting lease as a Kubernetes Lease object: the replica
// named in its holderIdentity reconciles hosting. It keeps the record
// client-go's leader election keeps (resourcelock.LeaseLock: holder,
// duration, acquire and renew times, transitions), so kubectl shows who
// holds it, and decides as leaderelection does: a lease held by another
// replica is free once it has gone unrenewed for its duration as this
// replica's own clock measures it (no two clocks are compared), and an
// update carries the resourceVersion it read, so that of two replicas
// taking a free lease at once only one succeeds. It satisfies
// hosting.Lease.
type Lease struct {
	lock *resourcelock.LeaseLock
	id   string
	ttl  time.Duration

	mu sync.Mutex
	// observedRaw is the record last read and observedTime when it was
	// first seen as it is: a lease is expired ttl after its record last
	// changed.
	observedRaw  string
	observedTime time.Time
}

// NewLease returns this replica's side of the Lease name in namespace,
// held as identity (empty: the host name, which in a pod is the pod's
// name, and a random suffix) for ttl unrenewed.
func NewLease(client kubeclient.Interface, namespace, name, identity string, ttl time.Duration) *Lease {
	if identity == "" {
		host, _ := os.Hostname()
		var b [4]byte
		crand.Read(b[:])
		identity = host + "_" + hex.EncodeToString(b[:])
	}
	return &Lease{id: identity, ttl: ttl, lock: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: namespace, Name: name},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
		Labels:     map[string]string{LabelManagedBy: managedBy},
	}}
}

// Identity is the name this replica holds the lease under.
func (l *Lease) Identity() string { return l.id }

// Acquire takes or renews the lease and reports whether this replica
// holds it now.
func (l *Lease) Acquire(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, l.ttl/3)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	mine := resourcelock.LeaderElectionRecord{HolderIdentity: l.id, LeaseDurationSeconds: int(math.Ceil(l.ttl.Seconds())),
		AcquireTime: metav1.NewTime(now), RenewTime: metav1.NewTime(now)}
	old, raw, err := l.lock.Get(ctx)
	switch {
	case apierrors.IsNotFound(err):
		if err := l.lock.Create(ctx, mine); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return false, nil // another replica made it first
			}
			return false, fmt.Errorf("create lease %s: %w", l.lock.Describe(), err)
		}
		l.observedRaw, l.observedTime = "", now
		return true, nil
	case err != nil:
		return false, fmt.Errorf("read lease %s: %w", l.lock.Describe(), err)
	}
	if string(raw) != l.observedRaw {
		l.observedRaw, l.observedTime = string(raw), now
	}
	held := old.HolderIdentity == l.id
	if !held && old.HolderIdentity != "" && now.Before(l.observedTime.Add(l.ttl)) {
		return false, nil
	}
	if held {
		mine.AcquireTime = old.AcquireTime
		mine.LeaderTransitions = old.LeaderTransitions
	} else {
		mine.LeaderTransitions = old.LeaderTransitions + 1
	}
	if err := l.lock.Update(ctx, mine); err != nil {
		if apierrors.IsConflict(err) {
			return false, nil // changed since it was read: another replica's
		}
		return false, fmt.Errorf("update lease %s: %w", l.lock.Describe(), err)
	}
	l.observedRaw, l.observedTime = "", now
	return true, nil
}

// Release gives the lease up when this replica holds it: the holder is
// cleared, and any replica may take it at once.
func (l *Lease) Release() {
	ctx, cancel := context.WithTimeout(context.Background(), l.ttl/3)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	old, _, err := l.lock.Get(ctx)
	if err != nil || old.HolderIdentity != l.id {
		return
	}
	now := metav1.Now()
	err = l.lock.Update(ctx, resourcelock.LeaderElectionRecord{LeaseDurationSeconds: 1,
		AcquireTime: now, RenewTime: now, LeaderTransitions: old.LeaderTransitions})
	if err == nil {
		l.observedRaw = ""
	}
}

// Holder reads the lease's current holder ("" when it is free), for
// tests and diagnostics.
func (l *Lease) Holder(ctx context.Context) (string, error) {
	lease, err := l.lock.Client.Leases(l.lock.LeaseMeta.Namespace).Get(ctx, l.lock.LeaseMeta.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
}
