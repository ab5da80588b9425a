// Package hostrt is the contract between Junction's hosting controller and
// whatever runs the model servers behind a hosted endpoint: a Spec says what
// one instance runs, an Instance reports how it is doing, and a Runtime
// starts instances and, after Junction restarts, finds the ones it left
// running.
//
// The package holds only the interface and the types it shares. The embedded
// implementation, which runs each instance as a local child process, is
// hostrt/process; a Kubernetes runtime would sit beside it behind the same
// interface. Deciding how many instances an endpoint needs, routing
// invocations to them and fetching model artifacts belong elsewhere (the
// hosting controller and package blob).
package hostrt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Server types: what kind of HTTP server an instance runs, which decides
// how Junction tells that it is ready.
const (
	// ServerBYOC is a SageMaker bring-your-own-container server: ready when
	// GET /ping answers 200; it serves POST /invocations.
	ServerBYOC = "byoc"
	// ServerOpenAI is an OpenAI-compatible server (vLLM, llama.cpp, TGI...):
	// ready when GET /v1/models answers 200.
	ServerOpenAI = "openai"
)

// Defaults for the Spec fields left zero. They follow SageMaker's hosting
// contract: a container must pass its health check within four minutes of
// starting, a ping times out after two seconds, and a stopped container
// gets SIGKILL thirty seconds after SIGTERM.
const (
	DefaultStartupTimeout = 4 * time.Minute
	DefaultHealthInterval = 2 * time.Second
	DefaultUnhealthyAfter = 3
	DefaultStopGrace      = 30 * time.Second
	// ProbeTimeout bounds one readiness or health probe.
	ProbeTimeout = 2 * time.Second
)

// Spec is what one instance runs and how it is watched. The caller chooses
// the ID; everything but OnChange is saved with a running instance so that a
// later Junction can recognise it (see Runtime.Recover).
type Spec struct {
	// ID names the instance uniquely within a runtime, for example
	// "ep1-blue-v1-0-k3j2". It must be usable as a file name: letters,
	// digits, '.', '_' and '-'.
	ID string `json:"id"`
	// Endpoint and Variant label the instance; the runtime only records them.
	Endpoint string `json:"endpoint,omitempty"`
	Variant  string `json:"variant,omitempty"`
	// ConfigHash is the caller's fingerprint of what the instance runs, so
	// that a later run can decide whether a leftover instance still matches
	// its configuration and may be adopted.
	ConfigHash string `json:"config_hash,omitempty"`
	// ServerType is ServerBYOC or ServerOpenAI; empty means ServerBYOC.
	ServerType string `json:"server_type,omitempty"`
	// Command is the model server's executable, looked up in PATH when it
	// has no slash; Args are its arguments. A runtime that runs containers
	// passes them as the container's command and arguments, and an empty
	// Command there means the image's entrypoint.
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
	// Env is added to the server's environment. The variables the runtime
	// sets itself (SAGEMAKER_BIND_TO_PORT, PORT, SM_MODEL_DIR, ...) win
	// over it.
	Env map[string]string `json:"env,omitempty"`
	// ModelDir is the unpacked model artifact, passed as SM_MODEL_DIR.
	ModelDir string `json:"model_dir,omitempty"`
	// GPUs are the device indexes the instance may use, passed as
	// CUDA_VISIBLE_DEVICES ("0,1"). Empty leaves CUDA_VISIBLE_DEVICES as the
	// environment has it.
	GPUs []int `json:"gpus,omitempty"`
	// GPUCount, when GPUs is empty, asks the runtime for that many of the
	// GPUs it manages; it fills GPUs with the ones it gave (none when too
	// few are free) and takes them back when the instance stops.
	GPUCount int `json:"gpu_count,omitempty"`
	// CPUs and MemoryMB are sizing hints, passed as JUNCTION_CPUS and
	// JUNCTION_MEMORY_MB when positive. The process runtime does not
	// enforce them.
	CPUs     float64 `json:"cpus,omitempty"`
	MemoryMB int     `json:"memory_mb,omitempty"`
	// StartupTimeout is how long a fresh start may take to pass its
	// readiness probe before it is killed and started again.
	StartupTimeout time.Duration `json:"startup_timeout,omitempty"`
	// HealthInterval is the time between health probes of a ready instance.
	HealthInterval time.Duration `json:"health_interval,omitempty"`
	// UnhealthyAfter is how many consecutive failed health probes make a
	// ready instance Unhealthy, after which it is restarted.
	UnhealthyAfter int `json:"unhealthy_after,omitempty"`
	// StopGrace is the time between SIGTERM and SIGKILL when an instance is
	// stopped, or when a failed process is taken down to be replaced.
	StopGrace time.Duration `json:"stop_grace,omitempty"`
	// Container is the image and placement for runtimes that run
	// containers (hostrt/kubernetes); the process runtime ignores it.
	Container Container `json:"container,omitempty"`
	// OnChange, when set, is called with the new status whenever the
	// instance's Status changes (state, address, restarts, last error).
	// Calls for one instance never overlap and come in order; the callback
	// must not block for long, and may call the instance's Status but not
	// its Stop, which waits for the caller.
	OnChange func(Status) `json:"-"`
}

// WithDefaults returns s with its zero timing fields and its empty
// ServerType set to their defaults.
func (s Spec) WithDefaults() Spec {
	if s.ServerType == "" {
		s.ServerType = ServerBYOC
	}
	if s.StartupTimeout <= 0 {
		s.StartupTimeout = DefaultStartupTimeout
	}
	if s.HealthInterval <= 0 {
		s.HealthInterval = DefaultHealthInterval
	}
	if s.UnhealthyAfter <= 0 {
		s.UnhealthyAfter = DefaultUnhealthyAfter
	}
	if s.StopGrace <= 0 {
		s.StopGrace = DefaultStopGrace
	}
	return s
}

