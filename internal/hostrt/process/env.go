package process

import (
	"strings"
)

// allowedNames are the variables of Junction's own environment that a
// model server inherits by default; every other one (provider API keys,
// DATABASE_URL with its password, AWS credentials, whatever a deployment
// put there) stays with Junction. A server that needs more gets it from
// its model's server.env.
var allowedNames = map[string]bool{
	"PATH": true, "HOME": true, "USER": true, "LOGNAME": true, "SHELL": true,
	"LANG": true, "LANGUAGE": true, "TZ": true, "TMPDIR": true, "LD_LIBRARY_PATH": true,
	// Accelerators that are not picked by an instance's GPUs.
	"HIP_VISIBLE_DEVICES": true, "ROCR_VISIBLE_DEVICES": true, "GPU_DEVICE_ORDINAL": true,
	"OMP_NUM_THREADS": true,
	// The Go runtime's own knobs, for Go model servers (and the tests').
	"GOMAXPROCS": true, "GOMEMLIMIT": true, "GOGC": true, "GODEBUG": true, "GORACE": true, "GOCOVERDIR": true,
}

// allowedPrefixes are name prefixes a model server inherits: the locale,
// SageMaker's container contract, and GPU runtimes.
var allowedPrefixes = []string{"LC_", "SAGEMAKER_", "SM_", "CUDA_", "NVIDIA_"}

// AllowedEnv returns the part of environ (NAME=value entries, as from
// os.Environ) that a model server may see: an allow-list of the system's,
// the locale's, SageMaker's and the GPU runtimes' variables. It is the
// default base environment of a Runtime.
func AllowedEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if allowedName(name) {
			out = append(out, kv)
		}
	}
	return out
}

func allowedName(name string) bool {
	if allowedNames[name] {
		return true
	}
	for _, p := range allowedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
