package main

// The governance lane (go run ./bench -governance) measures what limits
// and budgets cost where they live: three Junction replicas with no
// governance, with it in memory, on one redis-server and on a
// three-master Redis Cluster (those two with and without leases on
// global, and with leases on global and every key: "+hot"), all in one
// run, each replica on keys of its own. The rules are issue 23's: rate
// limits on the key and global, hard budgets on global and key:*, all
// far from their limits so that every request is admitted and settled. The setups' measured
// slices are interleaved like the main scenarios'. Besides governed
// requests per second and Junction's CPU per request, it reads each
// redis-server's CPU time from /proc and reports it per request, and the
// ceiling that implies: the requests per second at which the busiest
// redis-server would use a whole core.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/junctionhq/junction/internal/testkit/redistest"
)

var governanceBaseline = flag.String("baseline", "", "with -governance, also measure one redis-server and the cluster with this junction binary (an earlier build: its governance config must be the same), as setups baseline and baseline-cluster")

var governanceLane = flag.Bool("governance", false, "measure governance instead: three Junction replicas with no limits, limits and budgets in memory, on one redis-server and on a three-master Redis Cluster; governed req/s and redis-server CPU per request (writes bench/results/governance-latest.json unless -out says otherwise)")

// govRules are the rules, far from their limits: the key's RPM
// and TPM (the lane's key has its own, which take the place of key:*) and
// global's, hard budgets on global and each key.
const govRules = `  rate_limits:
    - {scope: global, rpm: 1000000000, tpm: 1000000000000}
  budgets:
    - {scope: global, period: monthly, limit_usd: 1000000}
    - {scope: "key:*", period: daily, limit_usd: 1000000}
`

// govConfigYAML is a replica's config: one provider, the fake, one priced
// model, and the setup's governance section (YAML, "governance:" and
// what it holds).
func govConfigYAML(addr, dataDir, upstream, governance string) string {
	return fmt.Sprintf(`
server: {addr: %q, data_dir: %q}
auth: {admin_key: %q}
providers:
  - {name: fake, type: openai, base_url: "%s/v1", api_key: sk-bench}
models:
  - {name: %s, provider: fake, upstream_model: bench-upstream, price: {input_per_1k: 0.00015, output_per_1k: 0.0006}}
%s`, addr, dataDir, adminKey, upstream, model, governance)
}

// govReport is one run of the governance lane.
type govReport struct {
	Date     string      `json:"date"`
	Machine  machine     `json:"machine"`
	Settings *settings   `json:"settings"`
	Replicas int         `json:"replicas"`
	Results  []GovResult `json:"results"`
	// OverOneServer is each Redis setup's ceiling over that of one
	// server in exact mode ("redis").
	OverOneServer map[string]float64 `json:"ceiling_over_one_server"`
}

