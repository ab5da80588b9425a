package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// TestRequestsCannotSetOrganisationTags sends requests that claim another
// team and project, on every surface a request can carry tags on (the
// X-Junction-Tags header on the OpenAI, Anthropic and Bedrock surfaces,
// and Bedrock's requestMetadata), with a key whose team is only a tag,
// a key in a team and a key with none. Each record keeps the key's team
// and no project; the request's free tags are kept.
func TestRequestsCannotSetOrganisationTags(t *testing.T) {
	j := startGov(t, &fakeopenai.Server{}, t.TempDir(), `budgets: [{scope: "team:victim", period: daily, limit_usd: 10, mode: soft}]`)
	tagOnlyID, tagOnly := j.createKey("tag-only", map[string]string{"team": "attacker"})
	teamID, teamKey := j.teamKey("team-key", "attacker", "")
	noneID, none := j.createKey("no-team", nil)
	wantTeam := map[string]string{tagOnlyID: "attacker", teamID: "attacker", noneID: ""}

	const forged = "team=victim,project=secret,app=faq"
	msg := `"messages":[{"role":"user","content":"hi"}]`
	converse := `"messages":[{"role":"user","content":[{"text":"hi"}]}]`
	surfaces := []struct{ name, path, body, header string }{
		{"openai header", "/v1/chat/completions", `{"model":"priced","max_tokens":20,` + msg + `}`, forged},
		{"anthropic header", "/v1/messages", `{"model":"priced","max_tokens":20,` + msg + `}`, forged},
		{"bedrock header", "/model/priced/converse", `{` + converse + `}`, forged},
		{"bedrock requestMetadata", "/model/priced/converse",
			`{` + converse + `,"requestMetadata":{"team":"victim","project":"secret","app":"faq"}}`, ""},
	}
	n := 0
	for _, s := range surfaces {
		for _, key := range []string{tagOnly, teamKey, none} {
			var hdr []string
			if s.header != "" {
				hdr = []string{"X-Junction-Tags", s.header}
			}
			if status, _, b := j.do("POST", s.path, key, s.body, hdr...); status != 200 {
				t.Fatalf("%s: %d %s", s.name, status, b)
			}
			n++
		}
	}
	for _, r := range j.records(n) {
		if r.Tags["team"] != wantTeam[r.KeyID] || r.Tags["project"] != "" || r.Tags["app"] != "faq" {
			t.Errorf("%s request of key %s recorded tags %v: want team %q, no project, app faq",
				r.Surface, r.KeyName, r.Tags, wantTeam[r.KeyID])
		}
	}
}

// TestBudgetsSeedFromTheKeyNotItsRecordsTags writes ledger records whose
// tags claim team victim for a key of team attacker (as a forged request
// could before requests were kept from setting team), then restarts:
// the victim's budget must start at $0 and the attacker's at what its
// key spent.
func TestBudgetsSeedFromTheKeyNotItsRecordsTags(t *testing.T) {
	dir := t.TempDir()
	budgets := `budgets: [{scope: "team:victim", period: daily, limit_usd: 10, mode: hard}, {scope: "team:attacker", period: daily, limit_usd: 10, mode: hard}]`
	j := startGov(t, &fakeopenai.Server{}, dir, budgets)
	tagOnlyID, _ := j.createKey("tag-only", map[string]string{"team": "attacker"})
	teamID, _ := j.teamKey("team-key", "attacker", "")
	j.stop()

	db, err := store.Open(context.Background(), filepath.Join(dir, "junction.db"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := ledger.NewWriter(context.Background(), db, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cost := 1.0
	for i, id := range []string{tagOnlyID, teamID, tagOnlyID} {
		w.Add(ledger.Record{Time: time.Now(), RequestID: fmt.Sprint("forged-", i), KeyID: id, KeyName: "k", Surface: "bedrock",
			Model: "priced", Tags: map[string]string{"team": "victim", "project": "secret"}, Status: 200, CostUSD: &cost})
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	db.Close()

	j2 := startGov(t, &fakeopenai.Server{}, dir, budgets)
	j2.settled("config-0", 0) // team:victim
	j2.settled("config-1", 3) // team:attacker
}
