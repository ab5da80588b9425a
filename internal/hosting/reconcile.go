package hosting

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/junctionhq/junction/internal/hostrt"
)

// term is one stretch of this replica holding the lease: its work queue
// and the goroutines that serve it.
type term struct {
	ctx    context.Context
	cancel context.CancelFunc
	queue  *workQueue
	wg     sync.WaitGroup
}

// Start joins the hosting lease. Holding it (always, on a single
// replica), it recovers the model servers a previous run left and
// reconciles every stored endpoint before returning; otherwise it waits
// in the background for the lease to be free.
func (c *reconciler) Start(ctx context.Context) error {
	held, err := c.lease.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("hosting lease: %w", err)
	}
	seen := map[string]string{}
	if held {
		if err := c.lead(ctx); err != nil {
			return err
		}
	} else {
		// Route to the holder's instances from the first request on,
		// not from the first resync.
		c.followOnce(seen)
	}
	c.wg.Add(3)
	go func() { defer c.wg.Done(); c.leaseLoop() }()
	go func() { defer c.wg.Done(); c.meter.run(c.ctx) }()
	go func() { defer c.wg.Done(); c.followLoop(seen) }()
	return nil
}

// lead starts a term as reconciler: model servers left running that the
// stored endpoints still want are adopted, then every endpoint is queued.
func (c *reconciler) lead(ctx context.Context) error {
	specs, err := c.store.specs(ctx)
	if err != nil {
		return err
	}
	want := map[string]int{} // endpoint/variant/hash -> instances wanted
	for _, sp := range specs {
		if sp.Deleting {
			continue
		}
		st, err := c.store.status(ctx, sp.Name)
		if err != nil {
			return err
		}
		f, err := c.fleetFor(ctx, sp, st.ActiveConfig)
		if err != nil {
			continue
		}
		for _, v := range f.all() {
			want[adoptKey(sp.Name, v)] += int(v.count.Load())
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

	t := &term{queue: newWorkQueue()}
	t.ctx, t.cancel = context.WithCancel(c.ctx)
	c.ownMu.Lock()
	c.own = t
	none := map[string]*endpoint{}
	c.remote.Store(&none) // from now on this replica runs what it routes to
	c.ownMu.Unlock()
	for _, sp := range specs {
		// Until its fleet is back, an endpoint this replica has just
		// taken over is Creating, not what the last holder stored.
		if !sp.Deleting {
			st, err := c.store.status(ctx, sp.Name)
			if err != nil {
				return err
			}
			ep := &endpoint{name: sp.Name, status: *st}
			c.put(ep)
			if st.Status != StatusFailed {
				c.setStatus(ep, func(st *endpointStatus) { st.Status = StatusCreating })
			}
		}
		t.queue.add(sp.Name)
	}
	t.wg.Add(3)
	go func() { defer t.wg.Done(); c.dispatch(t) }()
	go func() { defer t.wg.Done(); c.resyncLoop(t) }()
	go func() { defer t.wg.Done(); c.publishLoop(t) }()
	return nil
}

// abdicate ends this replica's term: reconciling stops, and the model
// servers it ran are stopped for the next holder to replace.
func (c *reconciler) abdicate() {
	c.ownMu.Lock()
	t := c.own
	c.own = nil
	c.ownMu.Unlock()
	if t == nil {
		return
	}
	t.cancel()
	t.queue.close()
	t.wg.Wait()
	c.stopAll(context.Background(), false)
	empty := map[string]*endpoint{}
	c.mu.Lock()
	c.eps.Store(&empty)
	c.mu.Unlock()
}

// changed tells the reconciler that an endpoint's spec changed: a run in
// progress (a long update) is interrupted and the endpoint reconciled
// again at once. On a replica that does not hold the lease, the holder
// finds the change at its next resync.
func (c *reconciler) changed(name string) {
	c.ownMu.Lock()
	t := c.own
	c.ownMu.Unlock()
	if t == nil {
		return
	}
	t.queue.interrupt(name)
	t.queue.add(name)
}

// dispatch hands each queued endpoint to its own reconcile run; the queue
// never hands out one endpoint twice at once. A run that fails is retried
// after a second.
func (c *reconciler) dispatch(t *term) {
	var runs sync.WaitGroup
	defer runs.Wait()
	for {
		ctx, cancel := context.WithCancel(t.ctx)
		name, ok := t.queue.get(cancel)
		if !ok {
			cancel()
			return
		}
		runs.Add(1)
		go func() {
			defer runs.Done()
			defer t.queue.done(name)
			defer cancel()
			if err := c.reconcile(ctx, name); err != nil && t.ctx.Err() == nil {
				if c.log != nil {
					c.log.Warn("hosting: reconcile failed; retrying", "endpoint", name, "err", err)
				}
				time.AfterFunc(time.Second, func() { t.queue.add(name) })
			}
		}()
	}
}

// resyncLoop queues endpoints whose spec generation is ahead of what this
// replica last saw (changed through another replica), and every endpoint
// now and then.
func (c *reconciler) resyncLoop(t *term) {
	tick := time.NewTicker(c.opts.Resync)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
		specs, err := c.store.specs(t.ctx)
		if err != nil {
			continue
		}
		eps := c.endpoints()
		for _, sp := range specs {
			ep := eps[sp.Name]
			if ep == nil || n%30 == 0 {
				t.queue.add(sp.Name)
				continue
			}
			ep.mu.Lock()
			seen := ep.spec.Generation
			ep.mu.Unlock()
			if sp.Generation != seen {
				t.queue.add(sp.Name)
			}
		}
	}
}

// reconcile converges one endpoint on its spec: it brings up the fleet
// the endpoint should run, moves it to a changed config by the update
// policy, applies changed weights and instance counts, and stops and
// forgets a deleted endpoint. It returns an error only for what a retry
// may mend (the store); an endpoint that cannot reach its spec has its
// status say why.
func (c *reconciler) reconcile(ctx context.Context, name string) error {
	sp, err := c.store.spec(ctx, name)
	if err != nil {
		return err
	}
	ep := c.endpoints()[name]
	if sp == nil || sp.Deleting {
		if ep != nil || sp != nil {
			c.teardown(name, ep)
		}
		return nil
	}
	if ep == nil {
		st, err := c.store.status(ctx, name)
		if err != nil {
			return err
		}
		ep = &endpoint{name: name, status: *st}
		c.put(ep)
	}
	ep.mu.Lock()
	ep.spec = *sp
	st := ep.status
	active := ep.active
	ep.mu.Unlock()

	if active == nil {
		if st.Status == StatusFailed && st.ObservedGeneration == sp.Generation {
			return nil // failed on this spec; a new one is needed
		}
		config := st.ActiveConfig
		if config == "" || st.Status == StatusFailed {
			config = sp.Config
		}
		if !c.bringUp(ctx, ep, sp, config) {
			return nil
		}
	}
	ep.mu.Lock()
	st = ep.status
	activeConfig := ep.active.config.Name
	ep.mu.Unlock()
	switch {
	case st.ObservedGeneration == sp.Generation:
		return nil
	case sp.Config != activeConfig:
		c.update(ctx, ep, sp)
	default:
		c.applyCapacities(ctx, ep, sp)
	}
	return nil
}

// fleetFor resolves the fleet an endpoint runs on config: the config's
// shape, with the spec's capacities when config is the spec's.
func (c *reconciler) fleetFor(ctx context.Context, sp *endpointSpec, config string) (*fleet, error) {
	if config == "" {
		config = sp.Config
	}
	cfg, err := c.store.Config(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("config %s or one of its models no longer exists", config)
	}
	f, err := c.api.newFleet(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if config == sp.Config {
		applyOverrides(f, sp.Capacities)
	}
	return f, nil
}

// bringUp starts an endpoint's fleet on config and puts it in service;
// it reports whether it did.
func (c *reconciler) bringUp(ctx context.Context, ep *endpoint, sp *endpointSpec, config string) bool {
	start := time.Now()
	ep.mu.Lock()
	verb := "restarted"
	if ep.status.ActiveConfig == "" {
		verb = "created"
	}
	interrupted := ep.status.PendingConfig
	ep.mu.Unlock()
	if verb == "created" {
		c.api.event(ep.name, fmt.Sprintf("creating on config %s", config))
	} else if interrupted != "" {
		c.api.event(ep.name, fmt.Sprintf("update to config %s was interrupted by a restart; back on config %s first", interrupted, config))
	}
	c.setStatus(ep, func(st *endpointStatus) { st.Status, st.FailureReason, st.PendingConfig = StatusCreating, "", "" })
	f, err := c.fleetFor(ctx, sp, config)
	if err == nil {
		if err = c.startFleet(ctx, ep.name, f); err != nil {
			c.stopFleet(f)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return false // deleted, superseded or shutting down
		}
		c.setStatus(ep, func(st *endpointStatus) {
			st.Status, st.FailureReason, st.ObservedGeneration = StatusFailed, err.Error(), sp.Generation
		})
		c.api.event(ep.name, "failed: "+err.Error())
		return false
	}
	ep.mu.Lock()
	ep.active = f
	ep.mu.Unlock()
	ep.route.Store(&routing{active: f})
	c.setStatus(ep, func(st *endpointStatus) {
		st.Status, st.ActiveConfig = StatusInService, config
		if config == sp.Config {
			st.ObservedGeneration = sp.Generation
		}
	})
	c.api.event(ep.name, fmt.Sprintf("%s: InService on config %s after %s", verb, config, time.Since(start).Round(time.Millisecond)))
	return true
}

// teardown stops a deleted endpoint's fleets and forgets it.
func (c *reconciler) teardown(name string, ep *endpoint) {
	if ep != nil {
		ep.route.Store(nil)
		ep.mu.Lock()
		active, pending := ep.active, ep.pending
		ep.mu.Unlock()
		c.stopFleet(pending)
		c.stopFleet(active)
	}
	ctx, cancel := storeContext()
	defer cancel()
	if err := c.store.deleteEndpoint(ctx, name); err != nil && c.log != nil {
		c.log.Error("hosting: deleted endpoint not forgotten", "endpoint", name, "err", err)
	}
	c.remove(name)
	c.api.event(name, "deleted")
}

// setStatus changes an endpoint's status and stores it when it changed.
func (c *reconciler) setStatus(ep *endpoint, change func(*endpointStatus)) {
	ep.mu.Lock()
	before := ep.status
	change(&ep.status)
	if ep.status == before {
		ep.mu.Unlock()
		return
	}
	ep.status.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	st := ep.status
	ep.mu.Unlock()
	ctx, cancel := storeContext()
	defer cancel()
	if err := c.store.saveStatus(ctx, ep.name, &st); err != nil && c.log != nil {
		c.log.Error("hosting: endpoint status not stored", "endpoint", ep.name, "err", err)
	}
}

// stopAll stops every fleet this replica runs, or leaves them for the
// next start to adopt with KeepInstancesOnClose, and lets go of
// recovered leftovers no endpoint took.
func (c *reconciler) stopAll(ctx context.Context, keep bool) {
	if keep {
		return
	}
	{
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
	}
	c.adoptMu.Lock()
	left := c.adopted
	c.adopted = map[string][]hostrt.Instance{}
	c.adoptMu.Unlock()
	for _, list := range left {
		for _, in := range list {
			in.Stop(ctx)
		}
	}
}

// Close stops the controller: runs in progress are interrupted (an update
// is left for the next start to converge), the last instance time is
// metered, model servers are stopped (or left for the next start to
// adopt, with KeepInstancesOnClose) and the lease is given up.
func (c *reconciler) Close(ctx context.Context) error {
	c.ownMu.Lock()
	t := c.own
	c.ownMu.Unlock()
	c.cancel()
	if t != nil {
		t.queue.close()
		t.wg.Wait()
	}
	c.wg.Wait()
	c.meter.tick()
	// The runtime lets go of its state directory either way, so that the
	// next Junction can recover what is left.
	defer c.rt.Detach()
	c.stopAll(ctx, c.opts.KeepInstancesOnClose)
	if t != nil {
		c.lease.Release()
	}
	return nil
}
