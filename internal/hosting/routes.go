package hosting

import (
	"sync"
	"sync/atomic"
)

// routes is the routing snapshot the reconciler publishes and the data
// plane reads: the endpoints this replica runs (put and removed by the
// reconciler as it brings them up and tears them down), and, while
// another replica holds the lease, those it follows (replicas.go). Reads
// are lock-free; writers copy the map.
type routes struct {
	mu  sync.Mutex                           // serialises changes to eps
	eps atomic.Pointer[map[string]*endpoint] // read lock-free on the invocation path
	// remote are the endpoints another replica runs, as it published
	// them, while this replica does not hold the lease (replicas.go).
	remote atomic.Pointer[map[string]*endpoint]
}

func newRoutes() *routes {
	r := &routes{}
	empty, none := map[string]*endpoint{}, map[string]*endpoint{}
	r.eps.Store(&empty)
	r.remote.Store(&none)
	return r
}

// endpoints are the endpoints this replica runs.
func (r *routes) endpoints() map[string]*endpoint { return *r.eps.Load() }

// put adds or replaces an endpoint this replica runs.
func (r *routes) put(ep *endpoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := map[string]*endpoint{}
	for k, v := range r.endpoints() {
		next[k] = v
	}
	next[ep.name] = ep
	r.eps.Store(&next)
}

// remove forgets an endpoint this replica ran.
func (r *routes) remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := map[string]*endpoint{}
	for k, v := range r.endpoints() {
		if k != name {
			next[k] = v
		}
	}
	r.eps.Store(&next)
}

// followed is this replica's view of the endpoints another replica runs.
func (r *routes) followed() map[string]*endpoint { return *r.remote.Load() }

// lookup finds an endpoint this replica runs or follows.
func (r *routes) lookup(name string) *endpoint {
	if ep := r.endpoints()[name]; ep != nil {
		return ep
	}
	return r.followed()[name]
}

// routable is every endpoint this replica routes to: those it runs, or,
// while another replica holds the lease, those it follows.
func (r *routes) routable() map[string]*endpoint {
	if eps := r.endpoints(); len(eps) > 0 {
		return eps
	}
	return r.followed()
}