// GovResult is one setup's measurements, summed over its replicas.
type GovResult struct {
	Setup      string  `json:"setup"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	RPS        float64 `json:"rps"`
	Latency    Dist    `json:"latency"`
	// JunctionCPU is the replicas' CPU time per request, µs.
	JunctionCPU float64 `json:"junction_cpu_us_per_request"`
	// RedisCPU is every redis-server's CPU time per request, µs, and
	// RedisNodes each one's.
	RedisCPU   float64   `json:"redis_cpu_us_per_request,omitempty"`
	RedisNodes []float64 `json:"redis_node_cpu_us_per_request,omitempty"`
	// RedisCeiling is the requests per second at which the busiest
	// redis-server would use one core, at this CPU per request.
	RedisCeiling float64 `json:"redis_ceiling_rps,omitempty"`
	// ScriptCPU is the time Redis spent in scripts (EVALSHA, by INFO
	// commandstats) per request, µs, summed over the servers: the rest of
	// RedisCPU is the network, the event loop and the other commands.
	ScriptCPU float64 `json:"redis_script_us_per_request,omitempty"`
	// PerRoundTrip is how many admissions an admission round trip to
	// Redis carried, from the replicas' /metrics (0 where none went).
	PerRoundTrip float64 `json:"admissions_per_round_trip,omitempty"`
}

// govSetup is one setup: its replicas, its loads (one per replica, on the
// replica's key) and its redis-servers.
type govSetup struct {
	name     string
	prefix   string // its governance.redis_prefix
	bin      string // the junction binary, when not the one built
	extra    string // YAML appended to the replicas' config
	servers  []*redistest.Server
	replicas []*gateway
	ms       []*measurement

	elapsed     time.Duration
	junctionCPU time.Duration
	redisCPU    []time.Duration
	scriptUsec  int64   // µs the servers spent in scripts
	admitted    float64 // admissions sent to Redis, and
	roundTrips  float64 // the round trips that carried them
	cpuOK       bool
}

// runGovernanceLane runs the lane, prints it and writes it out.
func runGovernanceLane(ctx context.Context, s *settings) {
	rep, err := measureGovernance(ctx, s)
	if err != nil {
		fail(err)
	}
	rep.print(os.Stdout)
	out := s.out
	if out == defaultOut {
		out = "bench/results/governance-latest.json"
	}
	if out != "" {
		if err := writeJSON(out, rep); err != nil {
			fail(err)
		}
		fmt.Printf("\nresults written to %s\n", out)
	}
}

func measureGovernance(ctx context.Context, s *settings) (*govReport, error) {
	s.Seconds, s.WarmupS = s.Duration.Seconds(), s.Warmup.Seconds()
	s.Gateway = "child processes (junction serve), three per setup"
	const replicas = 3
	dir, err := os.MkdirTemp("", "junction-bench-gov-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if s.keep {
			progress("kept %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()
	upstream, stopFake, err := startFake(s.Chunks)
	if err != nil {
		return nil, err
	}
	defer stopFake()
	bin := s.bin
	if bin == "" {
		progress("building ./cmd/junction")
		if bin, err = buildJunction(ctx, dir); err != nil {
			return nil, err
		}
	}
	progress("starting a redis-server and a three-master Redis Cluster")
	one, err := redistest.StartServer()
	if err != nil {
		return nil, err
	}
	defer one.Stop()
	cluster, err := redistest.StartCluster(3)
	if err != nil {
		return nil, err
	}
	defer cluster.Stop()
	clusterURL := "redis://" + cluster.Addrs[0] + "?addr=" + strings.Join(cluster.Addrs[1:], "&addr=")
	redisYAML := fmt.Sprintf("governance:\n  redis_url: %q\n", "redis://"+one.Addr)
	clusterYAML := fmt.Sprintf("governance:\n  redis_url: %q\n  redis_cluster: true\n", clusterURL)
	const leases = "  leases: {scopes: [global]}\n"
	// The lane's keys are hot too (each takes a twelfth of the load):
	// leasing them as well leaves Redis the slices and the settlements.
	const hotLeases = "  leases: {scopes: [global, \"key:*\"]}\n"
	one1 := []*redistest.Server{one}
	// onRedis is a setup on Redis: backend's YAML, its own prefix, leases
	// (YAML, or "") and the rules.
	onRedis := func(name, prefix, backend, leases string, servers []*redistest.Server) *govSetup {
		return &govSetup{name: name, prefix: prefix, servers: servers,
			extra: backend + "  redis_prefix: " + prefix + "\n" + leases + govRules}
	}
	setups := []*govSetup{
		{name: "none"},
		{name: "memory", extra: "governance:\n" + govRules},
		onRedis("redis", "exact", redisYAML, "", one1),
		onRedis("redis+leases", "leased", redisYAML, leases, one1),
		onRedis("cluster", "exact", clusterYAML, "", cluster.Servers),
		onRedis("cluster+leases", "leased", clusterYAML, leases, cluster.Servers),
		onRedis("redis+hot", "hot", redisYAML, hotLeases, one1),
		onRedis("cluster+hot", "hot", clusterYAML, hotLeases, cluster.Servers),
	}
	if *governanceBaseline != "" {
		b, bc := onRedis("baseline", "baseline", redisYAML, "", one1), onRedis("baseline-cluster", "baseline", clusterYAML, "", cluster.Servers)
		b.bin, bc.bin = *governanceBaseline, *governanceBaseline
		setups = append(setups, b, bc)
	}
	defer func() {
		for _, st := range setups {
			for _, g := range st.replicas {
				g.stop()
			}
		}
	}()
	// Each replica's connections are spread over keysPerReplica keys, so
	// that on the cluster the keys' slots spread over the masters.
	const keysPerReplica = 4
	per := max(s.Concurrency/(replicas*keysPerReplica), 1)
	for _, st := range setups {
		st.redisCPU = make([]time.Duration, len(st.servers))
		st.cpuOK = true
		for i := range replicas {
			rdir := filepath.Join(dir, st.name, fmt.Sprint(i))
			if err := os.MkdirAll(rdir, 0o700); err != nil {
				return nil, err
			}
			b := bin
			if st.bin != "" {
				b = st.bin
			}
			g, err := startConfigured(ctx, b, rdir, s.GatewayProcs, func(addr, dataDir string) string {
				return govConfigYAML(addr, dataDir, upstream, st.extra)
			})
			if err != nil {
				return nil, fmt.Errorf("starting junction (%s, replica %d): %w", st.name, i, err)
			}
			st.replicas = append(st.replicas, g)
		}
	}
	// On the cluster, each setup's keys are placed evenly over the masters
	// (made until one lands where that holds), so that the masters' loads
	// compare from setup to setup: with a dozen keys placed by their names
	// alone, one master held six keys in one setup and two in the next.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs})
	defer cc.Close()
	// Warm every setup up, its replicas at once, on keys of each.
	for _, st := range setups {
		progress("%s: %d replicas, %d keys each at c=%d, %v warmup", st.name, replicas, keysPerReplica, per, s.Warmup)
		st.ms = make([]*measurement, replicas*keysPerReplica)
		pl := placement{perMaster: map[string]int{}}
		if len(st.servers) > 1 {
			pl.cluster, pl.prefix = cc, st.prefix
			pl.quota = (replicas*keysPerReplica + len(st.servers) - 1) / len(st.servers)
		}
		var wg sync.WaitGroup
		for i, g := range st.replicas {
			for k := range keysPerReplica {
				key, err := pl.key(ctx, g.URL)
				if err != nil {
					return nil, fmt.Errorf("%s replica %d: %w", st.name, i, err)
				}
				l := &load{chunks: s.Chunks, c: per}
				sc := scenario{Name: fmt.Sprintf("gov-%s-%d-%d", st.name, i, k), Via: "junction", URL: g.URL + "/v1/chat/completions",
					key: key, model: model}
				wg.Go(func() { st.ms[i*keysPerReplica+k] = l.start(ctx, sc, s.Warmup) })
			}
		}
		wg.Wait()
		if len(st.servers) > 1 {
			progress("%s: scopes per master after warmup: %s", st.name, scopesPerMaster(ctx, st.servers, st.prefix))
		}
	}
	slice := s.Duration / time.Duration(s.Rounds)
	for round := range s.Rounds {
		for k := range setups {
			st := setups[(k+round)%len(setups)]
			progress("%s: round %d of %d, %v", st.name, round+1, s.Rounds, slice)
			st.measure(ctx, slice)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	rep := &govReport{Date: time.Now().UTC().Format(time.RFC3339), Settings: s, Replicas: replicas,
		Machine: newReport(s).Machine}
	var base float64
	for _, st := range setups {
		r := st.result()
		rep.Results = append(rep.Results, r)
		if st.name == "redis" {
			base = r.RedisCeiling
		}
	}
	if base > 0 {
		rep.OverOneServer = map[string]float64{}
		for _, r := range rep.Results {
			if r.RedisCeiling > 0 && r.Setup != "redis" {
				rep.OverOneServer[r.Setup] = r.RedisCeiling / base
			}
		}
	}
	return rep, nil
}

// placement makes a setup's keys, at most quota of them on each master of
// the cluster (when cluster is set).
type placement struct {
	cluster   *redis.ClusterClient
	prefix    string // the setup's governance.redis_prefix
	quota     int
	perMaster map[string]int
}

// key makes a governed key on the replica at url and returns its secret;
// on the cluster, a key whose hashes land on a master with room.
func (pl *placement) key(ctx context.Context, url string) (string, error) {
	for range 200 {
		secret, id, err := createGovernedKey(ctx, url)
		if err != nil || pl.cluster == nil {
			return secret, err
		}
		// The key's hashes share the hash tag of its scope (key:ID).
		m, err := pl.cluster.MasterForKey(ctx, "{"+pl.prefix+":key:"+id+"}")
		if err != nil {
			return "", err
		}
		if addr := m.Options().Addr; pl.perMaster[addr] < pl.quota {
			pl.perMaster[addr]++
			return secret, nil
		}
	}
	return "", fmt.Errorf("no key of 200 landed on a master with fewer than %d keys", pl.quota)
}

// scopesPerMaster names, per server, the scopes whose hashes it holds
// under prefix ("global" and how many keys).
func scopesPerMaster(ctx context.Context, servers []*redistest.Server, prefix string) string {
	var out []string
	for _, srv := range servers {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		tags := map[string]bool{}
		iter := c.Scan(ctx, 0, "{"+prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			tag, _, _ := strings.Cut(strings.TrimPrefix(iter.Val(), "{"+prefix+":"), "}")
			tags[tag] = true
		}
		c.Close()
		keys, global := 0, ""
		for t := range tags {
			if t == "global" {
				global = "global and "
			} else if strings.HasPrefix(t, "key:") {
				keys++
			}
		}
		out = append(out, fmt.Sprintf("%s%d keys", global, keys))
	}
	return strings.Join(out, "; ")
}

// measure runs one slice on every replica of the setup at once, reading
// the replicas' and the redis-servers' CPU time around it.
func (st *govSetup) measure(ctx context.Context, d time.Duration) {
	// The counters are read outside the CPU readings, so that serving
	// /metrics and INFO does not count as the slice's work.
	admitted, trips := st.admissions()
	script0 := st.scriptTime(ctx)
	before := make([]time.Duration, len(st.servers))
	for i, srv := range st.servers {
		c, ok := processCPU(srv.Pid())
		before[i], st.cpuOK = c, st.cpuOK && ok
	}
	var junction0 time.Duration
	for _, g := range st.replicas {
		c, ok := processCPU(g.pid)
		junction0, st.cpuOK = junction0+c, st.cpuOK && ok
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, m := range st.ms {
		wg.Go(func() { m.measure(ctx, d, nil) })
	}
	wg.Wait()
	st.elapsed += time.Since(start)
	for _, g := range st.replicas {
		c, ok := processCPU(g.pid)
		st.junctionCPU += c
		st.cpuOK = st.cpuOK && ok
	}
	st.junctionCPU -= junction0
	for i, srv := range st.servers {
		c, ok := processCPU(srv.Pid())
		st.redisCPU[i] += c - before[i]
		st.cpuOK = st.cpuOK && ok
	}
	st.scriptUsec += st.scriptTime(ctx) - script0
	a, t := st.admissions()
	st.admitted += a - admitted
	st.roundTrips += t - trips
}

// scriptTime sums the µs the setup's redis-servers have spent in
// scripts.
func (st *govSetup) scriptTime(ctx context.Context) (usec int64) {
	for _, srv := range st.servers {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		stats, err := redistest.CommandStats(ctx, c)
		c.Close()
		if err != nil {
			st.cpuOK = false
		}
		usec += stats["evalsha"].Usec + stats["eval"].Usec
	}
	return usec
}

// admissions reads the replicas' counts of admissions sent to Redis and
// of the round trips that carried them.
func (st *govSetup) admissions() (admitted, trips float64) {
	for _, g := range st.replicas {
		m := readMetrics(g.URL, "junction_governance_admitted_total", "junction_governance_admit_batches_total")
		admitted += m["junction_governance_admitted_total"]
		trips += m["junction_governance_admit_batches_total"]
	}
	return admitted, trips
}

// result sums the setup's replicas.
func (st *govSetup) result() GovResult {
	r := GovResult{Setup: st.name}
	var lat []int64
	for _, m := range st.ms {
		for _, w := range m.workers {
			lat = append(lat, w.lat...)
		}
		one := m.result()
		r.Requests += one.Requests
		r.Errors += one.Errors
		if r.FirstError == "" {
			r.FirstError = one.FirstError
		}
	}
	r.Latency = summarise(lat)
	if st.roundTrips > 0 {
		r.PerRoundTrip = round2(st.admitted / st.roundTrips)
	}
	if r.Requests == 0 {
		return r
	}
	r.RPS = float64(r.Requests) / st.elapsed.Seconds()
	r.JunctionCPU = us(int64(st.junctionCPU)) / float64(r.Requests)
	if len(st.servers) > 0 && st.cpuOK {
		var busiest float64
		for _, c := range st.redisCPU {
			per := us(int64(c)) / float64(r.Requests)
			r.RedisNodes = append(r.RedisNodes, per)
			r.RedisCPU += per
			busiest = max(busiest, per)
		}
		if busiest > 0 {
			r.RedisCeiling = 1e6 / busiest
		}
		r.ScriptCPU = round(float64(st.scriptUsec) / float64(r.Requests))
	}
	return r
}

func (r *govReport) print(out io.Writer) {
	s := r.Settings
	fmt.Fprintf(out, "\nGovernance: %d Junction replicas per setup, %d connections in all, %v measured in %d rounds; %d CPUs (%s)\n",
		r.Replicas, max(s.Concurrency/r.Replicas, 1)*r.Replicas, s.Duration, s.Rounds, r.Machine.CPUs, r.Machine.CPUModel)
	fmt.Fprintf(out, "rules: rate limits on key:* and global, hard budgets on global and key:*\n\n")
	fmt.Fprintf(out, "%-14s %9s %7s %9s %9s %15s %12s %8s %9s  %s\n", "setup", "req/s", "errors", "p50", "p99", "junction µs/req", "redis µs/req", "scripts", "per trip", "redis ceiling req/s (per node µs/req)")
	for _, g := range r.Results {
		redis, ceiling, trip, scripts := "-", "-", "-", "-"
		if g.PerRoundTrip > 0 {
			trip = fmt.Sprintf("%.2f", g.PerRoundTrip)
		}
		if g.RedisCPU > 0 {
			redis, scripts = fmt.Sprintf("%.1f", g.RedisCPU), fmt.Sprintf("%.1f", g.ScriptCPU)
			nodes := make([]string, len(g.RedisNodes))
			for i, n := range g.RedisNodes {
				nodes[i] = fmt.Sprintf("%.1f", n)
			}
			ceiling = fmt.Sprintf("%.0f (%s)", g.RedisCeiling, strings.Join(nodes, ", "))
		}
		fmt.Fprintf(out, "%-14s %9.0f %7d %9s %9s %15.0f %12s %8s %9s  %s\n", g.Setup, g.RPS, g.Errors, dur(g.Latency.P50), dur(g.Latency.P99),
			g.JunctionCPU, redis, scripts, trip, ceiling)
		if g.FirstError != "" {
			fmt.Fprintf(out, "         first error: %s\n", g.FirstError)
		}
	}
	if len(r.OverOneServer) > 0 {
		fmt.Fprintf(out, "\nredis ceiling over one server's (redis):")
		for _, g := range r.Results {
			if x, ok := r.OverOneServer[g.Setup]; ok {
				fmt.Fprintf(out, " %s %.2f×", g.Setup, x)
			}
		}
		fmt.Fprintln(out)
	}
}

// writeJSON saves v as indented JSON.
func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