// Validate reports every problem with s, one per line, or nil.
func (s Spec) Validate() error {
	var errs []error
	if err := validID(s.ID); err != nil {
		errs = append(errs, err)
	}
	switch s.ServerType {
	case "", ServerBYOC, ServerOpenAI:
	default:
		errs = append(errs, fmt.Errorf("server_type: %q is not %q or %q", s.ServerType, ServerBYOC, ServerOpenAI))
	}
	if s.Command == "" && s.Container.Image == "" {
		errs = append(errs, errors.New("command: must not be empty"))
	}
	if err := s.Container.Validate("container."); err != nil {
		errs = append(errs, err)
	}
	for _, g := range s.GPUs {
		if g < 0 {
			errs = append(errs, fmt.Errorf("gpus: %d is not a device index", g))
		}
	}
	if s.CPUs < 0 || s.MemoryMB < 0 {
		errs = append(errs, errors.New("cpus, memory_mb: must not be negative"))
	}
	return errors.Join(errs...)
}

func validID(id string) error {
	if id == "" {
		return errors.New("id: must not be empty")
	}
	if id == "." || id == ".." || len(id) > 128 {
		return fmt.Errorf("id: %q is not a usable instance id", id)
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r)
		if !ok {
			return fmt.Errorf("id: %q may hold only letters, digits, '.', '_' and '-'", id)
		}
	}
	return nil
}

// ProbePath is the path whose 200 answer means the server is ready and
// healthy: /ping for BYOC servers, /v1/models for OpenAI-compatible ones.
func (s Spec) ProbePath() string {
	if s.ServerType == ServerOpenAI {
		return "/v1/models"
	}
	return "/ping"
}

// State is where an instance is in its life.
type State string

// The states an instance passes through. A fresh instance is Starting until
// its readiness probe passes, then Ready. Failed health probes make it
// Unhealthy; a failed instance (unhealthy, crashed, or too slow to start)
// is Restarting until its replacement process is spawned and Starting. Stop
// makes it Stopping, then Stopped for good.
const (
	StateStarting   State = "Starting"
	StateReady      State = "Ready"
	StateUnhealthy  State = "Unhealthy"
	StateRestarting State = "Restarting"
	StateStopping   State = "Stopping"
	StateStopped    State = "Stopped"
)

// Status is a snapshot of one instance.
type Status struct {
	ID    string
	State State
	// Addr is the server's host:port on loopback ("127.0.0.1:41234"), empty
	// when no process is running.
	Addr string
	// PID is the server's process id, 0 when none is running.
	PID int
	// Restarts counts the times the instance failed and was (or is being)
	// started again.
	Restarts int
	// LastError says why the instance last failed, for example
	// "exited with status 3"; empty until it first fails.
	LastError string
	// Since is when the instance entered State.
	Since time.Time
	// Adopted reports that the running process was started by an earlier
	// Junction and taken over by Recover. A restart replaces it with a
	// process of this runtime's own, which clears Adopted.
	Adopted bool
}

// Instance is one running model server, supervised by a Runtime.
type Instance interface {
	// ID is the Spec's ID.
	ID() string
	// Spec is what the instance runs, with defaults filled in. For an
	// adopted instance it is the spec saved by the Junction that started
	// it.
	Spec() Spec
	// Status is the instance's current status.
	Status() Status
	// Ready blocks until the instance is first Ready and returns nil, or
	// returns an error when ctx ends or the instance stops first.
	Ready(ctx context.Context) error
	// LogPath is the file holding the server's stdout and stderr, for
	// runtimes that keep one on this machine; others return "".
	LogPath() string
	// Logs returns the last tail bytes (all of it when tail <= 0) of the
	// server's stdout and stderr, however the runtime keeps them.
	Logs(tail int64) (io.ReadCloser, error)
	// Stop sends SIGTERM to the server (and everything it started), waits
	// up to the Spec's StopGrace, then sends SIGKILL, and returns once the
	// processes are gone. It wins over any restart in progress. Calling it
	// again, or concurrently, waits for the same stop. If ctx ends first,
	// Stop returns ctx's error and the stop goes on.
	Stop(ctx context.Context) error
	// SetOnChange replaces the spec's OnChange: every later change goes to
	// f. Adopted instances start without one (a saved spec cannot carry a
	// function), so a caller sets it and then reads Status once, which
	// misses nothing.
	SetOnChange(f func(Status))
}

// Runtime starts and recovers instances.
type Runtime interface {
	// Start spawns the server described by spec and returns once the
	// process exists; readiness is reported later through the Instance
	// (Ready, Status, OnChange). It fails at once if the spec is invalid,
	// the ID is in use, or the command cannot be found or executed.
	Start(ctx context.Context, spec Spec) (Instance, error)
	// Recover finds the instances an earlier Junction left running under
	// this runtime's state. An instance whose process is still the one
	// that was started, that keep accepts, and that passes one health probe
	// is adopted (supervised again, Status.Adopted set) and returned; every
	// other leftover is stopped and its state removed. keep sees each
	// leftover's saved spec, without OnChange (see Instance.SetOnChange).
	// When Recover returns, no leftover process remains that was not
	// adopted.
	Recover(ctx context.Context, keep func(Spec) bool) ([]Instance, error)
	// Detach lets go of the runtime's state without stopping what runs,
	// so that a later Junction (or another replica) can Recover it. The
	// Runtime is not used afterwards.
	Detach() error
}
