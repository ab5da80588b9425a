package hosting

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/junctionhq/junction/internal/hostrt"
)

// Options configures a Controller. A field left zero takes its default,
// named below; the defaults are set in one place, withDefaults.
type Options struct {
	// Self is this Junction's executable, run for models whose server
	// command is "junction".
	Self string
	// HealthInterval and StopGrace tune the runtime (zero: its defaults,
	// hostrt.DefaultHealthInterval and hostrt.DefaultStopGrace).
	HealthInterval, StopGrace time.Duration
	// MeterInterval is how often running instance time is written to the
	// ledger (DefaultMeterInterval).
	MeterInterval time.Duration
	// KeepInstancesOnClose leaves model servers running when Junction
	// stops, for the next start to adopt; by default Close stops them.
	KeepInstancesOnClose bool
	// Client calls model servers; nil means a pooled client sized for
	// loopback.
	Client *http.Client
	// DrainTimeout bounds how long an instance leaving service waits for
	// the calls it holds before it is stopped (DefaultInvocationTimeout).
	DrainTimeout time.Duration
	// LeaseTTL is how long the hosting lease lasts unrenewed: a replica
	// that dies is replaced as reconciler within it (DefaultLeaseTTL).
	LeaseTTL time.Duration
	// Resync is how often the reconciler looks for specs changed by other
	// replicas (DefaultResync); every endpoint is reconciled anew every 30
	// resyncs.
	Resync time.Duration
	// ReplicaID names this replica in the lease; empty means host name,
	// process id and a random suffix.
	ReplicaID string
	// Lease is the hosting lease; nil means a row in the store's
	// hosting_lease table, held as ReplicaID for LeaseTTL.
	Lease Lease
	// AlarmCheck is how often an update's alarms are evaluated
	// (DefaultAlarmCheck).
	AlarmCheck time.Duration
	// HoldQueue and HoldTimeout bound the calls an endpoint holds while
	// it has no ready instance, and their wait (DefaultHoldQueue,
	// DefaultHoldTimeout).
	HoldQueue   int
	HoldTimeout time.Duration
	// ServerlessUSDPerGBSecond prices serverless compute (the catalog's).
	ServerlessUSDPerGBSecond float64
	// Capture records the invocations of endpoints whose config has
	// data_capture; nil captures nothing.
	Capture Capturer
	Log     *slog.Logger
}

// The defaults of Options.
const (
	// DefaultMeterInterval is how often instance time is written.
	DefaultMeterInterval = time.Minute
	// DefaultInvocationTimeout is SageMaker's: how long a model server
	// has to answer an invocation, and so how long an instance leaving
	// service waits for the calls it holds.
	DefaultInvocationTimeout = 60 * time.Second
	// DefaultLeaseTTL is how long the hosting lease lasts unrenewed.
	DefaultLeaseTTL = 5 * time.Second
	// DefaultResync is how often the reconciler looks for changed specs.
	DefaultResync = time.Second
	// DefaultAlarmCheck is how often an update's alarms are evaluated.
	DefaultAlarmCheck = 100 * time.Millisecond
	// DefaultHoldQueue is how many calls an endpoint holds at most.
	DefaultHoldQueue = 1024
	// DefaultHoldTimeout is how long a held call waits for an instance.
	DefaultHoldTimeout = 30 * time.Second
)

// withDefaults returns o with its zero fields set to their defaults.
func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.MeterInterval, DefaultMeterInterval)
	def(&o.StopGrace, hostrt.DefaultStopGrace)
	def(&o.DrainTimeout, DefaultInvocationTimeout)
	def(&o.AlarmCheck, DefaultAlarmCheck)
	def(&o.LeaseTTL, DefaultLeaseTTL)
	def(&o.Resync, DefaultResync)
	def(&o.HoldTimeout, DefaultHoldTimeout)
	if o.HoldQueue <= 0 {
		o.HoldQueue = DefaultHoldQueue
	}
	return o
}

