package redistest

import (
	"context"
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

// CommandStats counts what ran, by command, scripts and the commands they
// called alike.
func TestCommandStats(t *testing.T) {
	ctx := context.Background()
	c := Client(t)
	before, err := CommandStats(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	key := "{" + Prefix(t) + "}:h"
	for range 3 {
		if err := c.Eval(ctx, "return redis.call('HSET', KEYS[1], 'f', ARGV[1])", []string{key}, 1).Err(); err != nil {
			t.Fatal(err)
		}
	}
	after, err := CommandStats(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int64{"eval": 3, "hset": 3} {
		if got := after[name].Calls - before[name].Calls; got != want {
			t.Errorf("%s: %d calls counted, want %d (stats %+v)", name, got, want, after[name])
		}
	}
	if after["eval"].Usec <= before["eval"].Usec {
		t.Errorf("eval's time did not grow: %+v then %+v", before["eval"], after["eval"])
	}
}
