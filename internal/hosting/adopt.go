package hosting

import (
	"github.com/junctionhq/junction/internal/hostrt"
)

func adoptKey(endpoint string, v *variant) string {
	return endpoint + "/" + v.spec.Name + "/" + v.hash
}

func recoveredKey(in hostrt.Instance) string {
	s := in.Spec()
	return s.Endpoint + "/" + s.Variant + "/" + s.ConfigHash
}

// takeAdopted returns the recovered instances that match a variant,
// wrapped for the controller and observed from now on.
func (c *reconciler) takeAdopted(endpoint string, v *variant) []*instance {
	c.adoptMu.Lock()
	k := adoptKey(endpoint, v)
	found := c.adopted[k]
	delete(c.adopted, k)
	c.adoptMu.Unlock()
	var out []*instance
	for _, hi := range found {
		in := &instance{Instance: hi, v: v, endpoint: endpoint}
		c.meter.adopted(in)
		// Changes arrive from the runtime from now on; reading the status
		// once after setting the callback misses nothing.
		in.SetOnChange(func(st hostrt.Status) { c.observe(in, st) })
		c.observe(in, in.Status())
		out = append(out, in)
	}
	return out
}

// eventLater appends a line to an endpoint's history from the effects
// worker, for callers that may not wait on the database.
func (c *reconciler) eventLater(endpoint, msg string) { c.later(func() { c.api.event(endpoint, msg) }) }

// event appends a line to an endpoint's history.
func (a *api) event(endpoint, msg string) {
	ctx, cancel := storeContext()
	defer cancel()
	if err := a.store.addEvent(ctx, endpoint, msg); err != nil && a.log != nil {
		a.log.Warn("hosting: event not stored", "endpoint", endpoint, "err", err)
	}
	if a.log != nil {
		a.log.Info("hosting: "+msg, "endpoint", endpoint)
	}
}
