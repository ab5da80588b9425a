package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/platform/store"
	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
	"github.com/junctionhq/junction/internal/testkit/junctiontest"
)

// TestKill9LosesNoAnsweredRequest runs `junction serve` as a child process under
// concurrent load (plain and streamed chat), kills it with SIGKILL, and
// starts it again on the same data directory: every request a client got
// a whole answer for must be in the ledger, once. The writer commits in
// batches of 100 and never on a timer, so without the journal the last
// partial batch would die with the process.
func TestKill9LosesNoAnsweredRequest(t *testing.T) {
	up := httptest.NewServer(&fakeopenai.Server{})
	defer up.Close()
	yaml := fmt.Sprintf(`
server: {upstream_timeout: 5s, shutdown_timeout: 10s}
auth: {admin_key: %q}
log: {level: warn}
ledger: {flush_interval: 1h, batch_size: 100}
hosting: {disabled: true}
providers:
  - {name: fake, type: openai, base_url: "%s/v1", api_key: sk-up}
models:
  - {name: m, provider: fake, upstream_model: m1, price: {input_per_1k: 1, output_per_1k: 2}}
`, adminKey, up.URL)
	j := junctiontest.Start(t, junctiontest.Options{Config: yaml})

	var (
		mu       sync.Mutex
		answered = map[string]bool{}
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
				if (w+i)%2 == 1 {
					body = `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
				}
				req, _ := http.NewRequest("POST", j.URL+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+adminKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return // the process is gone
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				id := resp.Header.Get("X-Request-Id")
				if err != nil || resp.StatusCode != 200 || id == "" {
					return // cut off mid-answer: not answered
				}
				if strings.Contains(body, "stream") && !strings.Contains(string(b), "[DONE]") {
					return
				}
				mu.Lock()
				answered[id] = true
				mu.Unlock()
			}
		}(w)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(answered)
		mu.Unlock()
		if n >= 450 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests answered in 60s", n)
		}
		time.Sleep(time.Millisecond)
	}
	j.Kill() // SIGKILL, mid-load
	close(stop)
	wg.Wait()

	// The next start replays the journal, then a graceful stop.
	again := junctiontest.Start(t, junctiontest.Options{Config: yaml, DataDir: j.DataDir})
	again.Stop()
	db, err := store.Open(context.Background(), filepath.Join(j.DataDir, "junction.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recorded := map[string]bool{}
	rows, err := db.Query(`SELECT request_id FROM usage`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		recorded[id] = true
	}
	rows.Close()
	lost := 0
	for id := range answered {
		if !recorded[id] {
			lost++
		}
	}
	var rolled int
	db.QueryRow(`SELECT COALESCE(SUM(requests), 0) FROM usage_hourly`).Scan(&rolled)
	t.Logf("answered %d, recorded %d (rolled up %d)", len(answered), len(recorded), rolled)
	if lost > 0 {
		t.Fatalf("%d of %d answered requests are not in the ledger after kill -9 and restart", lost, len(answered))
	}
	if rolled != len(recorded) {
		t.Fatalf("the roll-up counts %d requests for %d records: a replay counted some twice", rolled, len(recorded))
	}
}
