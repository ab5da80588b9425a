package hosting

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// VariantCapacity changes a running variant's weight or instance count
// without a new config, as SageMaker's UpdateEndpointWeightsAndCapacities
// does. Nil fields are left as they are.
type VariantCapacity struct {
	// Variant names a production or shadow variant of the running config.
	Variant       string   `json:"variant"`
	Weight        *float64 `json:"weight,omitempty"`
	InstanceCount *int     `json:"instance_count,omitempty"`
}

// UpdateCapacities asks for variants' weights and instance counts on an
// InService endpoint to change, as SageMaker's
// UpdateEndpointWeightsAndCapacities does: it stores them in the
// endpoint's spec and returns. The reconciler applies them: weights at
// once; new instances take traffic once ready; surplus ones leave the
// rotation, finish what they hold and stop. They hold across restarts
// until the endpoint is updated to another config.
func (a *api) UpdateCapacities(ctx context.Context, name string, caps []VariantCapacity) (*Endpoint, error) {
	if err := a.storeCapacities(ctx, name, caps); err != nil {
		return nil, err
	}
	return a.Endpoint(name)
}

// storeCapacities is UpdateCapacities without reading the endpoint back:
// once it returns nil the change is stored, and an error means it was
// not (short of a commit whose answer was lost).
func (a *api) storeCapacities(ctx context.Context, name string, caps []VariantCapacity) error {
	ctx, cancel := specContext(ctx)
	defer cancel()
	var changes []string
	_, err := a.store.changeSpec(ctx, name, func(sp *endpointSpec, st *endpointStatus) error {
		if st.Status != StatusInService || st.PendingConfig != "" || (sp.Config != st.ActiveConfig) {
			return errBusy(&Endpoint{Name: name, Status: st.Status})
		}
		cfg, err := a.store.Config(ctx, st.ActiveConfig)
		if err != nil {
			return err
		}
		if err := checkCapacities(name, cfg, caps); err != nil {
			return err
		}
		if sp.Capacities == nil {
			sp.Capacities = map[string]VariantCapacity{}
		}
		changes = changes[:0]
		for _, vc := range caps {
			cur := sp.Capacities[vc.Variant]
			cur.Variant = vc.Variant
			if vc.Weight != nil {
				w := *vc.Weight
				cur.Weight = &w
				changes = append(changes, fmt.Sprintf("%s weight %g", vc.Variant, w))
			}
			if vc.InstanceCount != nil {
				n := *vc.InstanceCount
				cur.InstanceCount = &n
				changes = append(changes, fmt.Sprintf("%s instances %d", vc.Variant, n))
			}
			sp.Capacities[vc.Variant] = cur
		}
		return nil
	})
	if err != nil {
		return err
	}
	a.event(name, "capacities asked: "+strings.Join(changes, ", "))
	a.changed(name)
	return nil
}

// checkCapacities reports every problem with a capacity change of cfg.
func checkCapacities(name string, cfg *EndpointConfig, caps []VariantCapacity) error {
	var errs ValidationErrors
	for i, vc := range caps {
		known := false
		for _, v := range append(append([]Variant(nil), cfg.Variants...), cfg.Shadow...) {
			known = known || v.Name == vc.Variant
		}
		switch {
		case !known:
			errs = append(errs, fmt.Sprintf("variants[%d]: %q is not a variant of endpoint %s (config %s)", i, vc.Variant, name, cfg.Name))
		case vc.Weight != nil && *vc.Weight < 0:
			errs = append(errs, fmt.Sprintf("variants[%d].weight: %g must not be negative", i, *vc.Weight))
		case vc.InstanceCount != nil && (*vc.InstanceCount < 0 || *vc.InstanceCount > 64):
			// 0 scales the variant to zero: calls are held while one
			// instance starts again (hold.go).
			errs = append(errs, fmt.Sprintf("variants[%d].instance_count: %d must be between 0 and 64", i, *vc.InstanceCount))
		case vc.Weight == nil && vc.InstanceCount == nil:
			errs = append(errs, fmt.Sprintf("variants[%d]: give weight, instance_count or both", i))
		}
	}
	if len(caps) == 0 {
		errs = append(errs, "variants: give at least one variant to change")
	}
	if len(errs) > 0 {
		return Validation("%s", errs)
	}
	return nil
}

