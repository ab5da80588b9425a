package governance

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/junctionhq/junction/internal/governance/budget"
	"github.com/junctionhq/junction/internal/testkit/cputime"
	"github.com/junctionhq/junction/internal/testkit/redistest"
	"github.com/junctionhq/junction/internal/tokens"
	"github.com/junctionhq/junction/internal/wire/llm"
)

// TestMain stops the test redis-server when the tests end.
func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

func TestParseScope(t *testing.T) {
	cases := []struct {
		in, canonical string
		wild          bool
	}{
		{"global", "global", false},
		{" key:key_1 ", "key:key_1", false},
		{"key:*", "key:*", true},
		{"model:gpt-4o|team:ml", "team:ml|model:gpt-4o", false},
		{"tag:env=prod|tag:app=faq|project:ml/search", "project:ml/search|tag:app=faq|tag:env=prod", false},
		{"team:*|model:llama", "team:*|model:llama", true},
		{"tag:app=*", "tag:app=*", true},
	}
	for _, c := range cases {
		s, err := ParseScope(c.in)
		if err != nil || s.String() != c.canonical || s.Wildcard() != c.wild {
			t.Errorf("ParseScope(%q) = %q wild=%v err=%v, want %q wild=%v", c.in, s, s.Wildcard(), err, c.canonical, c.wild)
		}
	}
	for in, want := range map[string]string{
		"":                    "required",
		"team":                "KIND:VALUE",
		"team:":               "KIND:VALUE",
		"user:bob":            `"user" is not one of`,
		"tag:app":             "tag:NAME=VALUE",
		"project:search":      "project:TEAM/NAME",
		"team:a|team:b":       "team is named twice",
		"team:a{b}":           "must not contain",
		"global|team:ml":      "KIND:VALUE",
		"tag:app=1|tag:app=2": "tag:app is named twice",
	} {
		if _, err := ParseScope(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseScope(%q) = %v, want an error with %q", in, err, want)
		}
	}
}

func TestScopeMatch(t *testing.T) {
	ml := &Subject{Key: "key_1", Team: "ml", Project: "search", Model: "gpt-4o", Tags: map[string]string{"app": "faq", "team": "ml"}}
	bare := &Subject{Key: "key_2", Model: "gpt-4o"}
	cases := []struct {
		scope string
		subj  *Subject
		want  string // "" when it must not match
	}{
		{"global", bare, "global"},
		{"key:*", ml, "key:key_1"},
		{"key:key_1", ml, "key:key_1"},
		{"key:key_1", bare, ""},
		{"team:ml", ml, "team:ml"},
		{"team:*", ml, "team:ml"},
		{"team:*", bare, ""}, // no team: not a team of its own
		{"project:ml/search", ml, "project:ml/search"},
		{"project:*", ml, "project:ml/search"},
		{"project:*", bare, ""},
		{"model:gpt-4o|team:ml", ml, "team:ml|model:gpt-4o"},
		{"team:ml|model:*", ml, "team:ml|model:gpt-4o"},
		{"team:ml|model:gpt-4o-mini", ml, ""},
		{"tag:app=faq", ml, "tag:app=faq"},
		{"tag:app=*", ml, "tag:app=faq"},
		{"tag:app=*", bare, ""},
		{"key:*|tag:app=faq", ml, "key:key_1|tag:app=faq"},
	}
	for _, c := range cases {
		got, ok := MustParseScope(c.scope).Match(c.subj)
		if ok != (c.want != "") || got != c.want {
			t.Errorf("%q on %+v = %q, %v; want %q", c.scope, *c.subj, got, ok, c.want)
		}
	}
}

