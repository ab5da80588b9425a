package main

import (
	"slices"
	"time"
)

// Dist summarises a set of durations. Values are microseconds, so that the
// JSON reads without a unit table.
type Dist struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_us"`
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	Max  float64 `json:"max_us"`
}

// summarise sorts ns in place and returns its distribution. Percentiles
// are nearest-rank on the sorted samples: every sample is kept, so there
// is no histogram bucket error.
func summarise(ns []int64) Dist {
	if len(ns) == 0 {
		return Dist{}
	}
	slices.Sort(ns)
	var sum float64
	for _, v := range ns {
		sum += float64(v)
	}
	at := func(q float64) float64 {
		i := int(q*float64(len(ns))+0.5) - 1
		i = max(0, min(i, len(ns)-1))
		return us(ns[i])
	}
	return Dist{
		N:    len(ns),
		Mean: sum / float64(len(ns)) / 1e3,
		P50:  at(0.50),
		P90:  at(0.90),
		P99:  at(0.99),
		Max:  us(ns[len(ns)-1]),
	}
}

func us(ns int64) float64 { return float64(ns) / float64(time.Microsecond) }
