package budget

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// For the external tests of a whole admission (package budget_test).

// NewTestRedisClient returns a client of the package's test redis-server.
func NewTestRedisClient(tb testing.TB) *redis.Client { return newRedisClient(tb) }

// KeyPrefix returns a key prefix of the test's own.
func KeyPrefix(tb testing.TB) string { return testPrefix(tb) }

// CountRoundTrips hooks c and returns a function that reads the number of
// round trips since the last call and starts counting again.
func CountRoundTrips(c *redis.Client) func() int64 {
	var r roundTrips
	c.AddHook(&r)
	return func() int64 { return r.N.Swap(0) }
}
