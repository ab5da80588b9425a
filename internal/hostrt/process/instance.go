package process

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/junctionhq/junction/internal/hostrt"
)

// startupPollMax is the longest wait between readiness probes while a
// server starts. Probes begin 5 ms after the spawn and double up to it, so
// a fast server is seen ready within milliseconds and a slow one costs a
// refused connection every 50 ms.
const startupPollMax = 50 * time.Millisecond

// What ended an instance's supervision.
const (
	modeRun    = iota
	modeStop   // Stop was called: terminate the process
	modeDetach // Runtime.Detach was called: leave it running
)

// Instance is one model server supervised by a Runtime. Its methods are
// safe for concurrent use.
type Instance struct {
	rt   *Runtime
	spec hostrt.Spec // OnChange moved to onChange
	path string      // the resolved executable
	dir  string
	// pooledGPUs says spec.GPUs came from the runtime's pool, to be given
	// back when the instance stops.
	pooledGPUs bool

	// ctx ends when the instance is stopped or detached; it cancels
	// probes in flight and wakes the supervisor.
	ctx    context.Context
	cancel context.CancelFunc
	ready  chan struct{} // closed when the instance is first Ready
	done   chan struct{} // closed when the supervisor has returned

	mu       sync.Mutex
	st       hostrt.Status
	onChange func(hostrt.Status)
	mode     int
	isReady  bool
	stopErr  error
}

var _ hostrt.Instance = (*Instance)(nil)

func newInstance(r *Runtime, spec hostrt.Spec, path string) *Instance {
	ctx, cancel := context.WithCancel(context.Background())
	in := &Instance{
		rt: r, spec: spec, path: path, dir: filepath.Join(r.root, spec.ID),
		ctx: ctx, cancel: cancel, ready: make(chan struct{}), done: make(chan struct{}),
		onChange: spec.OnChange,
		st:       hostrt.Status{ID: spec.ID, State: hostrt.StateStarting, Since: time.Now()},
	}
	in.spec.OnChange = nil
	return in
}

// ID is the instance's Spec ID.
func (in *Instance) ID() string { return in.spec.ID }

// Spec is what the instance runs, with defaults filled in and without
// OnChange.
func (in *Instance) Spec() hostrt.Spec {
	s := in.spec
	s.Args = slices.Clone(s.Args)
	s.Env = maps.Clone(s.Env)
	s.GPUs = slices.Clone(s.GPUs)
	return s
}

// Status is the instance's current status.
func (in *Instance) Status() hostrt.Status {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.st
}

// LogPath is the file holding the server's stdout and stderr; the older
// part, once rotated, is LogPath()+".1".
func (in *Instance) LogPath() string { return filepath.Join(in.dir, logName) }

