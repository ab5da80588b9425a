package hosting

import "time"

// An instance leaves service in two steps: it is drained (it takes no
// new calls, and the calls it holds finish), then stopped (SIGTERM, and
// SIGKILL after the grace period). Stopping first would cut the calls in
// flight and those about to be written on a pooled connection.
//
// acquire and drain meet on two atomics with the order Go's memory model
// makes sequentially consistent: a caller counts itself outstanding and
// then checks draining; the drainer sets draining and then reads the
// count. Either the caller sees draining and backs off, or the drainer
// sees the call and waits for it — a call is never sent to an instance
// after its drain found it idle.

// acquire counts a call against the instance, or reports false when the
// instance is draining and takes no new calls.
func (in *instance) acquire() bool {
	in.outstanding.Add(1)
	if in.draining.Load() {
		in.outstanding.Add(-1)
		return false
	}
	return true
}

// release ends a call counted by acquire.
func (in *instance) release() { in.outstanding.Add(-1) }

// drainPoll is how often a drain looks at the calls still outstanding.
const drainPoll = 5 * time.Millisecond

// drain takes the instance out of rotation and waits until it holds no
// call, or until the controller's drain timeout has passed (a call that
// outlives it is cut when the instance stops). It reports whether the
// instance drained fully.
func (c *reconciler) drain(in *instance) bool {
	in.draining.Store(true)
	in.ready.Store(false)
	c.routesChanged()
	if in.outstanding.Load() == 0 {
		return true
	}
	deadline := time.NewTimer(c.opts.DrainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for in.outstanding.Load() > 0 {
		select {
		case <-deadline.C:
			if c.log != nil {
				c.log.Warn("hosting: drain timed out; stopping the instance with calls in flight",
					"instance", in.ID(), "outstanding", in.outstanding.Load(), "timeout", c.opts.DrainTimeout)
			}
			return false
		case <-tick.C:
		}
	}
	return true
}