// TestInputBoundNeverCountsShort checks the admission bound against the
// exact tokenizers on texts where the usual rules of thumb count short.
func TestInputBoundNeverCountsShort(t *testing.T) {
	raw := make([]byte, 3000)
	rand.Read(raw)
	texts := map[string]string{
		"prose":   strings.Repeat("The history of the printing press begins in the fifteenth century. ", 30),
		"digits":  strings.Repeat("1,2,3,4,5,6,7,8,9,", 200),
		"punct":   strings.Repeat("!@#$%^&*()_+{}|:<>?~`-=[]\\;',./", 50),
		"emoji":   strings.Repeat("😀🎉🚀👍🏽🇯🇵", 100),
		"base64":  base64.StdEncoding.EncodeToString(raw),
		"russian": strings.Repeat("Москва — столица России. ", 40),
		"spaces":  strings.Repeat("a \n b\t\t c  \n\n", 200),
	}
	for name, text := range texts {
		req := &llm.Request{Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: []llm.Part{{Type: llm.PartText, Text: "Answer briefly."}}},
			{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: text}}},
		}}
		bound := InputBound(req)
		for _, model := range []string{"gpt-4o", "gpt-4"} {
			if n := int64(tokens.Request(model, req)); n > bound {
				t.Errorf("%s on %s: %d tokens, bound %d", name, model, n, bound)
			}
		}
		if strings.Count(text, "")-1 < len(text)/4 && bound < int64(len(text)) { // multi-byte text
			t.Errorf("%s: bound %d below the text's %d bytes", name, bound, len(text))
		}
	}
	emb := &llm.EmbedRequest{Input: []byte(`[[1,2,3],[40000,5]]`)}
	if EmbedInputBound(emb) < 5 {
		t.Errorf("embedding bound %d below its 5 token ids", EmbedInputBound(emb))
	}
}

func TestPerTokenRoundsUp(t *testing.T) {
	for usd, want := range map[float64]budget.Nanos{
		0.00015: 150, 0.0006: 600, 0.0025: 2500, 1: 1_000_000, 2: 2_000_000, 0: 0, 1.0 / 3: 333_334, 0.000000001: 1,
	} {
		if got := PerToken(usd); got != want {
			t.Errorf("PerToken(%v) = %d, want %d", usd, got, want)
		}
	}
	p := Price{Input: PerToken(0.0025), Output: PerToken(0.01)}
	if got := p.Cost(1000, 500); got != budget.USD(0.0025+0.005) {
		t.Errorf("Cost = %s, want $0.0075", got)
	}
}

func TestValidate(t *testing.T) {
	c := Config{
		RedisURL: "redis://:pw@host:notaport",
		Budgets: []BudgetConfig{
			{Scope: "team:ml", Period: "weekly", LimitUSD: -1, Mode: "strict", Webhook: "ftp://x"},
			{Scope: "team:ml", Period: "daily", LimitUSD: 10},
		},
		RateLimits:   []RateLimitConfig{{Scope: "key:*"}, {Scope: "bogus", RPM: 1}},
		Capacity:     []CapacityConfig{{Model: "llama", CapacityTPM: 100}},
		Reservations: []ReservationConfig{{Team: "ml", Model: "llama", TPM: 80}, {Team: "web", Model: "llama", TPM: 40}, {Team: "x", Model: "gpt", TPM: 1}},
	}
	got := strings.Join(Validate(c), "\n")
	for _, want := range []string{
		"governance.redis_url:",
		"governance.budgets[0].period: \"weekly\" is not one of daily, monthly",
		"governance.budgets[0].limit_usd: must not be negative",
		"governance.budgets[0].mode: \"strict\" is not one of hard, soft",
		"governance.budgets[0].webhook: must be an absolute http(s) URL",
		"governance.rate_limits[0]: set rpm, tpm or both",
		"governance.rate_limits[1].scope:",
		"governance.reservations[2].model: \"gpt\" has no capacity_tpm",
		"\"llama\" reserves 120 TPM in all, more than its capacity_tpm 100",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "pw") || strings.Contains(got, "budgets[1]") {
		t.Errorf("problems leak the password or flag a valid budget:\n%s", got)
	}
	// Cluster, timeout and leases.
	got = strings.Join(Validate(Config{RedisCluster: true, RedisTimeout: -1,
		Leases: LeaseConfig{Scopes: []string{"global", "nope"}, Slice: 2, Duration: -1}}), "\n")
	for _, want := range []string{
		"governance.redis_cluster: set redis_url",
		"governance.redis_timeout: must not be negative",
		"governance.leases: slices are taken from Redis; set redis_url",
		"governance.leases.scopes[1]:",
		"governance.leases.slice: must be a share between 0 and 1",
		"governance.leases.duration: must not be negative",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "scopes[0]") {
		t.Errorf("global flagged as a scope:\n%s", got)
	}
}

