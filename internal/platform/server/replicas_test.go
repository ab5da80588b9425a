package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/ledger"
	"github.com/junctionhq/junction/internal/platform/server"
	"github.com/junctionhq/junction/internal/platform/store/storetest"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
	"github.com/junctionhq/junction/internal/testkit/junctiontest"
	"github.com/junctionhq/junction/internal/testkit/redistest"
)

// TestReplicasShareLimitsBudgetsAndLedger runs three Junction processes
// on one PostgreSQL and one Redis and sends them concurrent load on one
// key, restarting one of them mid-load: the global RPM admits exactly its
// limit, the hard budget is never exceeded, no ledger record is lost, and
// the ledger's cost is exactly the fake upstream's usage times the prices.
func TestReplicasShareLimitsBudgetsAndLedger(t *testing.T) {
	pg := storetest.Postgres(t)
	redisAddr := redistest.Addr(t)
	var upstreamCalls atomic.Int64
	fake := &fakeopenai.Server{} // 12 prompt and 9 completion tokens a call
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamCalls.Add(1)
		fake.ServeHTTP(w, r)
	}))
	defer up.Close()
	const (
		rpm      = 40
		budget   = 1.0
		callCost = 12*1.0/1000 + 9*2.0/1000 // $0.030 at $1 and $2 per 1K tokens
	)
	prefix := redistest.Prefix(t) // one for all replicas: they share limits
	config := func() string {
		return fmt.Sprintf(`
server: {addr: "127.0.0.1:0", data_dir: %q, database: %q, upstream_timeout: 5s, shutdown_timeout: 10s}
auth: {admin_key: %q}
log: {level: warn}
ledger: {flush_interval: 5ms}
hosting: {disabled: true}
providers:
  - {name: fake, type: openai, base_url: "%s/v1", api_key: sk-up}
models:
  - {name: limited, provider: fake, upstream_model: m1, price: {input_per_1k: 1, output_per_1k: 2}}
  - {name: costly, provider: fake, upstream_model: m2, price: {input_per_1k: 1, output_per_1k: 2}}
governance:
  redis_url: "redis://%s"
  redis_prefix: %q
  rate_limits: [{scope: "model:limited", rpm: %d}]
  budgets: [{scope: "model:costly", period: daily, limit_usd: %g, mode: hard}]
`, t.TempDir(), pg, adminKey, up.URL, redisAddr, prefix, rpm, budget)
	}
	var mu sync.Mutex
	replicas := []*junctiontest.Process{startReplica(t, config()), startReplica(t, config()), startReplica(t, config())}
	live := func(i int) *junctiontest.Process {
		mu.Lock()
		defer mu.Unlock()
		return replicas[i%len(replicas)]
	}

	// A key made on one replica works on the others once they refresh
	// from the shared database; revoking it there stops it everywhere.
	j0, j2 := &junction{t: t, url: replicas[0].URL}, &junction{t: t, url: replicas[2].URL}
	id, secret := j0.createKey("shared", map[string]string{"team": "search"})
	eventually := func(what string, ok func() bool) {
		deadline := time.Now().Add(3 * server.SharedRefresh)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s", what, 3*server.SharedRefresh)
			}
			waitABit()
		}
	}
	models := func() int { st, _, _ := j2.do("GET", "/v1/models", secret, ""); return st }
	eventually("a key made on replica 0 works on replica 2", func() bool { return models() == 200 })
	if st, _, b := j0.do("DELETE", "/api/v1/keys/"+id, adminKey, ""); st != 204 {
		t.Fatalf("revoke: %d %s", st, b)
	}
	eventually("a key revoked on replica 0 stops on replica 2", func() bool { return models() == 401 })

	// send posts one chat request to replica i, moving on to the next
	// replica when one is down (restarting); it returns the status.
	var responses, connErrors atomic.Int64
	send := func(i int, model string) int {
		body := fmt.Sprintf(`{"model":%q,"max_tokens":10,"messages":[{"role":"user","content":"hello from client %d"}]}`, model, i)
		for try := 0; ; try++ {
			r := live(i + try)
			req, _ := http.NewRequest("POST", r.URL+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+adminKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				connErrors.Add(1)
				if try > 20 {
					t.Errorf("no replica answered: %v", err)
					return 0
				}
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			responses.Add(1)
			return resp.StatusCode
		}
	}
	load := func(model string, clients, each int, midway func()) (ok, refused int64) {
		var wg sync.WaitGroup
		var sent atomic.Int64
		var once sync.Once
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range each {
					if sent.Add(1) == int64(clients*each/3) && midway != nil {
						once.Do(midway)
					}
					switch status := send(c*each+k, model); status {
					case 200:
						atomic.AddInt64(&ok, 1)
					case 429:
						atomic.AddInt64(&refused, 1)
					default:
						t.Errorf("%s: status %d", model, status)
					}
				}
			}()
		}
		wg.Wait()
		return ok, refused
	}

	// Phase 1: the global RPM, with replica 1 restarted a third of the
	// way in (SIGTERM drains its requests and its ledger).
	ok1, refused1 := load("limited", 12, 10, func() {
		old := live(1)
		old.Stop()
		fresh := startReplica(t, config())
		mu.Lock()
		replicas[1] = fresh
		mu.Unlock()
	})
	if ok1 != rpm || ok1+refused1 != 120 {
		t.Fatalf("RPM %d across 3 replicas: %d admitted, %d refused of 120", rpm, ok1, refused1)
	}

	// Phase 2: the hard budget under 50 concurrent clients.
	ok2, refused2 := load("costly", 50, 2, nil)
	if ok2 == 0 || refused2 == 0 || float64(ok2)*callCost > budget+1e-9 {
		t.Fatalf("budget $%g at $%.3f a call: %d admitted (spent $%.3f), %d refused", budget, callCost, ok2, float64(ok2)*callCost, refused2)
	}

	// Every response has its record in the shared ledger, and the costs
	// add up to the upstream's usage times the prices, exactly.
	total := responses.Load()
	var recs []ledger.Record
	for range 200 {
		_, _, b := (&junction{t: t, url: live(0).URL}).do("GET", "/api/v1/usage/records?limit=10000", adminKey, "")
		var out struct{ Records []ledger.Record }
		json.Unmarshal(b, &out)
		recs = out.Records
		if int64(len(recs)) >= total {
			break
		}
		waitABit()
	}
	if int64(len(recs)) != total {
		t.Fatalf("the ledger holds %d records for %d responses (%d connection errors while a replica restarted)", len(recs), total, connErrors.Load())
	}
	var cost float64
	var billed int64
	for _, r := range recs {
		if r.CostUSD != nil {
			cost += *r.CostUSD
		}
		if r.Status == 200 {
			billed++
		}
	}
	if billed != upstreamCalls.Load() || billed != ok1+ok2 {
		t.Fatalf("%d successful records, %d upstream calls, %d successes seen by clients", billed, upstreamCalls.Load(), ok1+ok2)
	}
	if want := float64(billed) * callCost; math.Abs(cost-want) > 1e-9 {
		t.Fatalf("ledger cost $%.12f, upstream usage times prices $%.12f", cost, want)
	}
	t.Logf("%d responses, %d connection errors during the restart, %d upstream calls, ledger $%.3f", total, connErrors.Load(), billed, cost)
}