// Logs returns the last tail bytes of the log file (all of it when tail
// <= 0).
func (in *Instance) Logs(tail int64) (io.ReadCloser, error) {
	f, err := os.Open(in.LogPath())
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil && tail > 0 && st.Size() > tail {
		if _, err := f.Seek(st.Size()-tail, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// workDir is the server's working directory, outside the runtime's root.
func (in *Instance) workDir() string { return filepath.Join(in.rt.workRoot, in.spec.ID) }

// SetOnChange replaces the function told of every status change.
func (in *Instance) SetOnChange(f func(hostrt.Status)) {
	in.mu.Lock()
	in.onChange = f
	in.mu.Unlock()
}

// Ready blocks until the instance is first Ready, the instance stops, or
// ctx ends.
func (in *Instance) Ready(ctx context.Context) error {
	select {
	case <-in.ready:
		return nil
	case <-in.done:
		select {
		case <-in.ready:
			return nil
		default:
		}
		st := in.Status()
		if st.LastError != "" {
			return fmt.Errorf("process runtime: instance %s ended before it was ready; last error: %s", in.spec.ID, st.LastError)
		}
		return fmt.Errorf("process runtime: instance %s ended before it was ready", in.spec.ID)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop terminates the server and waits for it to go; see hostrt.Instance.
// It returns ErrDetached after Runtime.Detach, and an error when the
// process group outlasted SIGKILL (its state is then kept, for a later
// Recover to try again).
func (in *Instance) Stop(ctx context.Context) error {
	in.mu.Lock()
	if in.mode == modeRun {
		in.mode = modeStop
		in.cancel()
	}
	mode := in.mode
	in.mu.Unlock()
	if mode == modeDetach {
		return ErrDetached
	}
	select {
	case <-in.done:
		in.mu.Lock()
		defer in.mu.Unlock()
		return in.stopErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// detach ends supervision without touching the process, and waits for the
// supervisor to return.
func (in *Instance) detach() {
	in.mu.Lock()
	if in.mode == modeRun {
		in.mode = modeDetach
		in.cancel()
	}
	in.mu.Unlock()
	<-in.done
}

// change updates the status and tells OnChange. Only the supervisor calls
// it, so OnChange calls never overlap.
func (in *Instance) change(f func(*hostrt.Status)) {
	in.mu.Lock()
	prev := in.st.State
	f(&in.st)
	if in.st.State != prev {
		in.st.Since = time.Now()
	}
	st, cb := in.st, in.onChange
	in.mu.Unlock()
	if cb != nil {
		cb(st)
	}
}

// notify tells OnChange the current status.
func (in *Instance) notify() { in.change(func(*hostrt.Status) {}) }

// setProcess records an adopted process as the instance's, Ready.
func (in *Instance) setProcess(p *proc) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.st.State, in.st.Addr, in.st.PID, in.st.Adopted, in.st.Since = hostrt.StateReady, p.addr(), p.pid, true, time.Now()
	in.isReady = true
	close(in.ready)
}

func (in *Instance) markReady() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.isReady {
		in.isReady = true
		close(in.ready)
	}
}

// spawn starts a new server process on a new port. The status becomes
// Starting; the supervisor tells OnChange.
func (in *Instance) spawn() (*proc, error) {
	port, err := in.rt.newPort(in.spec.ID)
	if err != nil {
		return nil, err
	}
	logPath := in.LogPath()
	if err := rotateLog(logPath, in.rt.logLimit); err != nil {
		in.rt.log.Warn("process runtime: rotate log", "instance", in.spec.ID, "err", err)
	}
	f, err := openLog(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	in.mu.Lock()
	restarts := in.st.Restarts
	in.mu.Unlock()
	fmt.Fprintf(f, "=== junction %s: starting instance %s (restarts: %d) on 127.0.0.1:%d: %s ===\n",
		time.Now().UTC().Format(time.RFC3339), in.spec.ID, restarts, port, commandLine(in.path, in.spec.Args))
	cmd := exec.Command(in.path, in.spec.Args...)
	cmd.Dir = in.workDir()
	cmd.Env = in.environ(port)
	cmd.Stdout, cmd.Stderr = f, f
	p, err := startChild(cmd, port)
	if err != nil {
		fmt.Fprintf(f, "=== junction: start failed: %v ===\n", err)
		return nil, err
	}
	in.saveState(p)
	in.mu.Lock()
	in.st.State, in.st.Addr, in.st.PID, in.st.Adopted, in.st.Since = hostrt.StateStarting, p.addr(), p.pid, false, time.Now()
	in.mu.Unlock()
	in.rt.log.Info("process runtime: started instance", "instance", in.spec.ID, "pid", p.pid, "addr", p.addr(), "restarts", restarts)
	return p, nil
}

// environ is the server's environment: the runtime's base, the spec's
// Env, then the variables the runtime owns, which win.
func (in *Instance) environ(port int) []string {
	s := in.spec
	env := slices.Clip(slices.Clone(in.rt.env))
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		env = append(env, k+"="+s.Env[k])
	}
	p := strconv.Itoa(port)
	env = append(env, "SAGEMAKER_BIND_TO_PORT="+p, "PORT="+p, "JUNCTION_INSTANCE_ID="+s.ID)
	if s.ModelDir != "" {
		env = append(env, "SM_MODEL_DIR="+s.ModelDir)
	}
	if len(s.GPUs) > 0 {
		ids := make([]string, len(s.GPUs))
		for i, g := range s.GPUs {
			ids[i] = strconv.Itoa(g)
		}
		env = append(env, "CUDA_VISIBLE_DEVICES="+strings.Join(ids, ","))
	}
	if s.CPUs > 0 {
		env = append(env, "JUNCTION_CPUS="+strconv.FormatFloat(s.CPUs, 'f', -1, 64))
	}
	if s.MemoryMB > 0 {
		env = append(env, "JUNCTION_MEMORY_MB="+strconv.Itoa(s.MemoryMB))
	}
	// exec.Cmd keeps the last value of a repeated name.
	return env
}

// saveState writes the state file for the running process p.
func (in *Instance) saveState(p *proc) {
	in.mu.Lock()
	restarts := in.st.Restarts
	in.mu.Unlock()
	err := writeState(in.dir, savedState{
		Spec: in.spec, Path: in.path, PID: p.pid, StartTicks: p.startTicks, Port: p.port,
		JunctionPID: os.Getpid(), Started: p.started, Restarts: restarts,
	})
	if err != nil {
		in.rt.log.Warn("process runtime: cannot save instance state; a later Junction will not adopt it", "instance", in.spec.ID, "err", err)
	}
}

// supervise owns the instance's processes from the first spawn until Stop
// or Detach: it waits for readiness, probes health, and replaces a failed
// process after a backoff.
func (in *Instance) supervise(p *proc) {
	defer close(in.done)
	if !p.adopted {
		in.notify() // Starting
	}
	backoff := in.rt.backoff
	for {
		if p != nil {
			reason, quit := in.watch(p)
			if quit {
				in.finish(p)
				return
			}
			if !p.readyAt.IsZero() && time.Since(p.readyAt) >= healthyReset {
				backoff = in.rt.backoff
			}
			in.fail(p, reason)
			p = nil
		}
		wait := time.NewTimer(backoff)
		select {
		case <-in.ctx.Done():
			wait.Stop()
			in.finish(nil)
			return
		case <-wait.C:
		}
		backoff = min(backoff*2, in.rt.backoffMax)
		np, err := in.spawn()
		if err != nil {
			in.rt.log.Error("process runtime: restart failed", "instance", in.spec.ID, "err", err)
			in.change(func(s *hostrt.Status) { s.Restarts++; s.LastError = "restart failed: " + err.Error() })
			continue
		}
		p = np
		in.notify() // Starting
	}
}

// watch follows p until it fails, returning why, or until the instance is
// stopped or detached (quit).
func (in *Instance) watch(p *proc) (reason string, quit bool) {
	if p.readyAt.IsZero() {
		if reason, quit = in.awaitReady(p); reason != "" || quit {
			return reason, quit
		}
	}
	return in.monitor(p)
}

// awaitReady probes a starting server until it answers, exits, or runs out
// of its startup time.
func (in *Instance) awaitReady(p *proc) (reason string, quit bool) {
	path := in.spec.ProbePath()
	deadline := time.NewTimer(in.spec.StartupTimeout)
	defer deadline.Stop()
	wait := 5 * time.Millisecond
	next := time.NewTimer(wait)
	defer next.Stop()
	for {
		select {
		case <-in.ctx.Done():
			return "", true
		case <-p.exited:
			return p.reason, false
		case <-deadline.C:
			return fmt.Sprintf("did not answer %s within %v", path, in.spec.StartupTimeout), false
		case <-next.C:
		}
		if in.rt.probe(in.ctx, p.addr(), path) == nil {
			p.readyAt = time.Now()
			in.change(func(s *hostrt.Status) { s.State = hostrt.StateReady })
			in.markReady()
			in.rt.log.Info("process runtime: instance ready", "instance", in.spec.ID, "addr", p.addr(), "after", p.readyAt.Sub(p.started))
			return "", false
		}
		wait = min(wait*2, startupPollMax)
		next.Reset(wait)
	}
}

// monitor probes a ready server every HealthInterval until it exits or
// fails UnhealthyAfter probes in a row. The log is rotated on the same
// beat.
func (in *Instance) monitor(p *proc) (reason string, quit bool) {
	path := in.spec.ProbePath()
	tick := time.NewTicker(in.spec.HealthInterval)
	defer tick.Stop()
	fails := 0
	for {
		select {
		case <-in.ctx.Done():
			return "", true
		case <-p.exited:
			return p.reason, false
		case <-tick.C:
		}
		if err := rotateLog(in.LogPath(), in.rt.logLimit); err != nil {
			in.rt.log.Warn("process runtime: rotate log", "instance", in.spec.ID, "err", err)
		}
		err := in.rt.probe(in.ctx, p.addr(), path)
		if err == nil {
			fails = 0
			continue
		}
		if in.ctx.Err() != nil {
			return "", true
		}
		if p.hasExited() {
			return p.reason, false
		}
		fails++
		if fails < in.spec.UnhealthyAfter {
			continue
		}
		reason := fmt.Sprintf("%d health checks failed: %v", fails, err)
		in.change(func(s *hostrt.Status) { s.State = hostrt.StateUnhealthy; s.LastError = reason })
		// The server may still answer calls: it keeps running while the
		// router, told by the change above, stops sending it new ones and
		// those on their way arrive, as a preStop sleep does on
		// Kubernetes. A SIGTERM at once closes keep-alive connections a
		// call was just written to, and the caller sees EOF.
		drain := time.NewTimer(min(unhealthyDrain, in.spec.StopGrace))
		defer drain.Stop()
		select {
		case <-in.ctx.Done():
			return "", true
		case <-p.exited:
		case <-drain.C:
		}
		return reason, false
	}
}

// unhealthyDrain is how long an Unhealthy server runs on before it is
// stopped and restarted.
const unhealthyDrain = time.Second

// fail records why p failed and takes it down (SIGTERM, StopGrace,
// SIGKILL) before the restart.
func (in *Instance) fail(p *proc, reason string) {
	in.rt.log.Warn("process runtime: instance failed; restarting", "instance", in.spec.ID, "pid", p.pid, "reason", reason)
	in.change(func(s *hostrt.Status) {
		s.State, s.Addr, s.PID = hostrt.StateRestarting, "", 0
		s.Restarts++
		s.LastError = reason
	})
	if err := p.terminate(in.spec.StopGrace); err != nil {
		in.rt.log.Error("process runtime: failed instance", "instance", in.spec.ID, "err", err)
	}
	p.release()
}

// finish ends supervision: after Stop it terminates p (if any) and
// removes the instance's state, keeping its logs; after Detach it leaves
// everything as it is.
func (in *Instance) finish(p *proc) {
	in.mu.Lock()
	mode := in.mode
	in.mu.Unlock()
	if mode == modeDetach {
		if p != nil {
			p.release()
		}
		return
	}
	in.change(func(s *hostrt.Status) { s.State = hostrt.StateStopping })
	var err error
	if p != nil {
		err = p.terminate(in.spec.StopGrace)
		p.release()
	}
	if err == nil {
		os.Remove(filepath.Join(in.dir, stateName))
		os.RemoveAll(in.workDir())
	} else {
		in.rt.log.Error("process runtime: stop instance", "instance", in.spec.ID, "err", err)
		err = fmt.Errorf("process runtime: stop instance %s: %w", in.spec.ID, err)
	}
	in.rt.forget(in)
	in.mu.Lock()
	in.stopErr = err
	in.mu.Unlock()
	in.change(func(s *hostrt.Status) { s.State, s.Addr, s.PID = hostrt.StateStopped, "", 0 })
	in.rt.log.Info("process runtime: stopped instance", "instance", in.spec.ID)
}

// commandLine renders a command for the log's start marker.
func commandLine(path string, args []string) string {
	parts := []string{strconv.Quote(path)}
	for _, a := range args {
		parts = append(parts, strconv.Quote(a))
	}
	return strings.Join(parts, " ")
}
