package hosting

import (
	"context"
	"io"
	"log/slog"
)

// api is hosting's API-facing part: it validates and stores models,
// endpoint configs and endpoint specs (create, update, scale, delete) and
// describes endpoints. It writes specs only and returns once they are
// stored; the reconciler converges the world on them (changed tells it
// which endpoint to look at now).
type api struct {
	// routes are read to describe the live fleets.
	*routes
	store *Store
	types InstanceTypes
	log   *slog.Logger
	// changed tells the reconciler an endpoint's spec changed.
	changed func(name string)
}

// Types is the instance catalog.
func (a *api) Types() InstanceTypes { return a.types }

// Store is the controller's resource store.
func (a *api) Store() *Store { return a.store }

// CreateModel validates and stores a model.
func (a *api) CreateModel(ctx context.Context, m *Model) error {
	if err := m.Validate(); err != nil {
		return Validation("%s", err)
	}
	return a.store.CreateModel(ctx, m)
}

// UpdateModel changes a model no endpoint serves. A running endpoint's
// models stay as they are: make a new model and endpoint config and
// update the endpoint to it, so that traffic moves safely.
func (a *api) UpdateModel(ctx context.Context, m *Model) error {
	if err := m.Validate(); err != nil {
		return Validation("%s", err)
	}
	if ep := a.servedBy(m.Name); ep != "" {
		return conflict(ErrInUse, "model %q is served by endpoint %q; create a new model and update the endpoint to a config that uses it", m.Name, ep)
	}
	return a.store.UpdateModel(ctx, m)
}

// UpdateConfig changes an endpoint config no endpoint uses.
func (a *api) UpdateConfig(ctx context.Context, cfg *EndpointConfig) error {
	if err := cfg.Validate(a.types.Known); err != nil {
		return Validation("%s", err)
	}
	if ep, err := a.store.configInUse(ctx, cfg.Name); err != nil {
		return err
	} else if ep != "" {
		return conflict(ErrInUse, "endpoint config %q is used by endpoint %q; create a new config and update the endpoint to it", cfg.Name, ep)
	}
	for _, v := range append(append([]Variant(nil), cfg.Variants...), cfg.Shadow...) {
		if _, err := a.store.Model(ctx, v.Model); err != nil {
			return Validation("variant %s: model %q does not exist; create it first", v.Name, v.Model)
		}
	}
	return a.store.UpdateConfig(ctx, cfg)
}

// servedBy names a live endpoint one of whose fleets runs model, or "".
func (a *api) servedBy(model string) string {
	for _, ep := range a.routable() {
		for _, v := range ep.variants() {
			if v.model.Name == model {
				return ep.name
			}
		}
	}
	return ""
}

// DeleteModel removes a model no endpoint config of a live endpoint uses.
func (a *api) DeleteModel(ctx context.Context, name string) error {
	if ep := a.servedBy(name); ep != "" {
		return conflict(ErrInUse, "model %q is served by endpoint %q; delete or update the endpoint first", name, ep)
	}
	return a.store.DeleteModel(ctx, name)
}

// CreateConfig validates and stores an endpoint config.
func (a *api) CreateConfig(ctx context.Context, cfg *EndpointConfig) error {
	if err := cfg.Validate(a.types.Known); err != nil {
		return Validation("%s", err)
	}
	for _, v := range append(append([]Variant(nil), cfg.Variants...), cfg.Shadow...) {
		if _, err := a.store.Model(ctx, v.Model); err != nil {
			return Validation("variant %s: model %q does not exist; create it first", v.Name, v.Model)
		}
	}
	return a.store.CreateConfig(ctx, cfg)
}

// DeleteConfig removes an endpoint config no endpoint uses.
func (a *api) DeleteConfig(ctx context.Context, name string) error {
	if ep, err := a.store.configInUse(ctx, name); err != nil {
		return err
	} else if ep != "" {
		return conflict(ErrInUse, "endpoint config %q is used by endpoint %q", name, ep)
	}
	return a.store.DeleteConfig(ctx, name)
}

// Logs returns the tail of each instance's log of an endpoint this
// replica runs, by instance id; a log that cannot be read says why.
func (a *api) Logs(name string, tail int64) (map[string]io.ReadCloser, map[string]error, error) {
	ep := a.endpoints()[name]
	if ep == nil {
		if _, err := a.Endpoint(name); err != nil {
			return nil, nil, err
		}
		return map[string]io.ReadCloser{}, map[string]error{}, nil
	}
	logs, errs := map[string]io.ReadCloser{}, map[string]error{}
	for _, v := range ep.variants() {
		for _, in := range v.instances() {
			if r, err := in.Logs(tail); err != nil {
				errs[in.ID()] = err
			} else {
				logs[in.ID()] = r
			}
		}
	}
	return logs, errs, nil
}

// errBusy says an endpoint cannot take an operation now.
func errBusy(ep *Endpoint) error {
	return conflict(ErrInUse, "endpoint %q is %s; wait until it is InService", ep.Name, ep.Status)
}

// variants are every variant of an endpoint's fleets, the active one's
// first.
func (ep *endpoint) variants() []*variant {
	ep.mu.Lock()
	fleets := []*fleet{ep.active, ep.pending}
	ep.mu.Unlock()
	var out []*variant
	for _, f := range fleets {
		if f != nil {
			out = append(out, f.all()...)
		}
	}
	return out
}
