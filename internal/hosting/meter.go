package hosting

import (
	"time"

	"github.com/junctionhq/junction/internal/hostrt"
)

// Instance time is metered in segments: every MeterInterval each running
// instance's time since its last segment is written, and a stopped
// instance's last stretch when it stops. A segment the database refuses is
// kept and written with the next one, so no instance time is lost; an
// adopted instance resumes from the end of its last stored segment.

func (c *Controller) track(in *instance) {
	if in.unmetered() {
		return // serverless: billed per call (serverless.go)
	}
	c.liveMu.Lock()
	c.live[in] = struct{}{}
	c.liveMu.Unlock()
}

func (c *Controller) untrack(in *instance) {
	c.liveMu.Lock()
	delete(c.live, in)
	c.liveMu.Unlock()
}

// adoptTracking meters an adopted instance from where its metering
// stopped (or from when it started, if it never was).
func (c *Controller) adoptTracking(in *instance) {
	ctx, cancel := storeContext()
	from, err := c.store.meteredUntil(ctx, in.ID())
	cancel()
	if err != nil || from.IsZero() {
		from = in.Status().Since
	}
	if from.IsZero() {
		from = time.Now()
	}
	in.meterMu.Lock()
	in.meteredFrom = from
	in.meterMu.Unlock()
	// Changes arrive from the runtime from now on; reading the status
	// once after setting the callback misses nothing.
	in.SetOnChange(func(st hostrt.Status) { c.observe(in, st) })
	c.observe(in, in.Status())
	c.track(in)
}

func (c *Controller) meterLoop() {
	t := time.NewTicker(c.opts.MeterInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.meterNow()
		}
	}
}

// meterNow writes every running instance's time up to now.
func (c *Controller) meterNow() {
	c.flushBacklog()
	c.liveMu.Lock()
	list := make([]*instance, 0, len(c.live))
	for in := range c.live {
		list = append(list, in)
	}
	c.liveMu.Unlock()
	now := time.Now()
	segs := make([]Segment, 0, len(list))
	owners := make([]*instance, 0, len(list))
	for _, in := range list {
		in.meterMu.Lock()
		if !in.meteredFrom.IsZero() && now.Sub(in.meteredFrom) > 0 {
			segs = append(segs, c.segment(in, in.meteredFrom, now))
			owners = append(owners, in)
		}
		in.meterMu.Unlock()
	}
	if len(segs) == 0 {
		return
	}
	ctx, cancel := storeContext()
	defer cancel()
	if err := c.store.addSegments(ctx, segs); err != nil {
		if c.log != nil {
			c.log.Warn("hosting: instance time not metered; will retry", "err", err)
		}
		return
	}
	for _, in := range owners {
		in.meterMu.Lock()
		if !in.meteredFrom.IsZero() {
			in.meteredFrom = now
		}
		in.meterMu.Unlock()
	}
}

// meterFinal writes a stopped instance's last stretch; if the database
// refuses it, it waits in the backlog for the next meter tick.
func (c *Controller) meterFinal(in *instance) {
	in.meterMu.Lock()
	if in.meteredFrom.IsZero() {
		in.meterMu.Unlock()
		return
	}
	seg := c.segment(in, in.meteredFrom, time.Now())
	in.meteredFrom = time.Time{}
	in.meterMu.Unlock()
	c.liveMu.Lock()
	c.backlog = append(c.backlog, seg)
	c.liveMu.Unlock()
	c.flushBacklog()
}

// flushBacklog writes segments of stopped instances.
func (c *Controller) flushBacklog() {
	c.liveMu.Lock()
	segs := c.backlog
	c.backlog = nil
	c.liveMu.Unlock()
	if len(segs) == 0 {
		return
	}
	ctx, cancel := storeContext()
	defer cancel()
	if err := c.store.addSegments(ctx, segs); err != nil {
		if c.log != nil {
			c.log.Warn("hosting: instance time not metered; will retry", "segments", len(segs), "err", err)
		}
		c.liveMu.Lock()
		c.backlog = append(segs, c.backlog...)
		c.liveMu.Unlock()
	}
}

func (c *Controller) segment(in *instance, from, to time.Time) Segment {
	g := Segment{Endpoint: in.endpoint, Variant: in.v.spec.Name, InstanceID: in.ID(), InstanceType: in.v.spec.InstanceType, Start: from, End: to}
	if it, ok := c.types[in.v.spec.InstanceType]; ok {
		p := it.USDPerHour
		g.USDPerHour = &p
	}
	return g
}
