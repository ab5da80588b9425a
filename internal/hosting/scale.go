package hosting

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
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

// UpdateCapacities sets variants' weights and instance counts on an
// InService endpoint. Weights apply at once; new instances take traffic
// once ready, removed ones are taken out of rotation first and stopped
// gracefully. The changes are stored with the endpoint (they survive a
// restart) until it is updated to another config. It returns when the
// endpoint has the requested shape, or with the reason it could not.
func (c *Controller) UpdateCapacities(ctx context.Context, name string, caps []VariantCapacity) (*Endpoint, error) {
	ep := c.endpoints()[name]
	if ep == nil {
		return nil, notFound("endpoint", name)
	}
	ep.mu.Lock()
	if ep.row.Status != StatusInService || ep.active == nil {
		ep.mu.Unlock()
		return nil, errBusy(c.describe(ep))
	}
	f := ep.active
	ep.mu.Unlock()
	var errs ValidationErrors
	targets := make([]*variant, len(caps))
	for i, vc := range caps {
		for _, v := range f.all() {
			if v.spec.Name == vc.Variant {
				targets[i] = v
			}
		}
		switch {
		case targets[i] == nil:
			errs = append(errs, fmt.Sprintf("variants[%d]: %q is not a variant of endpoint %s (config %s)", i, vc.Variant, name, f.config.Name))
		case vc.Weight != nil && *vc.Weight < 0:
			errs = append(errs, fmt.Sprintf("variants[%d].weight: %g must not be negative", i, *vc.Weight))
		case vc.InstanceCount != nil && (*vc.InstanceCount < 1 || *vc.InstanceCount > 64):
			errs = append(errs, fmt.Sprintf("variants[%d].instance_count: %d must be between 1 and 64", i, *vc.InstanceCount))
		case vc.Weight == nil && vc.InstanceCount == nil:
			errs = append(errs, fmt.Sprintf("variants[%d]: give weight, instance_count or both", i))
		}
	}
	if len(caps) == 0 {
		errs = append(errs, "variants: give at least one variant to change")
	}
	if len(errs) > 0 {
		return nil, Validation("%s", errs)
	}
	var changes []string
	for i, vc := range caps {
		v := targets[i]
		if vc.Weight != nil {
			v.setWeight(*vc.Weight)
			changes = append(changes, fmt.Sprintf("%s weight %g", v.spec.Name, *vc.Weight))
		}
	}
	var scaleErr error
	for i, vc := range caps {
		if vc.InstanceCount == nil {
			continue
		}
		v := targets[i]
		from := len(v.instances())
		if err := c.scale(ctx, name, v, *vc.InstanceCount); err != nil && scaleErr == nil {
			scaleErr = fmt.Errorf("variant %s: %w", v.spec.Name, err)
		}
		changes = append(changes, fmt.Sprintf("%s instances %d -> %d", v.spec.Name, from, *vc.InstanceCount))
	}
	c.saveOverrides(ep, f)
	c.event(name, "capacities: "+strings.Join(changes, ", "))
	if scaleErr != nil {
		return c.describe(ep), scaleErr
	}
	return c.describe(ep), nil
}

// scale brings a variant to n instances: new ones are started and
// waited for; surplus ones (not ready ones first) leave the rotation and
// are stopped.
func (c *Controller) scale(ctx context.Context, endpoint string, v *variant, n int) error {
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
	timeout := time.Duration(v.model.Server.StartupTimeoutSeconds) * time.Second
	if timeout == 0 {
		timeout = 4 * time.Minute
	}
	for _, in := range fresh {
		wctx, cancel := context.WithTimeout(ctx, timeout)
		err := in.Ready(wctx)
		cancel()
		if err != nil {
			return fmt.Errorf("instance %s did not become ready within %s: %s", in.ID(), timeout, in.Status().LastError)
		}
	}
	return nil
}

// saveOverrides stores the fleet's weights and counts that differ from
// its config.
func (c *Controller) saveOverrides(ep *endpoint, f *fleet) {
	over := map[string]VariantCapacity{}
	for _, v := range f.all() {
		vc := VariantCapacity{Variant: v.spec.Name}
		if w := v.weight(); w != v.spec.Weight {
			vc.Weight = &w
		}
		if n := int(v.count.Load()); n != v.spec.InstanceCount {
			vc.InstanceCount = &n
		}
		if vc.Weight != nil || vc.InstanceCount != nil {
			over[v.spec.Name] = vc
		}
	}
	ep.mu.Lock()
	ep.row.Overrides = over
	ep.mu.Unlock()
	c.setStatus(ep, StatusInService, "")
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
