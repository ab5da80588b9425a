package hosting

import (
	"errors"
	"net"
)

// maxAttempts is how many instances an invocation tries when connections
// fail before the request reaches a server.
const maxAttempts = 3

// errNoAddress says an instance picked had no server address yet; the
// call moves on to another instance.
var errNoAddress = errors.New("the instance has no address yet")

// attempt is one call to one instance. keep reports that the call still
// holds the instance when it returns (a stream the caller reads on, whose
// closer releases the instance); retry, that it failed before reaching the
// server, so another instance may take it.
type attempt func(in *instance) (keep bool, retry bool, err error)

// try is the one pick-and-retry path of every call to a variant's model
// servers, byoc invocations and OpenAI-compatible chat alike: it picks an
// instance (least outstanding, or random), counts the call against it
// (skipping an instance that has begun to drain), and makes the call; a
// call that never reached a server moves on to an instance not yet tried,
// up to maxAttempts. It returns the instance that answered, or the last
// error; with neither, no instance was ready.
func (v *variant) try(call attempt) (*instance, error) {
	var tried [maxAttempts]*instance
	var lastErr error
	for n := 0; n < maxAttempts; {
		in := v.pick(tried[:n])
		if in == nil {
			break
		}
		tried[n] = in
		n++
		if !in.acquire() {
			continue
		}
		keep, retry, err := call(in)
		if !keep {
			in.release()
		}
		if err == nil {
			return in, nil
		}
		lastErr = err
		if !retry {
			break
		}
	}
	return nil, lastErr
}

// refused reports whether a call failed before reaching the server: its
// connection was refused.
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
