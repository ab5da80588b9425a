package ratelimit

import (
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/junctionhq/junction/internal/testkit/redistest"
)

// The Redis tests share one real redis-server per test binary; each test
// keeps to its own key prefix.

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

func testPrefix(tb testing.TB) string { return redistest.Prefix(tb) }

func newRedisClient(tb testing.TB) *redis.Client { return redistest.Client(tb) }

func newClusterClient(tb testing.TB) *redis.ClusterClient { return redistest.ClusterClient(tb) }

type roundTrips = redistest.RoundTrips
