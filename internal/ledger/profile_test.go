package ledger

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/platform/store/storetest"
)

// The same records give the same traffic profile on every backend (the
// advisor's tests pin its values on SQLite).
func TestTrafficProfileAgreesAcrossBackends(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	recs := randomRecords(rand.New(rand.NewPCG(7, 8)), start, 3, 1500)
	q := ProfileQuery{Model: "gpt-4o", Tags: map[string]string{"team": "search"}, From: start.Add(-24 * time.Hour), To: start.Add(96 * time.Hour)}
	var profiles []*Profile
	for _, b := range storetest.Backends {
		db := openDB(t, b)
		write(t, db, recs)
		p, err := TrafficProfile(context.Background(), db, q)
		if err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
		if p.Requests == 0 || p.PeakHourRequests == 0 {
			t.Fatalf("%s: selected nothing: %+v", b.Name, p)
		}
		profiles = append(profiles, p)
	}
	a, b := profiles[0], profiles[1]
	if a.Requests != b.Requests || a.Errors != b.Errors || a.InputTokens != b.InputTokens || a.OutputTokens != b.OutputTokens ||
		a.UnpricedRequests != b.UnpricedRequests || a.ByHour != b.ByHour || a.PeakHourRequests != b.PeakHourRequests ||
		!a.Start.Equal(b.Start) || math.Abs(a.CostUSD-b.CostUSD) > 1e-9 {
		t.Fatalf("sqlite %+v\npostgres %+v", a, b)
	}
}
