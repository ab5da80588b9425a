package ledger

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/platform/store/storetest"
)

func TestLatencyBuckets(t *testing.T) {
	for _, ms := range []float64{1, 1.5, 2, 3, 10, 99.9, 250, 1000, 12345, 600000} {
		b := latencyBucket(ms)
		lo, hi := math.Exp2(float64(b)/bucketsPerDoubling), math.Exp2(float64(b+1)/bucketsPerDoubling)
		if ms < lo*(1-1e-12) || ms >= hi*(1+1e-12) {
			t.Errorf("%v ms in bucket %d = [%v, %v)", ms, b, lo, hi)
		}
		if r := bucketMS(b) / ms; r < 1/halfBucket || r > halfBucket {
			t.Errorf("%v ms reads back as %v", ms, bucketMS(b))
		}
	}
	for _, ms := range []float64{0, 0.3, 0.999, math.NaN()} {
		if b := latencyBucket(ms); b != -1 {
			t.Errorf("%v ms in bucket %d, want -1", ms, b)
		}
	}
}

// exactPercentile is the nearest-rank percentile of sorted.
func exactPercentile(sorted []float64, p float64) float64 {
	return sorted[int(math.Ceil(p*float64(len(sorted))))-1]
}

func TestLatencyPercentilesFromRollupAndEdges(t *testing.T) { eachBackend(t, testLatencyPercentiles) }

func testLatencyPercentiles(t *testing.T, be storetest.Backend) {
	ctx := context.Background()
	db, err := store.Open(ctx, be.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(7, 7))
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	recs := randomRecords(rng, start, 3, 4500)
	for i := range recs {
		// A long tail: most answers fast, some slow, one in fifty very slow.
		switch p := rng.IntN(50); {
		case p == 0:
			recs[i].LatencyMS = 5000 + rng.Float64()*5000
		case p < 10:
			recs[i].LatencyMS = 400 + rng.Float64()*600
		default:
			recs[i].LatencyMS = 20 + rng.Float64()*80
		}
	}
	write(t, db, recs)

	// A window with ragged ends reads whole days from the daily roll-up,
	// whole hours from the hourly one and the rest from raw records; one
	// under an hour reads raw records alone.
	windows := []Query{
		{From: start.Add(37 * time.Minute), To: start.Add(41*time.Hour + 12*time.Minute)},
		{From: start.Add(37 * time.Minute), To: start.Add(65*time.Hour + 12*time.Minute)},
		{From: start, To: start.Add(72 * time.Hour)},
		{From: start.Add(5*time.Hour + 10*time.Minute), To: start.Add(5*time.Hour + 50*time.Minute)},
		{From: start.Add(37 * time.Minute), To: start.Add(30 * time.Hour), Tags: map[string]string{"team": "ads"}},
	}
	for _, w := range windows {
		for _, groupBy := range []string{"model", "tag:team", "provider"} {
			q := w
			q.GroupBy = groupBy
			byGroup, total, err := Latency(ctx, db, q)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]float64{}
			var all []float64
			for _, r := range recs {
				if r.Status >= 400 || r.Time.Before(q.From) || !r.Time.Before(q.To) || (q.Tags != nil && r.Tags["team"] != q.Tags["team"]) {
					continue
				}
				g := r.Model
				if groupBy == "tag:team" {
					if g = r.Tags["team"]; g == "" {
						g = "(untagged)"
					}
				}
				want[g] = append(want[g], r.LatencyMS)
				all = append(all, r.LatencyMS)
			}
			check := func(name string, got Percentiles, lat []float64) {
				t.Helper()
				slices.Sort(lat)
				if got.Requests != int64(len(lat)) {
					t.Fatalf("%v %s %s: %d requests, want %d", q.From, groupBy, name, got.Requests, len(lat))
				}
				for _, c := range []struct {
					p   float64
					got float64
				}{{0.5, got.P50MS}, {0.9, got.P90MS}, {0.99, got.P99MS}} {
					exact := exactPercentile(lat, c.p)
					if r := c.got / exact; r < 1/halfBucket || r > halfBucket {
						t.Errorf("%v %s %s: p%v = %.1f ms, exact %.1f ms", q.From, groupBy, name, c.p*100, c.got, exact)
					}
				}
			}
			if len(all) == 0 {
				t.Fatalf("window %v–%v selects no records", q.From, q.To)
			}
			check("total", total, all)
			if groupBy == "provider" {
				if byGroup != nil {
					t.Errorf("grouped by provider, which the roll-up does not keep: %v", byGroup)
				}
				continue
			}
			if len(byGroup) != len(want) {
				t.Errorf("%s: %d groups, want %d", groupBy, len(byGroup), len(want))
			}
			for g, lat := range want {
				check(g, byGroup[g], lat)
			}
		}
	}
}

// halfBucket is half a latency bucket's width, as a ratio: the most a
// percentile read from buckets is off from the exact one.
var halfBucket = math.Exp2(0.5/bucketsPerDoubling) * (1 + 1e-9)
