package hosting

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/junctionhq/junction/internal/hosting/batcher"
	"github.com/junctionhq/junction/internal/hostrt"
	"github.com/junctionhq/junction/internal/router/balance"
)

// fleet is the instances that serve one endpoint config.
type fleet struct {
	config   *EndpointConfig
	variants []*variant // production
	shadows  []*variant
	random   bool
}

// total is the sum of the production variants' weights.
func (f *fleet) total() float64 {
	var t float64
	for _, v := range f.variants {
		t += v.weight()
	}
	return t
}

// variant is one variant's instances and live statistics.
type variant struct {
	spec   Variant
	model  *Model
	config string
	shadow bool
	hash   string
	itype  InstanceType
	random bool

	insts atomic.Pointer[[]*instance]
	mu    sync.Mutex // serialises changes to insts
	stats stats
	// weightBits (float64 bits) and count are the variant's weight and
	// instance count now: the config's, or what UpdateWeights set.
	weightBits atomic.Uint64
	count      atomic.Int64
	// scale is its autoscaling, hold and serverless state (scaling.go).
	scale variantScale
	// mme is a multi-model variant's loaded models (mme.go).
	mme atomic.Pointer[multiModel]
}

// startupTimeout is how long an instance of the variant may take to
// become ready: its model's startup_timeout_seconds, else the runtime's
// default.
func (v *variant) startupTimeout() time.Duration {
	if s := v.model.Server.StartupTimeoutSeconds; s > 0 {
		return time.Duration(s) * time.Second
	}
	return hostrt.DefaultStartupTimeout
}

func (v *variant) weight() float64 { return math.Float64frombits(v.weightBits.Load()) }

func (v *variant) setWeight(w float64) { v.weightBits.Store(math.Float64bits(w)) }

// instance is one model-server process.
type instance struct {
	hostrt.Instance
	v           *variant
	endpoint    string
	ready       atomic.Bool
	draining    atomic.Bool            // out of rotation for good; see drain.go
	base        atomic.Pointer[string] // "http://127.0.0.1:PORT"
	outstanding atomic.Int64
	chat        atomic.Pointer[chatClient]      // openai servers: the adapter for the current address
	last        atomic.Pointer[hostrt.Status]   // the last status observed
	batch       atomic.Pointer[batcher.Batcher] // batching models: made on first use (batch.go)

	clock clock // its metering (meter.go)
}

func (v *variant) instances() []*instance {
	if p := v.insts.Load(); p != nil {
		return *p
	}
	return nil
}

func (v *variant) setInstances(list []*instance) { v.insts.Store(&list) }

// ready counts the variant's ready instances.
func (v *variant) readyCount() int {
	n := 0
	for _, in := range v.instances() {
		if in.ready.Load() {
			n++
		}
	}
	return n
}

// pick chooses an instance among the ready ones not draining and not in
// skip (those already tried): the one with the fewest outstanding
// requests, random among ties so that equal instances share the load, or
// (routing random) any of them at random. It is the router's least-score
// pick (balance.Least).
func (v *variant) pick(skip []*instance) *instance {
	list := v.instances()
	ok := func(i int) bool {
		in := list[i]
		return in.ready.Load() && !in.draining.Load() && !tried(skip, in)
	}
	score := func(i int) float64 { return float64(list[i].outstanding.Load()) }
	if v.random {
		score = func(int) float64 { return 0 } // all tie: uniform
	}
	if i := balance.Least(len(list), ok, score, rand.IntN); i >= 0 {
		return list[i]
	}
	return nil
}

func tried(skip []*instance, in *instance) bool {
	for _, s := range skip {
		if s == in {
			return true
		}
	}
	return false
}

// pickVariant chooses a production variant by weight among those with a
// ready instance (the router's weighted pick, balance.Weighted); with
// none ready, the first (the caller reports that nothing is ready).
func (f *fleet) pickVariant() *variant {
	if len(f.variants) == 1 {
		return f.variants[0]
	}
	i := balance.Weighted(len(f.variants), func(i int) float64 {
		if v := f.variants[i]; v.readyCount() > 0 {
			return v.weight()
		}
		return 0
	}, func(total float64) float64 { return rand.Float64() * total })
	if i < 0 {
		return f.variants[0]
	}
	return f.variants[i]
}

func (f *fleet) variant(name string) *variant {
	for _, v := range f.variants {
		if v.spec.Name == name {
			return v
		}
	}
	return nil
}

func (f *fleet) all() []*variant {
	return append(append([]*variant(nil), f.variants...), f.shadows...)
}

func (f *fleet) variantNames() string {
	names := make([]string, len(f.variants))
	for i, v := range f.variants {
		names[i] = v.spec.Name
	}
	return strings.Join(names, ", ")
}