// Artifacts turns a model's artifact URI into a local directory.
type Artifacts interface {
	Resolve(ctx context.Context, uri string) (string, error)
}

// Controller is hosting: it owns the parts, each with one job, and its
// method set is theirs. The api (api.go) validates and stores specs and
// describes endpoints; the reconciler (reconcile.go) converges the world
// on the specs while this replica holds the hosting lease — a work queue
// hands each endpoint whose spec changed (or is due for a resync) to
// reconcile, which starts and stops instances, shifts traffic, rolls back
// and adopts — and publishes the routing snapshot (routes.go); the data
// plane (plane.go) serves invocations and chat calls from that snapshot;
// the meter (meter.go) writes instance time. Other replicas store specs,
// describe endpoints from the store and route by the holder's published
// routing.
type Controller struct {
	*api
	*plane
	*reconciler
}

// reconciler is the part of hosting that acts on the world: it takes part
// in the hosting lease and, holding it, converges each endpoint on its
// spec, runs the instances, publishes the routing snapshot and meters.
type reconciler struct {
	// routes is the routing snapshot it publishes.
	*routes
	// api is asked for history lines and fleets resolved from configs;
	// plane is told when an instance is ready (held calls go).
	api   *api
	plane *plane

	store *Store
	rt    hostrt.Runtime
	blobs Artifacts
	types InstanceTypes
	opts  Options
	self  string
	log   *slog.Logger
	lease Lease

	// publish asks the holder's publishLoop to write routing now.
	publish chan struct{}
	// effects runs what instance changes set off off the runtime's
	// callback (effects.go).
	effects *effects

	// meter writes instance time to the store (meter.go).
	meter *meter

	adoptMu sync.Mutex
	adopted map[string][]hostrt.Instance // endpoint/variant/hash -> leftovers to reuse

	// own is this replica's term as the reconciler; nil while another
	// replica holds the lease.
	ownMu sync.Mutex
	own   *term

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// endpoint is one endpoint's live fleets and its last read spec and
// status.
type endpoint struct {
	name string
	mu   sync.Mutex // guards spec, status, active and pending
	spec endpointSpec
	// status is what the reconciler last stored.
	status endpointStatus
	// active serves traffic; pending is the fleet an update brings up.
	active, pending *fleet
	route           atomic.Pointer[routing]
	// hold is the calls waiting for a ready instance (hold.go).
	hold holdQueue
}

// routing is what the invocation path reads: the fleets and the share of
// traffic the pending one takes.
type routing struct {
	active, pending *fleet
	share           float64
}

// New returns a Controller; Start takes part in the lease and, holding
// it, brings back stored endpoints.
func New(store *Store, rt hostrt.Runtime, blobs Artifacts, types InstanceTypes, opts Options) *Controller {
	opts = opts.withDefaults()
	c := &reconciler{store: store, rt: rt, blobs: blobs, types: types, opts: opts, self: opts.Self, log: opts.Log,
		adopted: map[string][]hostrt.Instance{}, routes: newRoutes()}
	client := opts.Client
	if client == nil {
		client = newClient()
	}
	c.meter = newMeter(store, types, c.opts.MeterInterval, opts.Log)
	c.lease = opts.Lease
	if c.lease == nil {
		c.lease = newLease(store.DB, opts.ReplicaID, c.opts.LeaseTTL)
	}
	c.publish = make(chan struct{}, 1)
	c.effects = newEffects()
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.api = &api{routes: c.routes, store: store, types: types, log: opts.Log, changed: c.changed}
	c.plane = &plane{routes: c.routes, store: store, blobs: blobs, client: client, opts: opts, log: opts.Log, meter: c.meter,
		spec: c.api, shadowSem: make(chan struct{}, 64), ctx: c.ctx, wg: &c.wg}
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.effects.run(c.ctx.Done()) }()
	return &Controller{api: c.api, plane: c.plane, reconciler: c}
}
