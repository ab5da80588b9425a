package hosting

import (
	"context"
	"fmt"
	"time"
)

// UpdateEndpoint asks for an endpoint to move to another config: it
// stores the spec and returns. The reconciler brings the new fleet up
// beside the old one, shifts traffic by the deployment policy, and rolls
// back while the alarms watch it bake. An update asked for while another
// is in progress supersedes it: the endpoint converges on the last one.
func (a *api) UpdateEndpoint(ctx context.Context, name, config string, dep Deployment) (*Endpoint, error) {
	ctx, cancel := specContext(ctx)
	defer cancel()
	if err := dep.Validate(); err != nil {
		return nil, Validation("%s", err)
	}
	cfg, err := a.store.Config(ctx, config)
	if err != nil {
		return nil, Validation("endpoint config %q does not exist; create it first", config)
	}
	if _, err := a.newFleet(ctx, cfg); err != nil {
		return nil, Validation("%s", err)
	}
	var from string
	_, err = a.store.changeSpec(ctx, name, func(sp *endpointSpec, st *endpointStatus) error {
		if st.Status != StatusInService && st.Status != StatusUpdating {
			return errBusy(&Endpoint{Name: name, Status: st.Status})
		}
		if sp.Config == config && st.ActiveConfig == config {
			return Validation("endpoint %s already runs config %s; create a new endpoint config to update to", name, config)
		}
		from = st.ActiveConfig
		sp.Config, sp.Deployment, sp.Capacities = config, &dep, nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	a.event(name, fmt.Sprintf("update asked: from config %s to %s (%s)", from, config, dep.Type))
	a.changed(name)
	return a.Endpoint(name)
}

// steps are the traffic shares the new fleet takes, in order.
func (d Deployment) steps() []float64 {
	switch d.Type {
	case PolicyCanary:
		return []float64{d.CanaryPercent / 100, 1}
	case PolicyLinear:
		var out []float64
		for s := d.LinearStepPercent; s < 100; s += d.LinearStepPercent {
			out = append(out, s/100)
		}
		return append(out, 1)
	}
	return []float64{1}
}

// update moves an endpoint's traffic to the spec's config.
func (c *reconciler) update(ctx context.Context, ep *endpoint, sp *endpointSpec) {
	start := time.Now()
	dep := Deployment{}
	if sp.Deployment != nil {
		dep = *sp.Deployment
	}
	dep.Validate()
	ep.mu.Lock()
	old := ep.active
	ep.mu.Unlock()
	c.setStatus(ep, func(st *endpointStatus) {
		st.Status, st.PendingConfig, st.FailureReason = StatusUpdating, sp.Config, ""
	})
	c.api.event(ep.name, fmt.Sprintf("updating from config %s to %s (%s)", old.config.Name, sp.Config, dep.Type))
	next, err := c.fleetFor(ctx, sp, sp.Config)
	if err != nil {
		c.rollback(ep, nil, sp, fmt.Sprintf("the new fleet did not start: %s", err))
		return
	}
	ep.mu.Lock()
	ep.pending = next
	ep.mu.Unlock()
	if err := c.startFleet(ctx, ep.name, next); err != nil {
		if ctx.Err() != nil {
			c.abandon(ep, next)
			return
		}
		c.rollback(ep, next, sp, fmt.Sprintf("the new fleet did not start: %s", err))
		return
	}
	c.api.event(ep.name, fmt.Sprintf("new fleet on config %s is ready after %s", next.config.Name, time.Since(start).Round(time.Millisecond)))
	wait := time.Duration(dep.WaitSeconds * float64(time.Second))
	for _, share := range dep.steps() {
		ep.route.Store(&routing{active: old, pending: next, share: share})
		c.api.event(ep.name, fmt.Sprintf("shifted %.0f%% of traffic to config %s; baking %s", share*100, next.config.Name, wait))
		if reason := c.bake(ctx, next, dep.Alarms, wait); reason != "" {
			c.endBake(ctx, ep, next, sp, reason)
			return
		}
	}
	if tw := time.Duration(dep.TerminationWaitSeconds * float64(time.Second)); tw > 0 {
		if reason := c.bake(ctx, next, dep.Alarms, tw); reason != "" {
			c.endBake(ctx, ep, next, sp, reason)
			return
		}
	}
	if ctx.Err() != nil {
		c.abandon(ep, next)
		return
	}
	ep.route.Store(&routing{active: next})
	ep.mu.Lock()
	ep.active, ep.pending = next, nil
	ep.mu.Unlock()
	// The old fleet takes no new invocations now; its instances finish
	// what they hold before they stop.
	c.stopFleet(old)
	// The event first, so that whoever sees the endpoint InService on the
	// new config finds it in the history.
	c.api.event(ep.name, fmt.Sprintf("update complete: InService on config %s after %s; the old fleet is stopped", next.config.Name, time.Since(start).Round(time.Millisecond)))
	c.setStatus(ep, func(st *endpointStatus) {
		st.Status, st.ActiveConfig, st.PendingConfig, st.ObservedGeneration = StatusInService, sp.Config, "", sp.Generation
	})
}

// endBake rolls back on an alarm, or abandons the update when its run was
// interrupted.
func (c *reconciler) endBake(ctx context.Context, ep *endpoint, next *fleet, sp *endpointSpec, reason string) {
	if ctx.Err() != nil {
		c.abandon(ep, next)
		return
	}
	c.rollback(ep, next, sp, reason)
}

// bake waits d while watching the new fleet's alarms; it returns why it
// tripped, or "".
func (c *reconciler) bake(ctx context.Context, f *fleet, a Alarms, d time.Duration) string {
	deadline := time.Now().Add(d)
	t := time.NewTicker(c.opts.AlarmCheck)
	defer t.Stop()
	for {
		if reason := alarm(f, a); reason != "" {
			return reason
		}
		if !time.Now().Before(deadline) {
			return ""
		}
		select {
		case <-ctx.Done():
			return "the update was cancelled"
		case <-t.C:
		}
	}
}

// alarm judges a fleet's production variants against the alarms.
func alarm(f *fleet, a Alarms) string {
	for _, v := range f.variants {
		inv, errs, p99 := v.stats.snapshot()
		if inv < int64(a.MinInvocations) {
			continue
		}
		if a.MaxErrorRate > 0 {
			if rate := float64(errs) / float64(inv); rate > a.MaxErrorRate {
				return fmt.Sprintf("alarm: variant %s error rate %.1f%% (%d of %d) is above %.1f%%", v.spec.Name, rate*100, errs, inv, a.MaxErrorRate*100)
			}
		}
		if a.MaxP99MS > 0 && p99 > a.MaxP99MS {
			return fmt.Sprintf("alarm: variant %s p99 latency %.0f ms is above %.0f ms", v.spec.Name, p99, a.MaxP99MS)
		}
	}
	return ""
}

// rollback returns all traffic to the old fleet and stops the new one;
// the spec's generation counts as handled, so it is not tried again.
func (c *reconciler) rollback(ep *endpoint, next *fleet, sp *endpointSpec, reason string) {
	ep.mu.Lock()
	old := ep.active
	ep.mu.Unlock()
	if old != nil {
		ep.route.Store(&routing{active: old})
	}
	c.setStatus(ep, func(st *endpointStatus) { st.Status, st.FailureReason = StatusRollingBack, reason })
	c.api.event(ep.name, "rolling back: "+reason)
	c.stopFleet(next)
	ep.mu.Lock()
	ep.pending = nil
	ep.mu.Unlock()
	c.api.event(ep.name, fmt.Sprintf("rolled back: InService on config %s", old.config.Name))
	c.setStatus(ep, func(st *endpointStatus) {
		st.Status, st.PendingConfig, st.FailureReason, st.ObservedGeneration = StatusInService, "", "update rolled back: "+reason, sp.Generation
	})
}

// abandon stops an update whose run was interrupted — by a newer spec, a
// deletion or a shutdown — and returns its traffic to the old fleet. The
// spec's generation is not marked handled: the next run converges on the
// spec as it is then.
func (c *reconciler) abandon(ep *endpoint, next *fleet) {
	ep.mu.Lock()
	old := ep.active
	ep.mu.Unlock()
	if old != nil {
		ep.route.Store(&routing{active: old})
	}
	c.stopFleet(next)
	ep.mu.Lock()
	ep.pending = nil
	ep.mu.Unlock()
	if c.ctx.Err() == nil {
		c.setStatus(ep, func(st *endpointStatus) { st.Status, st.PendingConfig = StatusInService, "" })
	}
	c.api.event(ep.name, fmt.Sprintf("update to config %s interrupted; traffic is back on config %s", next.config.Name, old.config.Name))
}
