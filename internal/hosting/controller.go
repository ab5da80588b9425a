package hosting

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/junctionhq/junction/internal/hostrt"
)

// Options configures a Controller.
type Options struct {
	// Self is this Junction's executable, run for models whose server
	// command is "junction".
	Self string
	// GPUs are the GPU indices instances may be given.
	GPUs []int
	// HealthInterval and StopGrace tune the runtime (zero: its defaults).
	HealthInterval, StopGrace time.Duration
	// MeterInterval is how often running instance time is written to the
	// ledger (default one minute).
	MeterInterval time.Duration
	// KeepInstancesOnClose leaves model servers running when Junction
	// stops, for the next start to adopt; by default Close stops them.
	KeepInstancesOnClose bool
	// Client calls model servers; nil means a pooled client sized for
	// loopback.
	Client *http.Client
	// DrainTimeout bounds how long an instance leaving service waits for
	// the calls it holds before it is stopped (default 60 s, SageMaker's
	// invocation timeout).
	DrainTimeout time.Duration
	// AlarmCheck is how often an update's alarms are evaluated (default
	// 100 ms).
	AlarmCheck time.Duration
	Log        *slog.Logger
}

// Artifacts turns a model's artifact URI into a local directory.
type Artifacts interface {
	Resolve(ctx context.Context, uri string) (string, error)
}

