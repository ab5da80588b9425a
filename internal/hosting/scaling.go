package hosting

import (
	"context"
	"sync/atomic"
	"time"
)

// What an autoscaler sees of the endpoints and how it acts on them. An
// autoscaler is one more writer of an endpoint's spec: it asks for a
// variant's instance count as the REST API does (SetInstanceCount), and
// the reconciler converges on it; it never touches the status.

// VariantLoad is a live production variant's load, as an autoscaler
// samples it.
type VariantLoad struct {
	Endpoint, Variant string
	// Desired is the instance count the variant runs at (its spec's);
	// Ready counts the instances taking traffic, Instances all of them.
	Desired, Ready, Instances int
	// InFlight is the calls the variant's instances hold now; Held, the
	// calls waiting for a ready instance (cold start, see hold.go).
	InFlight, Held int64
	// Invocations and OutputTokens are counters since the variant's fleet
	// started: an autoscaler takes rates from their differences.
	Invocations, OutputTokens int64
	// Serverless is the variant's serverless config; nil for instances.
	// Admitted is a serverless variant's calls counted against its
	// max_concurrency (held or running).
	Serverless *ServerlessConfig
	Admitted   int64
	// Settled is true while the endpoint is InService on its latest spec
	// with no update under way: only then may a count be asked for.
	Settled bool
}

// variantScale is a variant's state for autoscaling, cold starts and
// serverless admission.
type variantScale struct {
	held     atomic.Int64 // calls waiting in the hold queue
	inflight atomic.Int64 // serverless: calls admitted (held or running)
	tokens   atomic.Int64 // output tokens answered (openai servers)
	starting atomic.Bool  // a cold start was asked for and is not yet ready
}

// Load samples the load of every production variant this replica runs
// (the lease holder runs them all), endpoint by endpoint.
func (c *reconciler) Load() []VariantLoad {
	var out []VariantLoad
	eps := c.endpoints()
	for _, name := range sortedKeys(eps) {
		ep := eps[name]
		ep.mu.Lock()
		active, pending := ep.active, ep.pending
		settled := ep.status.Status == StatusInService && ep.status.ObservedGeneration == ep.spec.Generation && pending == nil
		ep.mu.Unlock()
		if active == nil || ep.route.Load() == nil {
			continue
		}
		for _, v := range active.variants {
			l := VariantLoad{Endpoint: name, Variant: v.spec.Name, Desired: int(v.count.Load()), Settled: settled,
				Held: v.scale.held.Load(), OutputTokens: v.scale.tokens.Load(), Invocations: v.stats.count(),
				Serverless: v.spec.Serverless, Admitted: v.scale.inflight.Load()}
			for _, in := range v.instances() {
				l.Instances++
				if in.ready.Load() {
					l.Ready++
				}
				l.InFlight += in.outstanding.Load()
			}
			out = append(out, l)
		}
	}
	return out
}

// count is the number of invocations recorded.
func (s *stats) count() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.invocations
}

// SetInstanceCount asks for a variant's instance count (0 allowed) as
// UpdateCapacities does, on behalf of an autoscaler or a cold start.
func (a *api) SetInstanceCount(ctx context.Context, endpoint, variant string, n int) error {
	return a.storeCapacities(ctx, endpoint, []VariantCapacity{{Variant: variant, InstanceCount: &n}})
}

// Event appends a line to an endpoint's history (GET
// /api/v1/endpoints/{name}/events), as the controller's own are.
func (a *api) Event(endpoint, msg string) { a.event(endpoint, msg) }

// specTimeout bounds a spec change made in the background.
const specTimeout = 10 * time.Second