// specHash fingerprints what an instance runs, so a later Junction can
// tell whether an instance it finds still matches.
func specHash(config string, v Variant, m *Model) string {
	b, _ := json.Marshal(struct {
		Config, Variant, Type string
		Artifact              string
		Server                Server
	}{config, v.Name, v.InstanceType, m.Artifact, m.Server})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// newFleet resolves an endpoint config's models.
func (a *api) newFleet(ctx context.Context, cfg *EndpointConfig) (*fleet, error) {
	f := &fleet{config: cfg, random: cfg.Routing == RoutingRandom}
	add := func(v Variant, shadow bool) error {
		m, err := a.store.Model(ctx, v.Model)
		if err != nil {
			return fmt.Errorf("variant %s: %w", v.Name, err)
		}
		it, ok := a.types[v.InstanceType]
		if v.Serverless != nil {
			it, ok = serverlessInstance(v.Serverless), true
		}
		if !ok {
			return fmt.Errorf("variant %s: instance type %q is not in the catalog", v.Name, v.InstanceType)
		}
		vv := &variant{spec: v, model: m, config: cfg.Name, shadow: shadow, hash: specHash(cfg.Name, v, m), itype: it, random: f.random}
		vv.stats.init()
		vv.setWeight(v.Weight)
		vv.count.Store(int64(v.InstanceCount))
		if shadow {
			f.shadows = append(f.shadows, vv)
		} else {
			f.variants = append(f.variants, vv)
		}
		return nil
	}
	for _, v := range cfg.Variants {
		if err := add(v, false); err != nil {
			return nil, err
		}
	}
	for _, v := range cfg.Shadow {
		if err := add(v, true); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// start brings a fleet up to its instance counts (adopting leftovers
// first) and waits until every instance is ready, or fails with the
// reason the first one did not come up.
func (c *reconciler) startFleet(ctx context.Context, endpoint string, f *fleet) error {
	for _, v := range f.all() {
		dir, err := c.blobs.Resolve(ctx, v.model.Artifact)
		if err != nil {
			return fmt.Errorf("variant %s: model %s: artifact: %w", v.spec.Name, v.model.Name, err)
		}
		list := c.takeAdopted(endpoint, v)
		for len(list) < int(v.count.Load()) {
			in, err := c.startInstance(ctx, endpoint, v, dir)
			if err != nil {
				for _, in := range list {
					c.stopInstance(in)
				}
				return fmt.Errorf("variant %s: %w", v.spec.Name, err)
			}
			list = append(list, in)
		}
		v.setInstances(list)
	}
	for _, v := range f.all() {
		timeout := v.startupTimeout()
		for _, in := range v.instances() {
			wctx, cancel := context.WithTimeout(ctx, timeout)
			err := in.serving(wctx)
			cancel()
			if err != nil {
				st := in.Status()
				reason := fmt.Sprintf("variant %s: instance %s did not become ready within %s", v.spec.Name, in.ID(), timeout)
				if ctx.Err() != nil {
					reason = fmt.Sprintf("variant %s: start cancelled", v.spec.Name)
				}
				if st.LastError != "" {
					reason += ": " + st.LastError
				}
				if tail := logTail(in, 3); tail != "" {
					reason += "; last log lines: " + tail
				}
				return fmt.Errorf("%s", reason)
			}
		}
	}
	return nil
}

// startInstance starts one model-server process for a variant.
func (c *reconciler) startInstance(ctx context.Context, endpoint string, v *variant, modelDir string) (*instance, error) {
	var suffix [3]byte
	crand.Read(suffix[:])
	id := fmt.Sprintf("%s.%s.%s.%s", endpoint, v.config, v.spec.Name, hex.EncodeToString(suffix[:]))
	in := &instance{v: v, endpoint: endpoint}
	cmd := v.model.Server.Command
	if cmd == "junction" {
		cmd = c.self
	}
	env := map[string]string{}
	for k, val := range v.model.Server.Env {
		env[k] = val
	}
	if v.model.Server.Type == ServerOpenAI {
		if _, set := env["JUNCTION_MODEL_SERVER_MODE"]; !set {
			env["JUNCTION_MODEL_SERVER_MODE"] = "openai"
		}
	}
	spec := hostrt.Spec{
		ID: id, Endpoint: endpoint, Variant: v.spec.Name, ConfigHash: v.hash, ServerType: v.model.Server.Type,
		Command: cmd, Args: v.model.Server.Args, Env: env, ModelDir: modelDir, GPUCount: v.itype.GPUs,
		CPUs: v.itype.CPUs, MemoryMB: v.itype.MemoryMB, Container: v.model.Server.Container,
		StartupTimeout: v.startupTimeout(),
		HealthInterval: c.opts.HealthInterval, StopGrace: c.opts.StopGrace,
		OnChange: func(st hostrt.Status) { c.observe(in, st) },
	}
	m, fromReady := c.rt.(hostrt.ReadyMetering)
	fromReady = fromReady && m.MetersFromReady()
	c.meter.starting(in, fromReady)
	inst, err := c.rt.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	in.Instance = inst
	c.meter.started(in, fromReady)
	return in, nil
}

// observe follows an instance's state: only a Ready instance takes
// invocations; a restarted one comes back on a new address. It is the
// runtime's callback, so it returns at once: an OpenAI-compatible server
// on a new address is ready only once the effects worker has learnt its
// model id, and history lines are written there too.
func (c *reconciler) observe(in *instance, st hostrt.Status) {
	in.last.Store(&st)
	ready := st.State == hostrt.StateReady && st.Addr != "" && !in.draining.Load()
	if ready {
		base := "http://" + st.Addr
		if old := in.base.Load(); old == nil || *old != base {
			in.base.Store(&base)
		}
		if in.v.model.Server.Type == ServerOpenAI {
			if cc := in.chat.Load(); cc == nil || cc.base != base {
				ready = false
				c.later(func() {
					if b := in.base.Load(); b == nil || *b != base {
						return // moved on meanwhile; its own task follows
					}
					in.chat.Store(c.plane.newChatClient(in, base))
					c.observe(in, *in.last.Load())
				})
			}
		}
	}
	was := in.ready.Swap(ready)
	if was != ready {
		c.routesChanged()
	}
	if ready && !was {
		c.meter.ready(in, st.Since)
	}
	if was != ready && c.log != nil {
		c.log.Info("hosting: instance state", "instance", st.ID, "state", string(st.State), "restarts", st.Restarts, "last_error", st.LastError)
	}
	if was && !ready && st.State != hostrt.StateStopping && st.State != hostrt.StateStopped {
		c.eventLater(in.endpoint, fmt.Sprintf("instance %s of variant %s is %s: %s; draining it", st.ID, in.v.spec.Name, st.State, st.LastError))
	}
	if !was && ready {
		c.plane.readied(in)
	}
	if !was && ready && st.Restarts > 0 {
		c.eventLater(in.endpoint, fmt.Sprintf("instance %s of variant %s is ready again after %d restart(s)", st.ID, in.v.spec.Name, st.Restarts))
	}
}

// serving waits until the instance is first ready and takes calls: its
// server answers its readiness probe and, for an OpenAI-compatible
// server, the effects worker has learnt the model id it answers to.
func (in *instance) serving(ctx context.Context) error {
	if err := in.Ready(ctx); err != nil {
		return err
	}
	if in.v.model.Server.Type != ServerOpenAI {
		return nil
	}
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for !in.ready.Load() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// stopInstance drains an instance, stops it and meters its last
// stretch.
func (c *reconciler) stopInstance(in *instance) {
	c.drain(in)
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.StopGrace+10*time.Second)
	defer cancel()
	if err := in.Stop(ctx); err != nil && c.log != nil {
		c.log.Warn("hosting: stop instance", "instance", in.ID(), "err", err)
	}
	c.meter.stopped(in)
}

// stopFleet stops every instance of a fleet in parallel.
func (c *reconciler) stopFleet(f *fleet) {
	if f == nil {
		return
	}
	var wg sync.WaitGroup
	for _, v := range f.all() {
		for _, in := range v.instances() {
			wg.Add(1)
			go func() { defer wg.Done(); c.stopInstance(in) }()
		}
	}
	wg.Wait()
}

// logTail returns the last n non-empty lines of an instance's log,
// joined by " | ".
func logTail(in *instance, n int) string {
	r, err := in.Logs(8192)
	if err != nil {
		return ""
	}
	b, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		return ""
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// stats are a variant's invocation counts and recent latencies.
type stats struct {
	mu          sync.Mutex
	invocations int64
	errors      int64
	lat         []float64 // ring of recent latencies, ms
	next        int
	full        bool
	// typicalMs is a moving average of successful calls' latencies, ms
	// (0 until one succeeds): what a call ahead of another is expected
	// to take (Controller.Wait).
	typicalMs float64
}

const statsWindow = 2048

// typicalWeight is the weight of the newest latency in stats.typicalMs:
// about the last ten calls count.
const typicalWeight = 0.2

// typical returns the moving average of successful calls' latencies.
func (s *stats) typical() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(s.typicalMs * float64(time.Millisecond))
}

func (s *stats) init() { s.lat = make([]float64, statsWindow) }

func (s *stats) record(ms float64, failed bool) {
	s.mu.Lock()
	s.invocations++
	if failed {
		s.errors++
	} else if s.typicalMs == 0 {
		s.typicalMs = ms
	} else {
		s.typicalMs += (ms - s.typicalMs) * typicalWeight
	}
	s.lat[s.next] = ms
	s.next++
	if s.next == len(s.lat) {
		s.next, s.full = 0, true
	}
	s.mu.Unlock()
}

// snapshot returns the counts and the 99th-percentile latency of the
// recent window.
func (s *stats) snapshot() (inv, errs int64, p99 float64) {
	s.mu.Lock()
	n := s.next
	if s.full {
		n = len(s.lat)
	}
	cp := append([]float64(nil), s.lat[:n]...)
	inv, errs = s.invocations, s.errors
	s.mu.Unlock()
	if len(cp) == 0 {
		return inv, errs, 0
	}
	sort.Float64s(cp)
	i := int(float64(len(cp))*0.99+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(cp) {
		i = len(cp) - 1
	}
	return inv, errs, cp[i]
}
