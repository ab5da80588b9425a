package hosting

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/junctionhq/junction/internal/hostrt"
)

// Every replica routes. The replica that holds the hosting lease runs the
// instances; it publishes each endpoint's routing — its fleets, their
// variants' weights, each instance's address and whether it is ready or
// draining, and the share of traffic an update's new fleet takes — in the
// endpoint's stored status, written only when it changed. Every other
// replica reads the published routing every Resync and sends invocations
// and chat calls to those instances itself, with its own least-outstanding
// balancing. Only the holder meters instance time: a replica routes to an
// instance it does not run, but never meters it.

// routeState is an endpoint's routing as the holder publishes it.
type routeState struct {
	Active  *fleetState `json:"active,omitempty"`
	Pending *fleetState `json:"pending,omitempty"`
	// Share is the part of the traffic the pending fleet takes.
	Share float64 `json:"share,omitempty"`
}

// fleetState is one fleet's routing: its config and its variants.
type fleetState struct {
	Config   string         `json:"config"`
	Variants []variantState `json:"variants"`
}

// variantState is one variant's weight and instances.
type variantState struct {
	Name      string          `json:"name"`
	Weight    float64         `json:"weight"`
	Instances []instanceState `json:"instances"`
}

// instanceState is one instance as the other replicas route to it and
// describe it.
type instanceState struct {
	ID       string    `json:"id"`
	Addr     string    `json:"addr,omitempty"`
	Ready    bool      `json:"ready,omitempty"`
	Draining bool      `json:"draining,omitempty"`
	State    string    `json:"state"`
	PID      int       `json:"pid,omitempty"`
	Restarts int       `json:"restarts,omitempty"`
	Error    string    `json:"error,omitempty"`
	Since    time.Time `json:"since"`
	Adopted  bool      `json:"adopted,omitempty"`
}

// storeTimeout bounds one store write or read of the hosting loops, so
// that a stuck database delays them rather than stopping them.
const storeTimeout = 10 * time.Second

// storeContext bounds a store call made on no request's behalf.
func storeContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), storeTimeout)
}

// routeStateOf is the routing an endpoint of this replica publishes; ""
// when it takes no invocations.
func routeStateOf(ep *endpoint) string {
	r := ep.route.Load()
	if r == nil {
		return ""
	}
	rs := routeState{Active: fleetStateOf(r.active)}
	if r.pending != nil {
		rs.Pending, rs.Share = fleetStateOf(r.pending), r.share
	}
	b, _ := json.Marshal(rs)
	return string(b)
}

func fleetStateOf(f *fleet) *fleetState {
	fs := &fleetState{Config: f.config.Name}
	for _, v := range f.all() {
		vs := variantState{Name: v.spec.Name, Weight: v.weight(), Instances: []instanceState{}}
		for _, in := range v.instances() {
			st := in.Status()
			is := instanceState{ID: st.ID, Ready: in.ready.Load(), Draining: in.draining.Load(), State: string(st.State),
				PID: st.PID, Restarts: st.Restarts, Error: st.LastError, Since: st.Since, Adopted: st.Adopted}
			if b := in.base.Load(); b != nil {
				is.Addr = *b
			}
			vs.Instances = append(vs.Instances, is)
		}
		fs.Variants = append(fs.Variants, vs)
	}
	return fs
}

// routesChanged asks the holder to publish its routing now rather than at
// the next tick: an instance became ready, failed or began to drain.
func (c *reconciler) routesChanged() {
	select {
	case c.publish <- struct{}{}:
	default:
	}
}

// publishLoop writes, for each endpoint this term runs, its routing when
// it differs from what was last written, at once when asked and every
// Resync otherwise.
func (c *reconciler) publishLoop(t *term) {
	tick := time.NewTicker(c.opts.Resync)
	defer tick.Stop()
	written := map[string]string{}
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		case <-c.publish:
		}
		eps := c.endpoints()
		for name, ep := range eps {
			rs := routeStateOf(ep)
			if last, ok := written[name]; ok && last == rs {
				continue
			}
			ctx, cancel := context.WithTimeout(t.ctx, storeTimeout)
			err := c.store.saveRouting(ctx, name, rs)
			cancel()
			if err != nil {
				if c.log != nil && t.ctx.Err() == nil {
					c.log.Warn("hosting: routing not published; will retry", "endpoint", name, "err", err)
				}
				continue
			}
			written[name] = rs
		}
		for name := range written {
			if eps[name] == nil {
				delete(written, name)
			}
		}
	}
}

// followLoop keeps, while this replica does not hold the lease, its view
// of the endpoints the holder runs: every Resync it reads the published
// routing and rebuilds an endpoint's fleets when it changed. seen is what
// was built already (follow's first pass, made by Start).
func (c *reconciler) followLoop(seen map[string]string) {
	tick := time.NewTicker(c.opts.Resync)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
		}
		if c.Holder() {
			clear(seen)
			continue
		}
		c.followOnce(seen)
	}
}

