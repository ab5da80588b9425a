package hosting

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/junctionhq/junction/internal/ledger"
)

// InstanceType is an instance type's hourly price and the resources the
// local runtime gives an instance of it.
type InstanceType struct {
	Type        string  `json:"type" yaml:"type"`
	Accelerator string  `json:"accelerator,omitempty" yaml:"accelerator"`
	USDPerHour  float64 `json:"usd_per_hour" yaml:"usd_per_hour"`
	// GPUs is how many GPUs an instance is given (CUDA_VISIBLE_DEVICES).
	GPUs int `json:"gpus" yaml:"gpus"`
	// CPUs and MemoryMB are hints passed to the model server.
	CPUs     float64 `json:"cpus" yaml:"cpus"`
	MemoryMB int     `json:"memory_mb" yaml:"memory_mb"`
}

// InstanceTypes is the instance catalog.
type InstanceTypes map[string]InstanceType

var gpuCount = regexp.MustCompile(`^(\d+)x NVIDIA`)

// sizes maps an instance size suffix to vCPUs and GiB of memory, as the
// ml.* families are shaped.
var sizes = map[string][2]float64{
	"large": {2, 8}, "xlarge": {4, 16}, "2xlarge": {8, 32}, "4xlarge": {16, 64}, "8xlarge": {32, 128},
	"12xlarge": {48, 192}, "16xlarge": {64, 256}, "24xlarge": {96, 384}, "48xlarge": {192, 768},
}

// CatalogInstances derives the instance catalog from the price catalog:
// the GPU count from the accelerator ("2x NVIDIA ..." is two; a single
// NVIDIA accelerator one; Inferentia and Trainium none, as they are not
// CUDA devices), CPU and memory from the size suffix.
func CatalogInstances(c *ledger.Catalog) InstanceTypes {
	out := InstanceTypes{}
	for _, in := range c.Instances {
		it := InstanceType{Type: in.Type, Accelerator: in.Accelerator, USDPerHour: in.USDPerHour}
		if m := gpuCount.FindStringSubmatch(in.Accelerator); m != nil {
			it.GPUs, _ = strconv.Atoi(m[1])
		} else if strings.Contains(in.Accelerator, "NVIDIA") {
			it.GPUs = 1
		}
		if i := strings.LastIndexByte(in.Type, '.'); i >= 0 {
			if sz, ok := sizes[in.Type[i+1:]]; ok {
				it.CPUs, it.MemoryMB = sz[0], int(sz[1]*1024)
			}
		}
		out[in.Type] = it
	}
	return out
}

// Known reports whether typ is in the catalog.
func (t InstanceTypes) Known(typ string) bool {
	_, ok := t[typ]
	return ok
}