// applyCapacities brings the active fleet's weights and instance counts
// to the spec's.
func (c *reconciler) applyCapacities(ctx context.Context, ep *endpoint, sp *endpointSpec) {
	ep.mu.Lock()
	f := ep.active
	ep.mu.Unlock()
	var scaleErr error
	var changes []string
	for _, v := range f.all() {
		w, n := v.spec.Weight, v.spec.InstanceCount
		if vc, ok := sp.Capacities[v.spec.Name]; ok {
			if vc.Weight != nil {
				w = *vc.Weight
			}
			if vc.InstanceCount != nil {
				n = *vc.InstanceCount
			}
		}
		if w != v.weight() {
			v.setWeight(w)
			changes = append(changes, fmt.Sprintf("%s weight %g", v.spec.Name, w))
		}
		if from := len(v.instances()); from != n {
			c.setStatus(ep, func(st *endpointStatus) { st.Status = StatusUpdating })
			if err := c.scale(ctx, ep.name, v, n); err != nil && scaleErr == nil {
				scaleErr = fmt.Errorf("variant %s: %w", v.spec.Name, err)
			}
			changes = append(changes, fmt.Sprintf("%s instances %d -> %d", v.spec.Name, from, n))
		}
	}
	if ctx.Err() != nil {
		return // interrupted: the next run converges
	}
	reason := ""
	if scaleErr != nil {
		reason = "capacity change failed: " + scaleErr.Error()
	}
	c.setStatus(ep, func(st *endpointStatus) {
		st.Status, st.FailureReason, st.ObservedGeneration = StatusInService, reason, sp.Generation
	})
	if len(changes) > 0 {
		c.api.event(ep.name, "capacities: "+strings.Join(changes, ", "))
	}
}

// scale brings a variant to n instances: new ones are started and
// waited for; surplus ones (not ready ones first) leave the rotation and
// are stopped.
func (c *reconciler) scale(ctx context.Context, endpoint string, v *variant, n int) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.count.Store(int64(n))
	list := append([]*instance(nil), v.instances()...)
	if len(list) > n {
		// Keep the ready ones: drop those not serving first.
		sort.SliceStable(list, func(i, j int) bool { return list[i].ready.Load() && !list[j].ready.Load() })
		surplus := list[n:]
		v.setInstances(list[:n])
		for _, in := range surplus {
			c.stopInstance(in)
		}
		return nil
	}
	if len(list) == n {
		return nil
	}
	dir, err := c.blobs.Resolve(ctx, v.model.Artifact)
	if err != nil {
		return fmt.Errorf("artifact: %w", err)
	}
	var fresh []*instance
	for len(list)+len(fresh) < n {
		in, err := c.startInstance(ctx, endpoint, v, dir)
		if err != nil {
			return err
		}
		fresh = append(fresh, in)
	}
	// They join the rotation now and take traffic once ready.
	v.setInstances(append(list, fresh...))
	timeout := v.startupTimeout()
	for _, in := range fresh {
		wctx, cancel := context.WithTimeout(ctx, timeout)
		err := in.serving(wctx)
		cancel()
		if err != nil {
			return fmt.Errorf("instance %s did not become ready within %s: %s", in.ID(), timeout, in.Status().LastError)
		}
	}
	return nil
}

// applyOverrides gives a fleet the stored weights and counts.
func applyOverrides(f *fleet, over map[string]VariantCapacity) {
	for _, v := range f.all() {
		vc, ok := over[v.spec.Name]
		if !ok {
			continue
		}
		if vc.Weight != nil {
			v.setWeight(*vc.Weight)
		}
		if vc.InstanceCount != nil {
			v.count.Store(int64(*vc.InstanceCount))
		}
	}
}
