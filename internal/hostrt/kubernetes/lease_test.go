package kubernetes_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hostrt/kubernetes"
)

var _ hosting.Lease = (*kubernetes.Lease)(nil)

// TestLeaseMovesOnReleaseAndExpiry: two replicas' electors on one Lease
// object, each acting as the runtime's Role allows. One holds it and
// renews it; the other does not get it while it is renewed, gets it at
// once when it is released, and gets it back only after the holder has
// stopped renewing for the lease's duration.
func TestLeaseMovesOnReleaseAndExpiry(t *testing.T) {
	s := newSetup(t)
	ctx := context.Background()
	const ttl = 2 * time.Second
	a := kubernetes.NewLease(s.client, s.ns, kubernetes.DefaultLeaseName, "replica-a", ttl)
	b := kubernetes.NewLease(s.client, s.ns, kubernetes.DefaultLeaseName, "replica-b", ttl)
	acquire := func(l *kubernetes.Lease) bool {
		t.Helper()
		held, err := l.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return held
	}
	holder := func() string {
		t.Helper()
		h, err := a.Holder(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	if !acquire(a) || acquire(b) || holder() != "replica-a" {
		t.Fatalf("first come: holder %q", holder())
	}
	// Renewed every third of its duration, for longer than one duration,
	// it stays with a.
	for end := time.Now().Add(ttl + ttl/2); time.Now().Before(end); time.Sleep(ttl / 3) {
		if !acquire(a) {
			t.Fatal("a lost a lease it renewed")
		}
		if acquire(b) {
			t.Fatal("b took a lease that a renews")
		}
	}

	// Released, it is free at once.
	a.Release()
	if h := holder(); h != "" {
		t.Fatalf("released, held by %q", h)
	}
	if !acquire(b) || acquire(a) || holder() != "replica-b" {
		t.Fatalf("after release: holder %q", holder())
	}
	a.Release() // not a's to release: nothing changes
	if holder() != "replica-b" {
		t.Fatalf("a released b's lease: holder %q", holder())
	}

	// b stops renewing (it died): a takes it once a has seen the record
	// unchanged for the lease's duration, not before.
	seen := time.Now()
	if acquire(a) {
		t.Fatal("a took a lease b renewed just now")
	}
	deadline := time.Now().Add(3 * ttl)
	for !acquire(a) {
		if time.Now().After(deadline) {
			t.Fatalf("a did not take the expired lease within %s", 3*ttl)
		}
		time.Sleep(50 * time.Millisecond) // polling the lease; nothing to wait on
	}
	if waited := time.Since(seen); waited < ttl {
		t.Fatalf("a took the lease %s after it last saw it change, before it expired (%s)", waited, ttl)
	}
	if holder() != "replica-a" || acquire(b) {
		t.Fatalf("after expiry: holder %q", holder())
	}
	lease, err := s.cluster.Client.CoordinationV1().Leases(s.ns).Get(ctx, kubernetes.DefaultLeaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := *lease.Spec.LeaseTransitions; n != 2 || *lease.Spec.LeaseDurationSeconds != 2 {
		t.Fatalf("lease spec %+v: want 2 transitions (a to b, b to a) and a 2 s duration", lease.Spec)
	}
}
