package hosting

import (
	"context"
	"fmt"
	"time"
)

// UpdateEndpoint moves an endpoint to another config: the new fleet comes
// up beside the old one, traffic shifts by the deployment policy, and the
// alarms roll it back while it bakes. The old fleet serves until the new
// one is ready and stays until the shift completes.
func (c *Controller) UpdateEndpoint(ctx context.Context, name, config string, dep Deployment) (*Endpoint, error) {
	ep := c.endpoints()[name]
	if ep == nil {
		return nil, notFound("endpoint", name)
	}
	if err := dep.Validate(); err != nil {
		return nil, Validation("%s", err)
	}
	cfg, err := c.store.Config(ctx, config)
	if err != nil {
		return nil, Validation("endpoint config %q does not exist; create it first", config)
	}
	f, err := c.newFleet(ctx, cfg)
	if err != nil {
		return nil, Validation("%s", err)
	}
	ep.mu.Lock()
	if ep.row.Status != StatusInService {
		ep.mu.Unlock()
		return nil, errBusy(c.describe(ep))
	}
	if ep.row.Config == config {
		ep.mu.Unlock()
		return nil, Validation("endpoint %s already runs config %s; create a new endpoint config to update to", name, config)
	}
	ep.row.Status, ep.row.PendingConfig, ep.row.Deployment, ep.row.FailureReason = StatusUpdating, config, &dep, ""
	ep.row.UpdatedAt = time.Now().UTC()
	row := ep.row
	ep.mu.Unlock()
	if err := c.store.saveEndpoint(ctx, &row); err != nil {
		return nil, err
	}
	c.event(name, fmt.Sprintf("updating from config %s to %s (%s)", row.Config, config, dep.Type))
	c.run(ep, func(ctx context.Context) { c.update(ctx, ep, f, dep) })
	return c.describe(ep), nil
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

func (c *Controller) update(ctx context.Context, ep *endpoint, next *fleet, dep Deployment) {
	start := time.Now()
	ep.mu.Lock()
	old := ep.active
	ep.pending = next
	ep.mu.Unlock()
	if err := c.startFleet(ctx, ep.name, next); err != nil {
		c.rollback(ep, next, fmt.Sprintf("the new fleet did not start: %s", err))
		return
	}
	c.event(ep.name, fmt.Sprintf("new fleet on config %s is ready after %s", next.config.Name, time.Since(start).Round(time.Millisecond)))
	wait := time.Duration(dep.WaitSeconds * float64(time.Second))
	for _, share := range dep.steps() {
		ep.route.Store(&routing{active: old, pending: next, share: share})
		c.event(ep.name, fmt.Sprintf("shifted %.0f%% of traffic to config %s; baking %s", share*100, next.config.Name, wait))
		if reason := c.bake(ctx, next, dep.Alarms, wait); reason != "" {
			c.rollback(ep, next, reason)
			return
		}
	}
	if tw := time.Duration(dep.TerminationWaitSeconds * float64(time.Second)); tw > 0 {
		if reason := c.bake(ctx, next, dep.Alarms, tw); reason != "" {
			c.rollback(ep, next, reason)
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	ep.route.Store(&routing{active: next})
	ep.mu.Lock()
	ep.active, ep.pending = next, nil
	ep.row.Config, ep.row.PendingConfig, ep.row.Overrides = next.config.Name, "", nil
	ep.mu.Unlock()
	// The old fleet takes no new invocations now; its instances finish
	// what they hold (SIGTERM) before the update counts as done.
	c.stopFleet(old)
	c.setStatus(ep, StatusInService, "")
	c.event(ep.name, fmt.Sprintf("update complete: InService on config %s after %s; the old fleet is stopped", next.config.Name, time.Since(start).Round(time.Millisecond)))
}

// bake waits d while watching the new fleet's alarms; it returns why it
// tripped, or "".
func (c *Controller) bake(ctx context.Context, f *fleet, a Alarms, d time.Duration) string {
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

// rollback returns all traffic to the old fleet and stops the new one.
func (c *Controller) rollback(ep *endpoint, next *fleet, reason string) {
	ep.mu.Lock()
	old := ep.active
	ep.mu.Unlock()
	if old != nil {
		ep.route.Store(&routing{active: old})
	}
	c.setStatus(ep, StatusRollingBack, reason)
	c.event(ep.name, "rolling back: "+reason)
	c.stopFleet(next)
	ep.mu.Lock()
	ep.pending = nil
	ep.row.PendingConfig = ""
	ep.mu.Unlock()
	c.setStatus(ep, StatusInService, "update rolled back: "+reason)
	c.event(ep.name, fmt.Sprintf("rolled back: InService on config %s", ep.row.Config))
}