// Controller keeps endpoints at their desired state and serves their
// invocations.
type Controller struct {
	store  *Store
	rt     hostrt.Runtime
	blobs  Artifacts
	types  InstanceTypes
	opts   Options
	self   string
	log    *slog.Logger
	client *http.Client
	gpus   gpuPool

	mu  sync.Mutex                           // serialises changes to eps
	eps atomic.Pointer[map[string]*endpoint] // read lock-free on the invocation path

	liveMu  sync.Mutex
	live    map[*instance]struct{} // every started instance, for metering
	backlog []Segment              // stopped instances' segments not yet written

	adoptMu sync.Mutex
	adopted map[string][]hostrt.Instance // endpoint/variant/hash -> leftovers to reuse

	shadowSem chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// endpoint is one endpoint's desired state and live fleets.
type endpoint struct {
	name string
	mu   sync.Mutex // guards row, active, pending and op
	row  endpointRow
	// active serves traffic; pending is the fleet an update brings up.
	active, pending *fleet
	// op cancels the lifecycle operation in progress.
	op     context.CancelFunc
	opDone chan struct{}
	route  atomic.Pointer[routing]
}

// routing is what the invocation path reads: the fleets and the share of
// traffic the pending one takes.
type routing struct {
	active, pending *fleet
	share           float64
}

// New returns a Controller; Start brings back stored endpoints.
func New(store *Store, rt hostrt.Runtime, blobs Artifacts, types InstanceTypes, opts Options) *Controller {
	c := &Controller{store: store, rt: rt, blobs: blobs, types: types, opts: opts, self: opts.Self, log: opts.Log,
		client: opts.Client, live: map[*instance]struct{}{}, adopted: map[string][]hostrt.Instance{},
		shadowSem: make(chan struct{}, 64)}
	if c.opts.MeterInterval <= 0 {
		c.opts.MeterInterval = time.Minute
	}
	if c.opts.StopGrace <= 0 {
		c.opts.StopGrace = 30 * time.Second
	}
	if c.opts.DrainTimeout <= 0 {
		c.opts.DrainTimeout = 60 * time.Second
	}
	if c.opts.AlarmCheck <= 0 {
		c.opts.AlarmCheck = 100 * time.Millisecond
	}
	if c.client == nil {
		c.client = newClient()
	}
	c.gpus.free = append([]int(nil), opts.GPUs...)
	empty := map[string]*endpoint{}
	c.eps.Store(&empty)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// Types is the instance catalog.
func (c *Controller) Types() InstanceTypes { return c.types }

// Store is the controller's resource store.
func (c *Controller) Store() *Store { return c.store }

// Start adopts or stops model servers a previous run left, then brings
// every stored endpoint back: InService and Creating endpoints are
// (re)started on their config; an update that a restart interrupted is
// rolled back to the config it was leaving.
func (c *Controller) Start(ctx context.Context) error {
	rows, err := c.store.endpoints(ctx)
	if err != nil {
		return err
	}
	want := map[string]int{} // endpoint/variant/hash -> instances wanted
	fleets := map[string]*fleet{}
	for _, row := range rows {
		if row.Status == StatusFailed || row.Status == StatusDeleting {
			continue
		}
		cfg, err := c.store.Config(ctx, row.Config)
		if err != nil {
			continue
		}
		f, err := c.newFleet(ctx, cfg)
		if err != nil {
			continue
		}
		applyOverrides(f, row.Overrides)
		fleets[row.Name] = f
		for _, v := range f.all() {
			want[adoptKey(row.Name, v)] += int(v.count.Load())
		}
	}
	found, err := c.rt.Recover(ctx, func(s hostrt.Spec) bool {
		k := s.Endpoint + "/" + s.Variant + "/" + s.ConfigHash
		if want[k] > 0 {
			want[k]--
			return true
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("recover model servers: %w", err)
	}
	c.adoptMu.Lock()
	for _, in := range found {
		k := recoveredKey(in)
		c.adopted[k] = append(c.adopted[k], in)
	}
	c.adoptMu.Unlock()

	for _, row := range rows {
		ep := &endpoint{name: row.Name, row: *row}
		c.put(ep)
		switch row.Status {
		case StatusDeleting:
			c.store.deleteEndpoint(ctx, row.Name)
			c.remove(row.Name)
			continue
		case StatusFailed:
			continue
		}
		if row.PendingConfig != "" {
			c.event(row.Name, fmt.Sprintf("update to config %s was interrupted by a restart; staying on config %s", row.PendingConfig, row.Config))
			ep.row.PendingConfig = ""
		}
		f := fleets[row.Name]
		if f == nil {
			c.setStatus(ep, StatusFailed, fmt.Sprintf("config %s or one of its models no longer exists", row.Config))
			continue
		}
		ep.row.Status = StatusCreating
		c.setStatus(ep, StatusCreating, "")
		c.run(ep, func(ctx context.Context) { c.bringUp(ctx, ep, f, "restarted") })
	}
	// Leftovers no endpoint claimed are stopped after the endpoints have
	// taken what they need.
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.meterLoop()
	}()
	return nil
}

func adoptKey(endpoint string, v *variant) string {
	return endpoint + "/" + v.spec.Name + "/" + v.hash
}

func recoveredKey(in hostrt.Instance) string {
	s := in.Spec()
	return s.Endpoint + "/" + s.Variant + "/" + s.ConfigHash
}

// takeAdopted returns the recovered instances that match a variant,
// wrapped for the controller and observed from now on.
func (c *Controller) takeAdopted(endpoint string, v *variant) []*instance {
	c.adoptMu.Lock()
	k := adoptKey(endpoint, v)
	found := c.adopted[k]
	delete(c.adopted, k)
	c.adoptMu.Unlock()
	var out []*instance
	for _, hi := range found {
		in := &instance{Instance: hi, v: v, endpoint: endpoint}
		c.adoptTracking(in)
		out = append(out, in)
	}
	return out
}

func (c *Controller) endpoints() map[string]*endpoint { return *c.eps.Load() }

func (c *Controller) put(ep *endpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[string]*endpoint{}
	for k, v := range c.endpoints() {
		next[k] = v
	}
	next[ep.name] = ep
	c.eps.Store(&next)
}

func (c *Controller) remove(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[string]*endpoint{}
	for k, v := range c.endpoints() {
		if k != name {
			next[k] = v
		}
	}
	c.eps.Store(&next)
}

// run starts a lifecycle operation on an endpoint in the background.
func (c *Controller) run(ep *endpoint, op func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(c.ctx)
	done := make(chan struct{})
	ep.mu.Lock()
	ep.op, ep.opDone = cancel, done
	ep.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(done)
		defer cancel()
		op(ctx)
	}()
}

// event appends a line to an endpoint's history.
func (c *Controller) event(endpoint, msg string) {
	if err := c.store.addEvent(context.Background(), endpoint, msg); err != nil && c.log != nil {
		c.log.Warn("hosting: event not stored", "endpoint", endpoint, "err", err)
	}
	if c.log != nil {
		c.log.Info("hosting: "+msg, "endpoint", endpoint)
	}
}

// setStatus stores an endpoint's status and failure reason.
func (c *Controller) setStatus(ep *endpoint, status, reason string) {
	ep.mu.Lock()
	ep.row.Status, ep.row.FailureReason, ep.row.UpdatedAt = status, reason, time.Now().UTC()
	row := ep.row
	ep.mu.Unlock()
	if err := c.store.saveEndpoint(context.Background(), &row); err != nil && c.log != nil {
		c.log.Error("hosting: endpoint state not stored", "endpoint", ep.name, "err", err)
	}
}

// CreateModel validates and stores a model.
func (c *Controller) CreateModel(ctx context.Context, m *Model) error {
	if err := m.Validate(); err != nil {
		return Validation("%s", err)
	}
	return c.store.CreateModel(ctx, m)
}

// UpdateModel changes a model no endpoint serves. A running endpoint's
// models stay as they are: make a new model and endpoint config and
// update the endpoint to it, so that traffic moves safely.
func (c *Controller) UpdateModel(ctx context.Context, m *Model) error {
	if err := m.Validate(); err != nil {
		return Validation("%s", err)
	}
	if ep := c.servedBy(m.Name); ep != "" {
		return conflict(ErrInUse, "model %q is served by endpoint %q; create a new model and update the endpoint to a config that uses it", m.Name, ep)
	}
	return c.store.UpdateModel(ctx, m)
}

// UpdateConfig changes an endpoint config no endpoint uses.
func (c *Controller) UpdateConfig(ctx context.Context, cfg *EndpointConfig) error {
	if err := cfg.Validate(c.types.Known); err != nil {
		return Validation("%s", err)
	}
	if ep, err := c.store.configInUse(ctx, cfg.Name); err != nil {
		return err
	} else if ep != "" {
		return conflict(ErrInUse, "endpoint config %q is used by endpoint %q; create a new config and update the endpoint to it", cfg.Name, ep)
	}
	for _, v := range append(append([]Variant(nil), cfg.Variants...), cfg.Shadow...) {
		if _, err := c.store.Model(ctx, v.Model); err != nil {
			return Validation("variant %s: model %q does not exist; create it first", v.Name, v.Model)
		}
	}
	return c.store.UpdateConfig(ctx, cfg)
}

// servedBy names a live endpoint one of whose fleets runs model, or "".
func (c *Controller) servedBy(model string) string {
	for _, ep := range c.endpoints() {
		ep.mu.Lock()
		fleets := []*fleet{ep.active, ep.pending}
		ep.mu.Unlock()
		for _, f := range fleets {
			if f == nil {
				continue
			}
			for _, v := range f.all() {
				if v.model.Name == model {
					return ep.name
				}
			}
		}
	}
	return ""
}

// DeleteModel removes a model no endpoint config of a live endpoint uses.
func (c *Controller) DeleteModel(ctx context.Context, name string) error {
	if ep := c.servedBy(name); ep != "" {
		return conflict(ErrInUse, "model %q is served by endpoint %q; delete or update the endpoint first", name, ep)
	}
	return c.store.DeleteModel(ctx, name)
}

// CreateConfig validates and stores an endpoint config.
func (c *Controller) CreateConfig(ctx context.Context, cfg *EndpointConfig) error {
	if err := cfg.Validate(c.types.Known); err != nil {
		return Validation("%s", err)
	}
	for _, v := range append(append([]Variant(nil), cfg.Variants...), cfg.Shadow...) {
		if _, err := c.store.Model(ctx, v.Model); err != nil {
			return Validation("variant %s: model %q does not exist; create it first", v.Name, v.Model)
		}
	}
	return c.store.CreateConfig(ctx, cfg)
}

// DeleteConfig removes an endpoint config no endpoint uses.
func (c *Controller) DeleteConfig(ctx context.Context, name string) error {
	if ep, err := c.store.configInUse(ctx, name); err != nil {
		return err
	} else if ep != "" {
		return conflict(ErrInUse, "endpoint config %q is used by endpoint %q", name, ep)
	}
	return c.store.DeleteConfig(ctx, name)
}

// CreateEndpoint starts an endpoint on a config. It returns at once with
// the endpoint Creating; it turns InService when every instance is ready,
// or Failed with the reason.
func (c *Controller) CreateEndpoint(ctx context.Context, name, config string) (*Endpoint, error) {
	if e := validName("name", name); e != "" {
		return nil, Validation("%s", e)
	}
	cfg, err := c.store.Config(ctx, config)
	if err != nil {
		return nil, Validation("endpoint config %q does not exist; create it first", config)
	}
	f, err := c.newFleet(ctx, cfg)
	if err != nil {
		return nil, Validation("%s", err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	ep := &endpoint{name: name, row: endpointRow{Name: name, Config: config, Status: StatusCreating, CreatedAt: now, UpdatedAt: now}}
	c.mu.Lock()
	_, exists := c.endpoints()[name]
	c.mu.Unlock()
	if exists {
		return nil, conflict(ErrExists, "endpoint %q already exists", name)
	}
	if err := c.store.insertEndpoint(ctx, &ep.row); err != nil {
		return nil, err
	}
	c.put(ep)
	c.event(name, fmt.Sprintf("creating on config %s", config))
	c.run(ep, func(ctx context.Context) { c.bringUp(ctx, ep, f, "created") })
	return c.describe(ep), nil
}

// bringUp starts a fleet and puts the endpoint in service on it.
func (c *Controller) bringUp(ctx context.Context, ep *endpoint, f *fleet, verb string) {
	start := time.Now()
	if err := c.startFleet(ctx, ep.name, f); err != nil {
		c.stopFleet(f)
		if ctx.Err() != nil {
			return // deleted or shutting down
		}
		c.setStatus(ep, StatusFailed, err.Error())
		c.event(ep.name, "failed: "+err.Error())
		return
	}
	ep.mu.Lock()
	ep.active = f
	ep.mu.Unlock()
	ep.route.Store(&routing{active: f})
	c.setStatus(ep, StatusInService, "")
	c.event(ep.name, fmt.Sprintf("%s: InService on config %s after %s", verb, f.config.Name, time.Since(start).Round(time.Millisecond)))
}

// DeleteEndpoint stops an endpoint's instances and removes it; an
// operation in progress is cancelled.
func (c *Controller) DeleteEndpoint(ctx context.Context, name string) error {
	ep := c.endpoints()[name]
	if ep == nil {
		return notFound("endpoint", name)
	}
	ep.mu.Lock()
	if ep.row.Status == StatusDeleting {
		ep.mu.Unlock()
		return nil
	}
	cancel, done := ep.op, ep.opDone
	ep.mu.Unlock()
	c.setStatus(ep, StatusDeleting, "")
	c.event(name, "deleting")
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if cancel != nil {
			cancel()
			<-done
		}
		ep.route.Store(nil)
		ep.mu.Lock()
		active, pending := ep.active, ep.pending
		ep.mu.Unlock()
		c.stopFleet(pending)
		c.stopFleet(active)
		c.store.deleteEndpoint(context.Background(), name)
		c.remove(name)
		c.event(name, "deleted")
	}()
	return nil
}

// Endpoint describes an endpoint.
func (c *Controller) Endpoint(name string) (*Endpoint, error) {
	ep := c.endpoints()[name]
	if ep == nil {
		return nil, notFound("endpoint", name)
	}
	return c.describe(ep), nil
}

// Endpoints describes every endpoint, by name.
func (c *Controller) Endpoints() []*Endpoint {
	eps := c.endpoints()
	out := make([]*Endpoint, 0, len(eps))
	for _, k := range sortedKeys(eps) {
		out = append(out, c.describe(eps[k]))
	}
	return out
}

// LogPaths returns the log files of an endpoint's instances by instance
// id.
func (c *Controller) LogPaths(name string) (map[string]string, error) {
	ep := c.endpoints()[name]
	if ep == nil {
		return nil, notFound("endpoint", name)
	}
	out := map[string]string{}
	ep.mu.Lock()
	fleets := []*fleet{ep.active, ep.pending}
	ep.mu.Unlock()
	for _, f := range fleets {
		if f == nil {
			continue
		}
		for _, v := range f.all() {
			for _, in := range v.instances() {
				out[in.ID()] = in.LogPath()
			}
		}
	}
	return out, nil
}

func (c *Controller) describe(ep *endpoint) *Endpoint {
	ep.mu.Lock()
	row := ep.row
	active, pending := ep.active, ep.pending
	ep.mu.Unlock()
	out := &Endpoint{Name: row.Name, Config: row.Config, Status: row.Status, FailureReason: row.FailureReason,
		PendingConfig: row.PendingConfig, LastDeployment: row.Deployment, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt,
		Variants: []VariantSummary{}}
	share := 0.0
	if r := ep.route.Load(); r != nil {
		share = r.share
	}
	add := func(f *fleet, fleetShare float64) {
		if f == nil {
			return
		}
		for _, v := range f.all() {
			inv, errs, p99 := v.stats.snapshot()
			vs := VariantSummary{Name: v.spec.Name, Config: v.config, Model: v.model.Name, InstanceType: v.spec.InstanceType,
				Shadow: v.shadow, Weight: v.weight(), DesiredInstanceCount: int(v.count.Load()),
				Invocations: inv, Errors: errs, P99MS: p99, Instances: []InstanceSummary{}}
			if total := f.total(); !v.shadow && total > 0 {
				vs.TrafficShare = fleetShare * v.weight() / total
			}
			for _, in := range v.instances() {
				st := in.Status()
				if in.ready.Load() {
					vs.CurrentInstanceCount++
				}
				vs.Instances = append(vs.Instances, InstanceSummary{ID: st.ID, State: string(st.State), Addr: st.Addr, PID: st.PID,
					Restarts: st.Restarts, LastError: st.LastError, Outstanding: in.outstanding.Load(), Since: st.Since, Adopted: st.Adopted})
			}
			out.Variants = append(out.Variants, vs)
		}
	}
	if ep.route.Load() != nil {
		add(active, 1-share)
	} else {
		add(active, 0)
	}
	add(pending, share)
	sort.SliceStable(out.Variants, func(i, j int) bool {
		return out.Variants[i].Config == row.Config && out.Variants[j].Config != row.Config
	})
	return out
}

// Close stops the controller: operations in progress are cancelled, the
// last instance time is metered, and model servers are stopped (or left
// for the next start to adopt, with KeepInstancesOnClose).
func (c *Controller) Close(ctx context.Context) error {
	c.cancel()
	c.wg.Wait()
	c.meterNow()
	// The runtime lets go of its state directory either way, so that the
	// next Junction can recover what is left.
	defer func() {
		if d, ok := c.rt.(interface{ Detach() error }); ok {
			d.Detach()
		}
	}()
	if c.opts.KeepInstancesOnClose {
		return nil
	}
	var wg sync.WaitGroup
	for _, ep := range c.endpoints() {
		ep.mu.Lock()
		fleets := []*fleet{ep.active, ep.pending}
		ep.mu.Unlock()
		for _, f := range fleets {
			wg.Add(1)
			go func() { defer wg.Done(); c.stopFleet(f) }()
		}
	}
	wg.Wait()
	c.adoptMu.Lock()
	left := c.adopted
	c.adopted = map[string][]hostrt.Instance{}
	c.adoptMu.Unlock()
	for _, list := range left {
		for _, in := range list {
			in.Stop(ctx)
		}
	}
	return nil
}

// errBusy says an endpoint cannot take an operation now.
func errBusy(ep *Endpoint) error {
	return conflict(ErrInUse, "endpoint %q is %s; wait until it is InService", ep.Name, ep.Status)
}
