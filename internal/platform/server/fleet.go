package server

import (
	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/platform/metrics"
)

// fleet is the endpoints' variants as the fleet metrics see them.
func fleet(eps []*hosting.Endpoint) []metrics.FleetVariant {
	var out []metrics.FleetVariant
	for _, ep := range eps {
		for _, v := range ep.Variants {
			fv := metrics.FleetVariant{Endpoint: ep.Name, Variant: v.Name, Desired: v.DesiredInstanceCount,
				Current: v.CurrentInstanceCount, Instances: map[string]int{}}
			for _, in := range v.Instances {
				fv.Instances[in.State]++
				fv.Restarts += in.Restarts
			}
			out = append(out, fv)
		}
	}
	return out
}
