package store_test

// The SQL of the packages that keep their state in Junction's database,
// run on every backend. Their own tests pin the behaviour on SQLite;
// these check that each statement means the same on PostgreSQL.

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/auth/awscreds"
	"github.com/junctionhq/junction/internal/auth/keys"
	"github.com/junctionhq/junction/internal/guardrail"
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/platform/store/storetest"
	"github.com/junctionhq/junction/internal/promptroute"
)

func eachBackend(t *testing.T, test func(t *testing.T, db *sql.DB, reopen func() *sql.DB)) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			dsn := b.DSN(t)
			open := func() *sql.DB {
				db, err := store.Open(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return db
			}
			test(t, open(), open)
		})
	}
}

func TestKeysAndAWSCredentials(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *sql.DB, reopen func() *sql.DB) {
		ctx := context.Background()
		ks, err := keys.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		// Made within the same millisecond, most likely: listed in the
		// order made all the same.
		var made []string
		for _, name := range []string{"c", "a", "b"} {
			k, _, err := ks.Create(ctx, name, map[string]string{"team": name}, name == "a")
			if err != nil {
				t.Fatal(err)
			}
			made = append(made, k.ID)
		}
		if err := ks.Revoke(ctx, made[1]); err != nil {
			t.Fatal(err)
		}
		ks, err = keys.Open(ctx, reopen())
		if err != nil {
			t.Fatal(err)
		}
		list, err := ks.List(ctx)
		if err != nil || len(list) != 3 {
			t.Fatalf("list %v, %v", list, err)
		}
		for i, k := range list {
			if k.ID != made[i] || (k.RevokedAt != nil) != (i == 1) || k.Tags["team"] != k.Name || k.Admin != (k.Name == "a") {
				t.Fatalf("key %d: %+v", i, k)
			}
		}
		if _, ok := ks.Live(made[1]); ok || ks.HasAdmin() {
			t.Fatal("the revoked admin key is live")
		}

		keyPath := filepath.Join(t.TempDir(), "master.key")
		cs, err := awscreds.Open(ctx, db, keyPath)
		if err != nil {
			t.Fatal(err)
		}
		c1, secret, err := cs.Create(ctx, made[0])
		if err != nil {
			t.Fatal(err)
		}
		c2, _, err := cs.Create(ctx, made[0])
		if err != nil {
			t.Fatal(err)
		}
		cs, err = awscreds.Open(ctx, reopen(), keyPath) // decrypts the stored (BYTEA) secrets
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := cs.SecretAccessKey(c1.AccessKeyID); !ok || got != secret {
			t.Fatal("the secret did not survive a reopen")
		}
		creds, err := cs.List(ctx, made[0])
		if err != nil || len(creds) != 2 || creds[0].AccessKeyID != c1.AccessKeyID || creds[1].AccessKeyID != c2.AccessKeyID {
			t.Fatalf("credentials %v, %v", creds, err)
		}
		if err := cs.Revoke(ctx, "JKNOPE"); !errors.Is(err, awscreds.ErrNotFound) {
			t.Fatalf("revoke unknown: %v", err)
		}
	})
}

func TestGuardrailStore(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *sql.DB, _ func() *sql.DB) {
		ctx := context.Background()
		s := &guardrail.Store{DB: db}
		r, err := s.Create(ctx, guardrail.Policy{Name: "pii", BlockedInputMessaging: "no"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Create(ctx, guardrail.Policy{Name: "pii"}); err == nil {
			t.Fatal("a second guardrail of the same name")
		}
		if _, err := s.UpdateDraft(ctx, r.ID, guardrail.Policy{Name: "pii", BlockedInputMessaging: "never"}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := s.CreateVersion(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
		}
		v, err := s.Get(ctx, "pii", "2")
		if err != nil || v.Policy.BlockedInputMessaging != "never" {
			t.Fatalf("version 2 by name: %+v, %v", v, err)
		}
		list, err := s.List(ctx)
		if err != nil || len(list) != 1 || list[0].LatestVersion != "2" {
			t.Fatalf("list %+v, %v", list, err)
		}
	})
}

func TestPromptFeedback(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *sql.DB, reopen func() *sql.DB) {
		ctx := context.Background()
		embed := func(_ context.Context, texts []string) ([][]float32, error) {
			out := make([][]float32, len(texts))
			for i, s := range texts {
				out[i] = []float32{float32(len(s)), 1, 0.5}
			}
			return out, nil
		}
		fs, err := promptroute.OpenFeedback(ctx, db, embed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fs.Add(ctx, promptroute.Feedback{Prompt: "hi", Model: "small", Good: true},
			promptroute.Feedback{Prompt: "prove it", Model: "large", Good: false}); err != nil {
			t.Fatal(err)
		}
		fs, err = promptroute.OpenFeedback(ctx, reopen(), embed)
		if err != nil || fs.Len() != 2 {
			t.Fatalf("reopened with %d examples: %v", fs.Len(), err)
		}
	})
}

func TestHostingStore(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *sql.DB, _ func() *sql.DB) {
		ctx := context.Background()
		s := &hosting.Store{DB: db}
		if err := s.CreateModel(ctx, &hosting.Model{Name: "m"}); err != nil {
			t.Fatal(err)
		}
		var he *hosting.Error
		if err := s.CreateModel(ctx, &hosting.Model{Name: "m"}); !errors.As(err, &he) || he.Code != hosting.ErrExists {
			t.Fatalf("a second model of the same name: %v", err)
		}
		if m, err := s.Model(ctx, "m"); err != nil || m.Name != "m" {
			t.Fatalf("model %+v, %v", m, err)
		}

		for i, msg := range []string{"one", "two", "three"} {
			if _, err := db.Exec(`INSERT INTO hosting_events(endpoint, ts, message) VALUES ('e', ?, ?)`, i, msg); err != nil {
				t.Fatal(err)
			}
		}
		events, err := s.Events(ctx, "e", 2)
		if err != nil || len(events) != 2 || events[0].Message != "two" || events[1].Message != "three" {
			t.Fatalf("the two newest events, oldest first: %+v, %v", events, err)
		}

		hour := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		for _, g := range []struct {
			instance   string
			start, end time.Duration
			price      any
		}{
			{"i-1", -30 * time.Minute, 30 * time.Minute, 2.0}, // half in the window
			{"i-1", 30 * time.Minute, 90 * time.Minute, 2.0},  // half in the window
			{"i-2", 0, time.Hour, nil},                        // all in, unpriced
			{"i-3", 2 * time.Hour, 3 * time.Hour, 1.0},        // outside
		} {
			if _, err := db.Exec(`INSERT INTO hosting_usage(endpoint, variant, instance_id, instance_type, start_ts, end_ts, usd_per_hour, cost_usd)
				VALUES ('e', 'v', ?, 't', ?, ?, ?, NULL)`, g.instance, hour.Add(g.start).UnixMilli(), hour.Add(g.end).UnixMilli(), g.price); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := hosting.HostingReport(ctx, db, hour, hour.Add(time.Hour))
		if err != nil || len(rows) != 1 {
			t.Fatalf("report %+v, %v", rows, err)
		}
		if r := rows[0]; r.InstanceHours != 2 || r.CostUSD != 2 || !r.Unpriced {
			t.Fatalf("report %+v: want 2 instance hours, $2 and unpriced time", r)
		}
	})
}
