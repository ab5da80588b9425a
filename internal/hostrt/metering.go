package hostrt

// ReadyMetering is implemented by a Runtime whose instances are metered
// from the moment they are first ready rather than from Start: on a
// cluster, a pod waiting for a node, for its image or for its model to load
// holds no instance the team pays for through Junction. An instance that
// never becomes ready is never metered. Either way metering ends when the
// instance has stopped.
type ReadyMetering interface {
	MetersFromReady() bool
}