// followOnce reads the published routing and rebuilds the endpoints whose
// status or routing differ from seen (endpoint -> status and routing last
// built).
func (c *reconciler) followOnce(seen map[string]string) {
	ctx, cancel := context.WithTimeout(c.ctx, storeTimeout)
	defer cancel()
	rows, err := c.store.routings(ctx)
	if err != nil {
		if c.log != nil && c.ctx.Err() == nil {
			c.log.Warn("hosting: routing not read", "err", err)
		}
		return
	}
	old := c.followed()
	next := make(map[string]*endpoint, len(rows))
	for _, row := range rows {
		key := row.status + "\x00" + row.routing
		if ep := old[row.name]; ep != nil && seen[row.name] == key {
			next[row.name] = ep
			continue
		}
		ep, err := c.follow(ctx, row, old[row.name])
		if err != nil {
			if c.log != nil {
				c.log.Warn("hosting: routing of another replica not followed", "endpoint", row.name, "err", err)
			}
			continue
		}
		next[row.name] = ep
		seen[row.name] = key
	}
	for name := range seen {
		if next[name] == nil {
			delete(seen, name)
		}
	}
	c.ownMu.Lock()
	if c.own == nil {
		c.remote.Store(&next)
	}
	c.ownMu.Unlock()
}

// follow builds (or updates, keeping its instances and their outstanding
// counts) a followed endpoint from the routing its holder published.
func (c *reconciler) follow(ctx context.Context, row routingRow, old *endpoint) (*endpoint, error) {
	ep := &endpoint{name: row.name, status: endpointStatus{Status: row.status}}
	if old != nil {
		ep = old
		ep.mu.Lock()
		ep.status.Status = row.status
		ep.mu.Unlock()
	}
	if row.routing == "" {
		ep.route.Store(nil)
		return ep, nil
	}
	var rs routeState
	if err := json.Unmarshal([]byte(row.routing), &rs); err != nil {
		return nil, err
	}
	if rs.Active == nil {
		return nil, errors.New("the published routing has no active fleet")
	}
	ep.mu.Lock()
	oldActive, oldPending := ep.active, ep.pending
	ep.mu.Unlock()
	active, err := c.followFleet(ctx, row.name, rs.Active, oldActive, oldPending)
	if err != nil {
		return nil, err
	}
	var pending *fleet
	if rs.Pending != nil {
		if pending, err = c.followFleet(ctx, row.name, rs.Pending, oldPending, oldActive); err != nil {
			return nil, err
		}
	}
	ep.mu.Lock()
	ep.active, ep.pending = active, pending
	ep.mu.Unlock()
	ep.route.Store(&routing{active: active, pending: pending, share: rs.Share})
	return ep, nil
}

// followFleet is the fleet a published fleetState describes: one of the
// fleets followed before when its config is the same, else a new one
// resolved from the stored config.
func (c *reconciler) followFleet(ctx context.Context, endpoint string, fs *fleetState, before ...*fleet) (*fleet, error) {
	var f *fleet
	for _, b := range before {
		if b != nil && b.config.Name == fs.Config {
			f = b
			break
		}
	}
	if f == nil {
		cfg, err := c.store.Config(ctx, fs.Config)
		if err != nil {
			return nil, err
		}
		if f, err = c.api.newFleet(ctx, cfg); err != nil {
			return nil, err
		}
	}
	for _, vs := range fs.Variants {
		var v *variant
		for _, cand := range f.all() {
			if cand.spec.Name == vs.Name {
				v = cand
			}
		}
		if v == nil {
			continue
		}
		v.setWeight(vs.Weight)
		v.count.Store(int64(len(vs.Instances)))
		v.setInstances(c.followInstances(endpoint, v, vs.Instances))
	}
	return f, nil
}

// followInstances are a variant's instances as published, reusing the
// ones already followed (their outstanding counts stay).
func (c *reconciler) followInstances(endpoint string, v *variant, states []instanceState) []*instance {
	had := map[string]*instance{}
	for _, in := range v.instances() {
		had[in.ID()] = in
	}
	list := make([]*instance, 0, len(states))
	for _, s := range states {
		in := had[s.ID]
		if in == nil {
			in = &instance{v: v, endpoint: endpoint, Instance: &remoteInstance{}}
		}
		if r, ok := in.Instance.(*remoteInstance); ok {
			r.s.Store(&s)
		}
		if s.Addr != "" {
			if old := in.base.Load(); old == nil || *old != s.Addr {
				addr := s.Addr
				in.base.Store(&addr)
				if v.model.Server.Type == ServerOpenAI {
					in.chat.Store(c.plane.newChatClient(in, addr))
				}
			}
		}
		in.draining.Store(s.Draining)
		in.ready.Store(s.Ready && s.Addr != "" && !s.Draining)
		list = append(list, in)
	}
	return list
}

// remoteInstance is an instance another replica runs, as it last
// published it: this replica routes to it and describes it, and nothing
// more. Its state is replaced whole as new routing is read.
type remoteInstance struct{ s atomic.Pointer[instanceState] }

var errRemote = errors.New("the instance runs on the replica that holds the hosting lease; ask that replica")

func (r *remoteInstance) state() *instanceState {
	if s := r.s.Load(); s != nil {
		return s
	}
	return &instanceState{}
}

func (r *remoteInstance) ID() string { return r.state().ID }

func (r *remoteInstance) Spec() hostrt.Spec { return hostrt.Spec{ID: r.state().ID} }

func (r *remoteInstance) Status() hostrt.Status {
	s := r.state()
	return hostrt.Status{ID: s.ID, State: hostrt.State(s.State), Addr: strings.TrimPrefix(s.Addr, "http://"), PID: s.PID,
		Restarts: s.Restarts, LastError: s.Error, Since: s.Since, Adopted: s.Adopted}
}

func (r *remoteInstance) Ready(context.Context) error { return errRemote }

func (r *remoteInstance) LogPath() string { return "" }

func (r *remoteInstance) Logs(int64) (io.ReadCloser, error) { return nil, errRemote }

func (r *remoteInstance) Stop(context.Context) error { return nil }

func (r *remoteInstance) SetOnChange(func(hostrt.Status)) {}
