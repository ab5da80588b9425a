package hosting

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// CreateEndpoint stores a new endpoint's spec and returns it Creating;
// the reconciler starts its fleet and turns it InService when every
// instance is ready, or Failed with the reason.
func (a *api) CreateEndpoint(ctx context.Context, name, config string) (*Endpoint, error) {
	ctx, cancel := specContext(ctx)
	defer cancel()
	if e := validName("name", name); e != "" {
		return nil, Validation("%s", e)
	}
	cfg, err := a.store.Config(ctx, config)
	if err != nil {
		return nil, Validation("endpoint config %q does not exist; create it first", config)
	}
	if _, err := a.newFleet(ctx, cfg); err != nil {
		return nil, Validation("%s", err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := a.store.insertSpec(ctx, &endpointSpec{Name: name, Config: config, CreatedAt: now, UpdatedAt: now}); err != nil {
		return nil, err
	}
	a.event(name, fmt.Sprintf("create asked on config %s", config))
	a.changed(name)
	return a.Endpoint(name)
}

// DeleteEndpoint asks for an endpoint to be stopped and forgotten; an
// update in progress is interrupted.
func (a *api) DeleteEndpoint(ctx context.Context, name string) error {
	ctx, cancel := specContext(ctx)
	defer cancel()
	sp, err := a.store.spec(ctx, name)
	if err != nil {
		return err
	}
	if sp == nil {
		return notFound("endpoint", name)
	}
	if sp.Deleting {
		return nil
	}
	if _, err := a.store.changeSpec(ctx, name, func(sp *endpointSpec, _ *endpointStatus) error {
		sp.Deleting = true
		return nil
	}); err != nil {
		return err
	}
	a.event(name, "deleting")
	a.changed(name)
	return nil
}

// Endpoint describes an endpoint: its spec and status as stored, and the
// live fleets when this replica runs them.
func (a *api) Endpoint(name string) (*Endpoint, error) {
	ctx, cancel := storeContext()
	defer cancel()
	sp, err := a.store.spec(ctx, name)
	if err != nil {
		return nil, err
	}
	if sp == nil {
		return nil, notFound("endpoint", name)
	}
	st, err := a.store.status(ctx, name)
	if err != nil {
		return nil, err
	}
	return a.describe(sp, st, a.lookup(name)), nil
}

// Endpoints describes every endpoint, by name.
func (a *api) Endpoints() []*Endpoint {
	ctx, cancel := storeContext()
	defer cancel()
	specs, err := a.store.specs(ctx)
	if err != nil {
		if a.log != nil {
			a.log.Error("hosting: endpoints not read", "err", err)
		}
		return []*Endpoint{}
	}
	eps := a.routable()
	out := make([]*Endpoint, 0, len(specs))
	for _, sp := range specs {
		st, err := a.store.status(ctx, sp.Name)
		if err != nil {
			continue
		}
		out = append(out, a.describe(sp, st, eps[sp.Name]))
	}
	return out
}

// describe puts an endpoint's spec, status and live fleets (ep, nil on a
// replica that does not run them) in the shape clients see. Between a
// change of the spec and its reconciliation, an endpoint in service shows
// as Updating. An endpoint this replica cannot route to yet (just
// restarted, or not yet followed) shows as Creating, whatever was stored:
// InService promises that an invocation through this replica is served.
func (a *api) describe(sp *endpointSpec, st *endpointStatus, ep *endpoint) *Endpoint {
	out := &Endpoint{Name: sp.Name, Config: st.ActiveConfig, Status: st.Status, FailureReason: st.FailureReason,
		PendingConfig: st.PendingConfig, LastDeployment: sp.Deployment, Generation: sp.Generation, ObservedGeneration: st.ObservedGeneration,
		CreatedAt: sp.CreatedAt, UpdatedAt: sp.UpdatedAt, Variants: []VariantSummary{}}
	if out.Config == "" {
		out.Config = sp.Config
	}
	if st.UpdatedAt.After(out.UpdatedAt) {
		out.UpdatedAt = st.UpdatedAt
	}
	switch {
	case sp.Deleting:
		out.Status = StatusDeleting
	case sp.Generation != st.ObservedGeneration && (st.Status == StatusInService || st.Status == StatusUpdating):
		out.Status = StatusUpdating
		out.PendingConfig = ""
		if sp.Config != out.Config {
			out.PendingConfig = sp.Config
		}
	}
	if (out.Status == StatusInService || out.Status == StatusUpdating) && (ep == nil || ep.route.Load() == nil) {
		out.Status = StatusCreating
	}
	if ep == nil {
		return out
	}
	ep.mu.Lock()
	active, pending := ep.active, ep.pending
	ep.mu.Unlock()
	share := 0.0
	r := ep.route.Load()
	if r != nil {
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
			if vc, ok := sp.Capacities[v.spec.Name]; ok && v.config == sp.Config && vc.InstanceCount != nil {
				vs.DesiredInstanceCount = *vc.InstanceCount
			}
			if total := f.total(); !v.shadow && total > 0 {
				vs.TrafficShare = fleetShare * v.weight() / total
			}
			for _, in := range v.instances() {
				s := in.Status()
				if in.ready.Load() {
					vs.CurrentInstanceCount++
				}
				vs.Instances = append(vs.Instances, InstanceSummary{ID: s.ID, State: string(s.State), Addr: s.Addr, PID: s.PID,
					Restarts: s.Restarts, LastError: s.LastError, Outstanding: in.outstanding.Load(), Since: s.Since, Adopted: s.Adopted})
			}
			out.Variants = append(out.Variants, vs)
		}
	}
	if r != nil {
		add(active, 1-share)
	} else {
		add(active, 0)
	}
	add(pending, share)
	sort.SliceStable(out.Variants, func(i, j int) bool {
		return out.Variants[i].Config == out.Config && out.Variants[j].Config != out.Config
	})
	return out
}
