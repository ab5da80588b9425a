package keys

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/junctionhq/junction/internal/platform/store"
)

func TestTeamsProjectsAndKeyLimits(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateKey(ctx, Spec{Name: "x", Team: "ml"}); !errors.Is(err, ErrMissing) {
		t.Fatalf("key in a missing team: %v", err)
	}
	if _, err := s.CreateTeam(ctx, "ml", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTeam(ctx, "ml", ""); !errors.Is(err, ErrExists) {
		t.Fatalf("team twice: %v", err)
	}
	if _, err := s.CreateProject(ctx, "ml", "search", ""); err != nil {
		t.Fatal(err)
	}
	k, plain, err := s.CreateKey(ctx, Spec{Name: "bot", Tags: map[string]string{"team": "web", "app": "faq"}, Team: "ml", Project: "search", RPM: 5})
	if err != nil {
		t.Fatal(err)
	}
	if k.Tags["team"] != "ml" || k.Tags["project"] != "search" || k.Tags["app"] != "faq" {
		t.Fatalf("key tags %v: the key's team and project win", k.Tags)
	}
	if got := k.OrgTags(map[string]string{"team": "web", "env": "prod"}); got["team"] != "ml" || got["project"] != "search" || got["env"] != "prod" {
		t.Fatalf("OrgTags %v", got)
	}
	if err := s.DeleteTeam(ctx, "ml"); !errors.Is(err, ErrInUse) {
		t.Fatalf("delete a team with projects: %v", err)
	}
	if err := s.DeleteProject(ctx, "ml", "search"); !errors.Is(err, ErrInUse) {
		t.Fatalf("delete a project with a live key: %v", err)
	}
	// New limits replace the record; a request holding the old one keeps it.
	before, after, err := s.SetLimits(ctx, k.ID, 0, 1000)
	if err != nil || before.RPM != 5 || after.RPM != 0 || after.TPM != 1000 || k.TPM != 0 {
		t.Fatalf("SetLimits: before %+v after %+v err %v", before, after, err)
	}
	if got, _ := s.Authenticate(plain); got.TPM != 1000 {
		t.Fatalf("authenticated key has TPM %d", got.TPM)
	}
	// Everything survives a restart.
	s2, err := Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := s2.Live(k.ID)
	if !ok || got.Team != "ml" || got.Project != "search" || got.TPM != 1000 || got.Tags["team"] != "ml" {
		t.Fatalf("after reopening: %+v", got)
	}
	if err := s.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProject(ctx, "ml", "search"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTeam(ctx, "ml"); err != nil {
		t.Fatal(err)
	}
}
