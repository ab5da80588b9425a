package guardrail

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/platform/store/storetest"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// Two replicas share one database: what one changes or deletes, the other
// stops serving within its TTLs, and a guard it read survives the store
// being unreadable.
func TestReplicasSeeUpdatesAndDeletesWithinTheirTTLs(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.SQLite(t)
	open := func() (*Store, *Registry) {
		db, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		st := &Store{DB: db}
		r, err := NewRegistry(nil, st, Options{})
		if err != nil {
			t.Fatal(err)
		}
		r.DraftTTL, r.FrozenTTL = 50*time.Millisecond, 100*time.Millisecond
		return st, r
	}
	a, _ := open()
	_, b := open()
	// Every write through a falls in one millisecond: a changed draft is
	// told from an unchanged one by its policy, not its updated_at.
	fixed := time.Now()
	a.Now = func() time.Time { return fixed }

	rec, err := a.Create(ctx, Policy{Name: "pins", BlockedInputMessaging: "no", BlockedOutputsMessaging: "no",
		WordPolicy: WordPolicy{Words: []Word{{Text: "alpha"}}}})
	if err != nil {
		t.Fatal(err)
	}
	v1, err := a.CreateVersion(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	blocks := func(g *Guard, word string) bool {
		r, err := g.Apply(ctx, Input, "say "+word)
		return err == nil && r.Intervened()
	}
	frozen, err := b.Lookup(ctx, rec.ID, v1.Version)
	if err != nil || !blocks(frozen, "alpha") {
		t.Fatalf("frozen version: %v", err)
	}
	draft, err := b.Lookup(ctx, rec.ID, Draft)
	if err != nil || !blocks(draft, "alpha") {
		t.Fatalf("draft: %v", err)
	}
	if again, _ := b.Lookup(ctx, rec.ID, v1.Version); again != frozen {
		t.Fatal("a frozen version read twice within its TTL was compiled again")
	}

	// The draft changes through replica a: b serves the new one once its
	// TTL has passed; an unchanged re-read keeps the compiled guard.
	if _, err := a.UpdateDraft(ctx, rec.ID, Policy{Name: "pins", BlockedInputMessaging: "no", BlockedOutputsMessaging: "no",
		WordPolicy: WordPolicy{Words: []Word{{Text: "beta"}}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the updated draft", func() bool {
		g, err := b.Lookup(ctx, rec.ID, Draft)
		return err == nil && blocks(g, "beta") && !blocks(g, "alpha")
	})
	time.Sleep(150 * time.Millisecond)
	if g, _ := b.Lookup(ctx, rec.ID, v1.Version); g != frozen {
		t.Fatal("an unchanged frozen version was compiled again after its TTL")
	}

	// Replica d reads the frozen version, then cannot read the store: it
	// serves what it read, as it was.
	dStore, d := open()
	dFrozen, err := d.Lookup(ctx, rec.ID, v1.Version)
	if err != nil {
		t.Fatal(err)
	}
	dStore.DB.Close()
	time.Sleep(150 * time.Millisecond)
	if g, err := d.Lookup(ctx, rec.ID, v1.Version); err != nil || g != dFrozen {
		t.Fatalf("with the store unreadable, the cached frozen version: %v", err)
	}

	// Deleted through a: b, which has the frozen version cached, answers
	// 404 for it and for the draft within its TTLs.
	if _, err := a.Delete(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{v1.Version, Draft} {
		waitFor(t, "the deleted guardrail's 404 at version "+v, func() bool {
			_, err := b.Lookup(ctx, rec.ID, v)
			var le *llm.Error
			return errors.As(err, &le) && le.Status == http.StatusNotFound
		})
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
	}
}