// TestClusterNodeWithoutClusterMode refuses to start on a cluster node
// named as a standalone server: its keys would be refused as moved.
func TestClusterNodeWithoutClusterMode(t *testing.T) {
	_, err := New(context.Background(), Config{RedisURL: "redis://" + redistest.ClusterAddrs(t)[0],
		RateLimits: []RateLimitConfig{{Scope: "global", RPM: 1}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "set governance.redis_cluster: true") {
		t.Fatalf("a cluster node as redis_url: %v", err)
	}
}

// TestAdmissionsShareRoundTrips admits from many goroutines on one
// replica: requests that arrive while a round trip is out go together in
// the next (one script per slot group for all of them), each decided as
// if alone, so the limit is admitted exactly.
func TestAdmissionsShareRoundTrips(t *testing.T) {
	g := newMemory(t, Config{RedisURL: "redis://" + redistest.Addr(t), RedisPrefix: redistest.Prefix(t),
		RateLimits: []RateLimitConfig{{Scope: "global", RPM: 300}, {Scope: "key:*", RPM: 70}}})
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for c := range 100 {
		wg.Go(func() {
			for range 5 {
				_, err := g.Admit(context.Background(), &Request{Subject: Subject{Key: fmt.Sprint("k", c%5)}})
				switch {
				case err == nil:
					admitted.Add(1)
				case llm.AsError(err).Status != 429:
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	// Five keys of 70 would take 350: global's 300 binds.
	if n := admitted.Load(); n != 300 {
		t.Errorf("admitted %d under a global RPM of 300", n)
	}
	st := g.Stats()
	if st.AdmitBatches == 0 || st.Admitted < 2*st.AdmitBatches {
		t.Errorf("%d admissions in %d round trips: they did not share", st.Admitted, st.AdmitBatches)
	}
	t.Logf("%d admissions in %d round trips", st.Admitted, st.AdmitBatches)
}

// TestOneScriptPerSlotGroup counts the scripts redis-server runs for an
// admission under two rate limits and two budgets (the key's and
// global's): one on a standalone server, rate limits and budgets
// together; on a cluster one per scope, a scope's limit and budget
// together. A request its rate limit refuses runs no more on a standalone
// server: its budget, in the same script, reserved nothing, so nothing is
// given back; on a cluster, what global's slot took is.
func TestOneScriptPerSlotGroup(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		t.Run(map[bool]string{false: "redis", true: "cluster"}[cluster], func(t *testing.T) {
			cfg := Config{RedisPrefix: redistest.Prefix(t),
				RateLimits: []RateLimitConfig{{Scope: "global", RPM: 1000}, {Scope: "key:*", RPM: 3}},
				Budgets:    []BudgetConfig{{Scope: "global", Period: "daily", LimitUSD: 100}, {Scope: "key:*", Period: "daily", LimitUSD: 100}},
			}
			var probe redis.UniversalClient
			if cluster {
				cfg.RedisURL, cfg.RedisCluster, probe = redistest.ClusterURL(t), true, redistest.ClusterClient(t)
			} else {
				cfg.RedisURL, probe = "redis://"+redistest.Addr(t), redistest.Client(t)
			}
			g := newMemory(t, cfg)
			scripts := func() int64 {
				var n int64
				count := func(ctx context.Context, c *redis.Client) error {
					info, err := c.Info(ctx, "commandstats").Result()
					for _, line := range strings.Split(info, "\r\n") {
						if rest, ok := strings.CutPrefix(line, "cmdstat_evalsha:calls="); ok {
							v, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
							n += v
						}
					}
					return err
				}
				var err error
				if cc, ok := probe.(*redis.ClusterClient); ok {
					var mu sync.Mutex
					err = cc.ForEachMaster(context.Background(), func(ctx context.Context, c *redis.Client) error {
						mu.Lock()
						defer mu.Unlock()
						return count(ctx, c)
					})
				} else {
					err = count(context.Background(), probe.(*redis.Client))
				}
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			want := int64(1)
			if cluster {
				want = 2 // global's slot and the key's
			}
			price := Price{Output: budget.Dollar / 1000}
			for i := range 4 {
				before := scripts()
				a, err := g.Admit(context.Background(), &Request{Subject: Subject{Key: "k"}, MaxOutput: 10, Spend: flat(price)})
				after := scripts()
				if i < 3 && err != nil || i == 3 && (err == nil || llm.AsError(err).Status != 429) {
					t.Fatalf("admission %d under the key's RPM of 3: %v", i+1, err)
				}
				w := want
				if i == 3 && cluster {
					w += 2 // global's slot admitted: its limit and budget given back
				}
				if i > 0 && after-before != w { // the first also seeds the budgets
					t.Errorf("admission %d ran %d scripts, want %d", i+1, after-before, w)
				}
				if err == nil {
					defer a.Done() // settled after the counting
				}
			}
		})
	}
}

// TestLeasedOwnKeyLimits checks that "key:*" among the leased scopes
// leases a key's own limits too (a busy key's requests then reach Redis
// only for slices and settlements), and that three replicas sharing the
// key on the cluster never admit past its RPM.
func TestLeasedOwnKeyLimits(t *testing.T) {
	cfg := Config{RedisURL: redistest.ClusterURL(t), RedisCluster: true, RedisPrefix: redistest.Prefix(t),
		Leases: LeaseConfig{Scopes: []string{"key:*"}, Slice: 0.1, Duration: time.Minute}}
	var gs []*Governor
	for range 3 {
		gs = append(gs, newMemory(t, cfg))
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for c := range 30 {
		wg.Go(func() {
			g := gs[c%len(gs)]
			for range 5 {
				a, err := g.Admit(context.Background(), &Request{Subject: Subject{Key: "busy"}, KeyRPM: 60, MaxOutput: 10})
				if err != nil {
					if llm.AsError(err).Status != 429 {
						t.Error(err)
					}
					continue
				}
				admitted.Add(1)
				a.Record(10, nil)
				a.Done()
			}
		})
	}
	wg.Wait()
	if n := admitted.Load(); n > 60 || n < 60-3*6 {
		t.Fatalf("admitted %d under the key's RPM of 60 with slices of 6 on 3 replicas", n)
	}
	var slices uint64
	for _, g := range gs {
		slices += g.Stats().Slices
	}
	if slices == 0 || slices > uint64(admitted.Load())/2 {
		t.Errorf("%d slices for %d admissions: the key's own limit was not leased", slices, admitted.Load())
	}
}

// TestLeasesAcrossReplicas runs three Governors on the cluster with
// leases on global, from many goroutines: global's rate limit and hard
// budget are admitted from slices, each key's on Redis. Together the
// replicas never admit past the RPM nor reserve past the budget, most
// admissions take no slice, and the limit is reached.
func TestLeasesAcrossReplicas(t *testing.T) {
	prefix := redistest.Prefix(t)
	cfg := Config{RedisURL: redistest.ClusterURL(t), RedisCluster: true, RedisPrefix: prefix,
		RateLimits: []RateLimitConfig{{Scope: "global", RPM: 300}, {Scope: "key:*", RPM: 1000}},
		Budgets:    []BudgetConfig{{Scope: "global", Period: "daily", LimitUSD: 1}, {Scope: "key:*", Period: "daily", LimitUSD: 100}},
		Leases:     LeaseConfig{Scopes: []string{"global"}, Slice: 0.05, Duration: time.Minute},
	}
	var gs []*Governor
	for range 3 {
		gs = append(gs, newMemory(t, cfg))
	}
	// A request may cost up to $0.002 ($1 covers 500) and costs $0.001:
	// the RPM of 300 binds first.
	price := Price{Output: budget.Dollar / 1000 / 100}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for c := range 60 {
		wg.Go(func() {
			g := gs[c%len(gs)]
			for range 10 {
				a, err := g.Admit(context.Background(), &Request{Subject: Subject{Key: fmt.Sprint("k", c%5)}, MaxOutput: 200, Spend: flat(price)})
				if err != nil {
					if llm.AsError(err).Status != 429 {
						t.Error(err)
					}
					continue
				}
				admitted.Add(1)
				cost := 0.001
				a.Record(100, &cost)
				a.Done()
			}
		})
	}
	wg.Wait()
	if n := admitted.Load(); n > 300 || n < 300-3*15 {
		t.Fatalf("admitted %d under a global RPM of 300 with slices of 15 on 3 replicas", n)
	}
	var slices uint64
	for _, g := range gs {
		slices += g.Stats().Slices
	}
	if slices > uint64(admitted.Load())/3 {
		t.Errorf("%d slices for %d admissions", slices, admitted.Load())
	}
	// Once the replicas stop (settling what they hold and releasing their
	// budget slices), the budget holds what was spent and nothing
	// reserved.
	for _, g := range gs {
		g.Close(context.Background())
	}
	after := newMemory(t, cfg)
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := after.Budget(context.Background(), "config-0")
		want := float64(admitted.Load()) * 0.001
		if err == nil {
			if spent, _ := strconv.ParseFloat(v.Status.SpentUSD, 64); math.Abs(spent-want) < 1e-9 && v.Status.ReservedUSD == "0.00" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("global budget %+v (%v), want $%.3f spent", v.Status, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%d admitted from %d slices", admitted.Load(), slices)
}

// TestLeaseHeadersAndCloseReturnSlices runs a leased global limit on one
// replica: the x-ratelimit-* headers report its slice (remaining is what
// the slice still holds, and that many more requests are admitted), and
// when the replica stops, what its slice did not admit goes back, so a
// replica started after it admits the whole rest of the limit, not the
// limit less a slice.
func TestLeaseHeadersAndCloseReturnSlices(t *testing.T) {
	cfg := Config{RedisURL: "redis://" + redistest.Addr(t), RedisPrefix: redistest.Prefix(t),
		RateLimits: []RateLimitConfig{{Scope: "global", RPM: 100}, {Scope: "key:*", RPM: 1000}},
		Leases:     LeaseConfig{Scopes: []string{"global"}, Slice: 0.4, Duration: time.Minute},
	}
	admit := func(g *Governor) (*Admission, error) {
		return g.Admit(context.Background(), &Request{Subject: Subject{Key: "k"}, MaxOutput: 10})
	}
	first := newMemory(t, cfg)
	for want := int64(39); want >= 37; want-- { // a slice of 40, one request each
		a, err := admit(first)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		a.SetHeaders(h)
		if got := h.Get("x-ratelimit-limit-requests"); got != "100" {
			t.Errorf("x-ratelimit-limit-requests %q, want the global RPM, 100", got)
		}
		if got := h.Get("x-ratelimit-remaining-requests"); got != strconv.FormatInt(want, 10) {
			t.Errorf("x-ratelimit-remaining-requests %q, want what the slice holds, %d", got, want)
		}
		if reset, err := time.ParseDuration(h.Get("x-ratelimit-reset-requests")); err != nil || reset <= 0 || reset > time.Minute+time.Second {
			t.Errorf("x-ratelimit-reset-requests %q, want the slice's end, within its minute", h.Get("x-ratelimit-reset-requests"))
		}
		a.Done()
	}
	// Remaining is a floor: the slice's 37 are admitted without Redis's
	// global counter.
	for i := range 37 {
		if _, err := admit(first); err != nil {
			t.Fatalf("request %d of the 37 the headers promised: %v", i+1, err)
		}
	}
	// Take a second slice and use one request of it, then stop: 39 go
	// back.
	if _, err := admit(first); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// 41 admitted; the restarted replica gets the other 59, in slices of
	// 40 and then of what is left.
	second := newMemory(t, cfg)
	n := 0
	for ; n < 100; n++ {
		if _, err := admit(second); err != nil {
			if llm.AsError(err).Status != 429 {
				t.Fatal(err)
			}
			break
		}
	}
	if n != 59 {
		t.Errorf("a replica started after one that stopped admitted %d of the 59 left under the global RPM of 100", n)
	}
}

func newMemory(t testing.TB, c Config) *Governor {
	t.Helper()
	g, err := New(context.Background(), c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(context.Background()) })
	return g
}

func flat(p Price) func(in, out int64) budget.Nanos {
	return func(in, out int64) budget.Nanos { return p.Cost(in, out) }
}

// TestAdmissionIsAllOrNothing checks that a refusal by one side (rate
// limit or budget) holds nothing on the other, in memory and on a real
// redis-server, where both checks travel in one pipeline and the
// give-back of the side that admitted is a second round trip.
func TestAdmissionIsAllOrNothing(t *testing.T) {
	cfg := Config{
		RateLimits: []RateLimitConfig{{Scope: "key:*", RPM: 2}},
		Budgets:    []BudgetConfig{{Scope: "team:ml", Period: "daily", LimitUSD: 1}},
	}
	t.Run("memory", func(t *testing.T) { testAdmissionIsAllOrNothing(t, newMemory(t, cfg)) })
	t.Run("redis", func(t *testing.T) {
		rc := cfg
		rc.RedisURL, rc.RedisPrefix = "redis://"+redistest.Addr(t), redistest.Prefix(t)
		testAdmissionIsAllOrNothing(t, newMemory(t, rc))
	})
	// On a cluster the key's limit and the team's budget live in
	// different slots: each refusal is given back across slots.
	t.Run("cluster", func(t *testing.T) {
		rc := cfg
		rc.RedisURL, rc.RedisCluster, rc.RedisPrefix = redistest.ClusterURL(t), true, redistest.Prefix(t)
		testAdmissionIsAllOrNothing(t, newMemory(t, rc))
	})
}

func testAdmissionIsAllOrNothing(t *testing.T, g *Governor) {
	ctx := context.Background()
	dollarAnswer := Price{Output: budget.Dollar / 100} // 100 output tokens: $1
	req := func(key string, out int64) *Request {
		return &Request{Subject: Subject{Key: key, Team: "ml", Model: "m"}, MaxOutput: out, Spend: flat(dollarAnswer)}
	}
	held := func(want string) {
		t.Helper()
		v, err := g.Budget(ctx, "config-0")
		if err != nil || v.Status.ReservedUSD != want {
			t.Fatalf("budget holds %+v (%v), want %s reserved", v.Status, err, want)
		}
	}
	// A budget refusal takes nothing from the rate limit...
	if _, err := g.Admit(ctx, req("a", 101)); llm.AsError(err).Type != llm.ErrBudgetExceeded {
		t.Fatalf("$1.01 under $1: %v", err)
	}
	a1, err := g.Admit(ctx, req("a", 40))
	if err != nil {
		t.Fatal(err)
	}
	a2, err := g.Admit(ctx, req("a", 40))
	if err != nil {
		t.Fatal(err)
	}
	held("0.80")
	// ...and a rate refusal takes nothing from the budget (on Redis the
	// budget was checked in the same script, or in the same pipeline and
	// given back on a cluster): $0.80 is held, so another key's $0.20
	// still fits.
	for range 3 {
		if _, err := g.Admit(ctx, req("a", 1)); llm.AsError(err).Type != llm.ErrRateLimit {
			t.Fatalf("third request under RPM 2: %v", err)
		}
	}
	held("0.80")
	if _, err := g.Admit(ctx, req("b", 20)); err != nil {
		t.Fatalf("$0.20 of the $0.20 left: %v", err)
	}
	if _, err := g.Admit(ctx, req("c", 1)); llm.AsError(err).Type != llm.ErrBudgetExceeded {
		t.Fatalf("past the budget: %v", err)
	}
	// Settling gives back what the requests did not spend.
	cost := 0.05
	a1.Record(30, &cost)
	a1.Done()
	a2.Done() // failed: nothing billed
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := g.Budget(ctx, "config-0")
		if err == nil && v.Status.SpentUSD == "0.05" && v.Status.ReservedUSD == "0.20" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after settling: %+v %v", v.Status, err)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHardBudgetCapsMaxTokens(t *testing.T) {
	g := newMemory(t, Config{DefaultMaxTokens: 1000, Budgets: []BudgetConfig{{Scope: "global", Period: "monthly", LimitUSD: 5, Mode: "hard"}}})
	var out int64
	a, err := g.Admit(context.Background(), &Request{Subject: Subject{Key: "k"}, Input: 10,
		Spend: func(in, o int64) budget.Nanos { out = o; return 0 }})
	if err != nil || a.MaxTokens != 1000 || out != 1000 {
		t.Fatalf("MaxTokens %d, worst case priced for %d output tokens (%v); want 1000", a.MaxTokens, out, err)
	}
	soft := newMemory(t, Config{Budgets: []BudgetConfig{{Scope: "global", Period: "monthly", LimitUSD: 5, Mode: "soft"}}})
	if a, _ := soft.Admit(context.Background(), &Request{Subject: Subject{Key: "k"}}); a.MaxTokens != 0 {
		t.Fatalf("a soft budget capped max_tokens at %d", a.MaxTokens)
	}
}

func TestReservationsShareCapacity(t *testing.T) {
	g := newMemory(t, Config{
		Capacity:     []CapacityConfig{{Model: "llama", CapacityTPM: 100}, {Model: "full", CapacityTPM: 10}},
		Reservations: []ReservationConfig{{Team: "ml", Model: "llama", TPM: 60}, {Team: "ml", Model: "full", TPM: 10}},
	})
	ctx := context.Background()
	admit := func(team, model string, tokens int64) error {
		_, err := g.Admit(ctx, &Request{Subject: Subject{Key: "k-" + team, Team: team, Model: model}, MaxOutput: tokens})
		return err
	}
	steps := []struct {
		team, model string
		tokens      int64
		refused     string
	}{
		{"web", "llama", 40, ""},            // the pool is 100 - 60 = 40
		{"web", "llama", 1, "llama|shared"}, // full, though 60 TPM are idle
		{"ml", "llama", 60, ""},             // ml's share
		{"ml", "llama", 1, "llama|shared"},  // share and pool both full
		{"web", "full", 1, "all of it is reserved"},
		{"ml", "full", 10, ""},
	}
	for i, s := range steps {
		err := admit(s.team, s.model, s.tokens)
		if s.refused == "" && err != nil || s.refused != "" && (err == nil || !strings.Contains(err.Error(), s.refused)) {
			t.Fatalf("step %d (%s on %s, %d tokens): %v, want refusal %q", i, s.team, s.model, s.tokens, err, s.refused)
		}
	}
	// Spill-over: a team past its share draws on the pool.
	g2 := newMemory(t, Config{Capacity: []CapacityConfig{{Model: "m", CapacityTPM: 100}}, Reservations: []ReservationConfig{{Team: "ml", Model: "m", TPM: 50}}})
	for i, tokens := range []int64{50, 50} {
		if _, err := g2.Admit(ctx, &Request{Subject: Subject{Key: "k", Team: "ml", Model: "m"}, MaxOutput: tokens}); err != nil {
			t.Fatalf("request %d of ml (share, then pool): %v", i, err)
		}
	}
}

func TestUnreachableRedisAdmitsNothing(t *testing.T) {
	g, err := New(context.Background(), Config{RedisURL: "redis://" + redistest.Addr(t), RedisPrefix: redistest.Prefix(t),
		RateLimits: []RateLimitConfig{{Scope: "global", RPM: 10}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	g.client.Close() // as if Redis went away
	_, err = g.Admit(context.Background(), &Request{Subject: Subject{Key: "k"}})
	if e := llm.AsError(err); e.Status != 503 || !errors.Is(err, errUnavailable) {
		t.Fatalf("admission without Redis: %v", err)
	}
}

// TestSlowRedisRefusesWithinTheTimeout pauses a redis-server of its own
// for a second: an admission waits at most redis_timeout, is refused with
// 503 and is counted as a timeout; once Redis answers again, admissions
// go through.
func TestSlowRedisRefusesWithinTheTimeout(t *testing.T) {
	srv, err := redistest.StartServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	g := newMemory(t, Config{RedisURL: "redis://" + srv.Addr, RedisTimeout: 200 * time.Millisecond,
		RateLimits: []RateLimitConfig{{Scope: "global", RPM: 100}}})
	ctx := context.Background()
	if _, err := g.Admit(ctx, &Request{Subject: Subject{Key: "k"}}); err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	if err := admin.Do(ctx, "CLIENT", "PAUSE", 1000, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = g.Admit(ctx, &Request{Subject: Subject{Key: "k"}})
	took := time.Since(start)
	if e := llm.AsError(err); e.Status != 503 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("admission while Redis is paused: %v (%v)", err, errors.Unwrap(err))
	}
	if took > time.Second {
		t.Errorf("refused after %v, want about the 200ms redis_timeout", took)
	}
	if st := g.Stats(); st.TimedOut != 1 || st.Unavailable != 1 {
		t.Errorf("stats %+v, want one timeout counted as unavailable", st)
	}
	deadline := time.Now().Add(5 * time.Second) // the pause ends by itself within a second
	for {
		if _, err := g.Admit(ctx, &Request{Subject: Subject{Key: "k"}}); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("after Redis answers again: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkAdmission measures a request's whole admission and settlement
// on one node: scope matching for three rate limits (per key, per team,
// per team and model) and two budgets (the key's daily, the team's
// monthly), reservation, and settlement. "redis" and "cluster" are the
// same across replicas, one round trip per node to admit, settlements
// batched in the background; they report redis-server's CPU time per
// request (redis-µs/op, all masters together), measured after the
// settlements drained. The /parallel runs admit from GOMAXPROCS×8
// goroutines, as a loaded gateway does.
func BenchmarkAdmission(b *testing.B) {
	cfg := Config{
		Window: time.Second, // keeps the state a long run leaves bounded
		RateLimits: []RateLimitConfig{
			{Scope: "key:*", RPM: 1 << 40, TPM: 1 << 50},
			{Scope: "team:*", TPM: 1 << 50},
			{Scope: "team:*|model:*", RPM: 1 << 40},
		},
		Budgets: []BudgetConfig{
			{Scope: "key:*", Period: "daily", LimitUSD: 1e6},
			{Scope: "team:*", Period: "monthly", LimitUSD: 1e6},
		},
	}
	price := Price{Input: PerToken(0.0025), Output: PerToken(0.01)}
	req := &llm.Request{MaxTokens: new(int), Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText,
		Text: strings.Repeat("Summarise the quarterly report in three bullet points. ", 70)}}}}} // ~4 KB
	*req.MaxTokens = 500
	cost := 0.004
	one := func(b *testing.B, g *Governor) {
		r := Request{Subject: Subject{Key: "key_1a2b3c4d", Team: "ml", Model: "gpt-4o"}, Input: InputBound(req),
			MaxOutput: int64(*req.MaxTokens), Spend: flat(price)}
		a, err := g.Admit(context.Background(), &r)
		if err != nil || a == nil {
			b.Fatalf("admission: %v", err)
		}
		a.Record(1400, &cost)
		a.Done()
	}
	run := func(b *testing.B, g *Governor) {
		b.ReportAllocs()
		for b.Loop() {
			one(b, g)
		}
	}
	parallel := func(b *testing.B, g *Governor) {
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				one(b, g)
			}
		})
	}
	b.Run("memory", func(b *testing.B) { run(b, newMemory(b, cfg)) })
	shared := func(cluster bool, body func(*testing.B, *Governor)) func(*testing.B) {
		return func(b *testing.B) {
			ctx := context.Background()
			rc := cfg
			var probe redis.UniversalClient
			if cluster {
				rc.RedisURL, rc.RedisCluster, probe = redistest.ClusterURL(b), true, redistest.ClusterClient(b)
			} else {
				rc.RedisURL, probe = "redis://"+redistest.Addr(b), redistest.Client(b)
			}
			rc.RedisPrefix = redistest.Prefix(b)
			g, err := New(ctx, rc, Options{})
			if err != nil {
				b.Fatal(err)
			}
			before, err := redistest.CPU(ctx, probe)
			if err != nil {
				b.Fatal(err)
			}
			own := cputime.Process()
			body(b, g)
			b.StopTimer()
			g.Close(ctx) // drains the settlements
			own = cputime.Process() - own
			after, err := redistest.CPU(ctx, probe)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64((after-before).Microseconds())/float64(b.N), "redis-µs/op")
			// This process's CPU, the Go side of the accounting: the
			// client, the replies' decoding, the hand-offs between
			// goroutines.
			b.ReportMetric(float64(own.Microseconds())/float64(b.N), "cpu-µs/op")
			if st := g.Stats(); st.SettleBatches > 0 && st.AdmitBatches > 0 {
				b.ReportMetric(float64(st.Admitted)/float64(st.AdmitBatches), "admits/batch")
				b.ReportMetric(float64(st.Settled)/float64(st.SettleBatches), "settles/batch")
			}
		}
	}
	b.Run("redis", shared(false, run))
	b.Run("redis/parallel", shared(false, parallel))
	b.Run("cluster/parallel", shared(true, parallel))
}
