package hosting

import (
	"context"
	"net/http"
)

// Probe makes a GET of path on one ready instance of an endpoint and
// returns its status and the start of its body (4 KB): for a container's
// optional routes, such as the GET /execution-parameters batch transform
// asks for its defaults. It is no invocation: nothing is metered or
// recorded.
func (p *plane) Probe(ctx context.Context, endpoint, path string) (status int, body string, err error) {
	r, err := p.route(ctx, endpoint)
	if err != nil {
		return 0, "", err
	}
	v, _, err := r.choose(endpoint, "")
	if err != nil {
		return 0, "", err
	}
	_, err = v.try(func(in *instance) (bool, bool, error) {
		var cerr error
		status, body, cerr = p.modelCall(ctx, in, http.MethodGet, path, "")
		return false, cerr != nil && refused(cerr), cerr
	})
	if err == nil && status == 0 {
		err = Unavailable("No instance of endpoint %s is ready.", endpoint)
	}
	return status, body, err
}
