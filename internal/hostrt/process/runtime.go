// Package process is Junction's embedded hostrt.Runtime: it runs each
// model-server instance as a child process on this machine, on a loopback
// port of its own, and supervises it (readiness, health probes, restarts
// with backoff, graceful stop).
//
// Everything about an instance lives under root/<ID>/: the server's working
// directory (work/), its stdout and stderr (output.log, rotated to
// output.log.1), and a state file (instance.json) that lets the next
// Junction adopt a server still running after a restart (see
// Runtime.Recover). Servers run in their own process groups and write to
// their log file directly, so they outlive the Junction that started them.
//
// The package needs Linux: it reads process start times and process groups
// from /proc. It isolates nothing: no containers, no cgroups, no resource
// limits (the Spec's CPUs and MemoryMB are passed on as hints). One Runtime
// owns its root; a second Runtime on the same root fails until the first
// has detached or exited.
package process

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/junctionhq/junction/internal/hostrt"
)

// DefaultBackoff and DefaultMaxBackoff bound the wait before a failed
// instance is started again: the first step, doubled after each failure up
// to the maximum, and back to the first step once an instance has stayed
// ready for a minute.
const (
	DefaultBackoff    = 250 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

const (
	// lockName is the file in root whose lock says which Junction owns it.
	lockName = "runtime.lock"
	// healthyReset is how long an instance must stay ready for its restart
	// backoff to start again from the first step.
	healthyReset = time.Minute
)

// ErrDetached is returned by a Runtime, and its instances' Stop, after
// Detach.
var ErrDetached = errors.New("process runtime: detached")

// Runtime runs model-server instances as child processes. It is safe for
// concurrent use.
type Runtime struct {
	root       string
	workRoot   string
	log        *slog.Logger
	env        []string
	logLimit   int64
	backoff    time.Duration
	backoffMax time.Duration
	client     *http.Client
	lock       *os.File

	// recoverMu keeps Detach from running while Recover adopts.
	recoverMu sync.Mutex

	mu        sync.Mutex
	detached  bool
	instances map[string]*Instance // by ID, until stopped
	ports     map[int]string       // port -> ID of the instance it was given to
	// recovering holds the IDs of leftovers that Recover is deciding
	// about, so that Start cannot take one while its directory may yet be
	// removed.
	recovering map[string]bool
	// freeGPUs are the GPU indexes not given to an instance (WithGPUs).
	freeGPUs []int
}

var _ hostrt.Runtime = (*Runtime)(nil)

// Option configures a Runtime.
type Option func(*Runtime)

// WithLogger sets where the runtime logs instance starts, failures and
// stops; the default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(r *Runtime) {
		if l != nil {
			r.log = l
		}
	}
}

// WithEnv sets the environment every server starts from, before its Spec's
// Env and the runtime's own variables are added. The default is the
// allow-listed part of Junction's own environment, AllowedEnv(os.Environ()),
// so that Junction's secrets stay away from model servers.
func WithEnv(env []string) Option {
	return func(r *Runtime) { r.env = append([]string(nil), env...) }
}

// WithWorkRoot sets the directory under which each server gets its
// working directory (one per instance, removed when it stops). The default
// is a directory in os.TempDir() named after the runtime's root: outside
// the root, and so outside Junction's data directory, whose files a server
// must not reach by relative paths.
func WithWorkRoot(dir string) Option {
	return func(r *Runtime) { r.workRoot = dir }
}

// WithLogLimit sets the size at which an instance's log is rotated
// (DefaultLogLimit unless set; 0 or less never rotates).
func WithLogLimit(bytes int64) Option {
	return func(r *Runtime) { r.logLimit = bytes }
}

// WithBackoff sets the wait before a failed instance is started again: first
// after the first failure, doubled after each further one up to max.
func WithBackoff(first, max time.Duration) Option {
	return func(r *Runtime) {
		if first > 0 {
			r.backoff = first
		}
		if max >= r.backoff {
			r.backoffMax = max
		}
	}
}

// New returns a Runtime keeping its instances under root, which it creates
// if needed and locks against other Junctions.
func New(root string, opts ...Option) (*Runtime, error) {
	if err := supported(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("process runtime: root: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("process runtime: root: %w", err)
	}
	r := &Runtime{
		root: abs, log: slog.Default(), env: AllowedEnv(os.Environ()), logLimit: DefaultLogLimit,
		backoff: DefaultBackoff, backoffMax: DefaultMaxBackoff,
		instances: map[string]*Instance{}, ports: map[int]string{}, recovering: map[string]bool{},
	}
	for _, o := range opts {
		o(r)
	}
	if r.workRoot == "" {
		sum := sha256.Sum256([]byte(abs))
		r.workRoot = filepath.Join(os.TempDir(), "junction-work-"+hex.EncodeToString(sum[:6]))
	}
	if r.workRoot, err = filepath.Abs(r.workRoot); err != nil {
		return nil, fmt.Errorf("process runtime: work root: %w", err)
	}
	if err := os.MkdirAll(r.workRoot, 0o755); err != nil {
		return nil, fmt.Errorf("process runtime: work root: %w", err)
	}
	r.client = &http.Client{
		// A fresh connection per probe: restarted servers come back on new
		// ports, and idle connections to dead ones would pile up.
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if err := r.takeLock(); err != nil {
		return nil, err
	}
	return r, nil
}

// takeLock locks root/runtime.lock for this Runtime and writes Junction's
// pid in it, for the error another Junction gets.
func (r *Runtime) takeLock() error {
	path := filepath.Join(r.root, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("process runtime: %w", err)
	}
	if err := lockFile(f); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		return fmt.Errorf("process runtime: %s is in use by another Junction (pid %s): %w",
			r.root, strings.TrimSpace(string(holder)), err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	r.lock = f
	return nil
}

// Root is the directory holding the runtime's instances.
func (r *Runtime) Root() string { return r.root }

// Start spawns the server described by spec; see hostrt.Runtime.
func (r *Runtime) Start(ctx context.Context, spec hostrt.Spec) (hostrt.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("process runtime: instance %q: %w", spec.ID, err)
	}
	spec = spec.WithDefaults()
	path, err := exec.LookPath(spec.Command)
	if err != nil {
		return nil, fmt.Errorf("process runtime: instance %s: cannot run command %q: %w", spec.ID, spec.Command, err)
	}
	if path, err = filepath.Abs(path); err != nil {
		return nil, fmt.Errorf("process runtime: instance %s: %w", spec.ID, err)
	}
	if spec.ModelDir != "" {
		if spec.ModelDir, err = filepath.Abs(spec.ModelDir); err != nil {
			return nil, fmt.Errorf("process runtime: instance %s: model dir: %w", spec.ID, err)
		}
	}
	pooled := spec.GPUCount > 0 && len(spec.GPUs) == 0
	if pooled {
		r.mu.Lock()
		spec.GPUs = r.takeGPUs(spec.GPUCount)
		r.mu.Unlock()
	}
	in := newInstance(r, spec, path)
	in.pooledGPUs = pooled
	if err := r.claim(in); err != nil {
		r.mu.Lock()
		if pooled {
			r.giveGPUs(spec.GPUs)
		}
		r.mu.Unlock()
		return nil, err
	}
	if err := errors.Join(os.MkdirAll(in.dir, 0o755), os.MkdirAll(in.workDir(), 0o755)); err != nil {
		r.forget(in)
		return nil, fmt.Errorf("process runtime: instance %s: %w", spec.ID, err)
	}
	p, err := in.spawn()
	if err != nil {
		os.RemoveAll(in.dir)
		os.RemoveAll(in.workDir())
		r.forget(in)
		return nil, fmt.Errorf("process runtime: instance %s: %w", spec.ID, err)
	}
	go in.supervise(p)
	return in, nil
}

// claim registers in under its ID, which must be free.
func (r *Runtime) claim(in *Instance) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.detached {
		return ErrDetached
	}
	if r.instances[in.spec.ID] != nil || r.recovering[in.spec.ID] {
		return fmt.Errorf("process runtime: instance %s already exists", in.spec.ID)
	}
	r.instances[in.spec.ID] = in
	return nil
}

// reserve marks id as being recovered, unless an instance or another
// Recover has it.
func (r *Runtime) reserve(id string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.detached {
		return false, ErrDetached
	}
	if r.instances[id] != nil || r.recovering[id] {
		return false, nil
	}
	r.recovering[id] = true
	return true, nil
}

// unreserve ends the recovery of id; adopted says it is now an instance.
func (r *Runtime) unreserve(id string, adopted *Instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.recovering, id)
	if adopted != nil {
		r.instances[id] = adopted
	}
}

// forget drops a stopped instance and the ports it held.
func (r *Runtime) forget(in *Instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.instances[in.spec.ID] == in {
		delete(r.instances, in.spec.ID)
		if in.pooledGPUs {
			r.giveGPUs(in.spec.GPUs)
		}
	}
	for port, id := range r.ports {
		if id == in.spec.ID {
			delete(r.ports, port)
		}
	}
}

// newPort picks a free loopback port that no other instance of this runtime
// holds, and records it for id (dropping id's previous port). The kernel
// may hand out a port again soon after it was closed, before the server it
// was meant for has bound it; the record prevents that.
func (r *Runtime) newPort(id string) (int, error) {
	for range 20 {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		r.mu.Lock()
		_, taken := r.ports[port]
		if !taken {
			for p, owner := range r.ports {
				if owner == id {
					delete(r.ports, p)
				}
			}
			r.ports[port] = id
		}
		r.mu.Unlock()
		if !taken {
			return port, nil
		}
	}
	return 0, errors.New("pick a free port: every port offered is held by another instance")
}

// leftover is an instance directory found by Recover that is not adopted.
type leftover struct {
	id     string
	dir    string
	state  *savedState // nil when there is nothing to stop: unreadable state, or a process an instance runs
	reason string
}

// Recover adopts or stops the instances an earlier Junction left under the
// runtime's root; see hostrt.Runtime. Leftovers are stopped in parallel,
// each with its saved StopGrace; ctx bounds the health probes, not the
// stops, so that Recover never returns with an orphan still running.
// Directories holding only the logs of instances stopped earlier are
// removed.
func (r *Runtime) Recover(ctx context.Context, keep func(hostrt.Spec) bool) ([]hostrt.Instance, error) {
	r.recoverMu.Lock()
	defer r.recoverMu.Unlock()
	entries, err := os.ReadDir(r.root)
	if err != nil {
		return nil, fmt.Errorf("process runtime: recover: %w", err)
	}
	var adopted []hostrt.Instance
	var rejects []leftover
	var werr error
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || strings.HasPrefix(id, ".") {
			continue
		}
		mine, err := r.reserve(id)
		if err != nil {
			werr = err
			break
		}
		if !mine {
			continue // this runtime's own instance
		}
		dir := filepath.Join(r.root, id)
		st, err := readState(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			os.RemoveAll(dir)
			os.RemoveAll(filepath.Join(r.workRoot, id))
			r.unreserve(id, nil)
		case err != nil:
			rejects = append(rejects, leftover{id: id, dir: dir, reason: err.Error()})
		default:
			in, reason := r.adopt(ctx, id, st, keep)
			if in == nil {
				rejects = append(rejects, leftover{id: id, dir: dir, state: &st, reason: reason})
			} else {
				adopted = append(adopted, in)
			}
		}
	}
	// A rejected state file may name a process that an instance runs
	// (a copied directory): that process is not a leftover.
	r.mu.Lock()
	running := make([]*Instance, 0, len(r.instances))
	for _, in := range r.instances {
		running = append(running, in)
	}
	r.mu.Unlock()
	inUse := map[int]bool{}
	for _, in := range running {
		if pid := in.Status().PID; pid > 0 {
			inUse[pid] = true
		}
	}
	var wg sync.WaitGroup
	for _, lo := range rejects {
		if lo.state != nil && inUse[lo.state.PID] {
			lo.state = nil
		}
		wg.Go(func() {
			r.discard(lo)
			r.unreserve(lo.id, nil)
		})
	}
	wg.Wait()
	return adopted, errors.Join(werr, ctx.Err())
}

// adopt takes over one leftover if it is alive, wanted and healthy, or says
// why not. The caller has reserved id.
func (r *Runtime) adopt(ctx context.Context, id string, st savedState, keep func(hostrt.Spec) bool) (*Instance, string) {
	if !processAlive(st.PID, st.StartTicks) {
		return nil, fmt.Sprintf("process %d is no longer running", st.PID)
	}
	spec := st.Spec.WithDefaults()
	spec.ID, spec.OnChange = id, nil
	if err := spec.Validate(); err != nil {
		return nil, err.Error()
	}
	if keep != nil && !keep(spec) {
		return nil, "not wanted"
	}
	r.mu.Lock()
	owner, taken := r.ports[st.Port]
	if !taken {
		r.ports[st.Port] = id
		r.holdGPUs(spec.GPUs)
	}
	r.mu.Unlock()
	if taken {
		return nil, fmt.Sprintf("port %d is already held by instance %s", st.Port, owner)
	}
	addr := "127.0.0.1:" + strconv.Itoa(st.Port)
	if err := r.probe(ctx, addr, spec.ProbePath()); err != nil {
		r.releasePort(st.Port, id)
		return nil, "health probe failed: " + err.Error()
	}
	in := newInstance(r, spec, st.Path)
	in.pooledGPUs = spec.GPUCount > 0
	p := adoptProcess(st.PID, st.StartTicks, st.Port, st.Started)
	in.st.Restarts = st.Restarts
	in.setProcess(p)
	in.saveState(p)
	if f, err := openLog(in.LogPath()); err == nil {
		fmt.Fprintf(f, "=== junction %s: instance %s (pid %d on %s) adopted by Junction pid %d ===\n",
			time.Now().UTC().Format(time.RFC3339), id, st.PID, addr, os.Getpid())
		f.Close()
	}
	r.unreserve(id, in)
	r.log.Info("process runtime: adopted instance", "instance", id, "pid", st.PID, "addr", addr, "previous_junction", st.JunctionPID)
	go in.supervise(p)
	return in, ""
}

func (r *Runtime) releasePort(port int, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ports[port] == id {
		delete(r.ports, port)
	}
}

// discard stops whatever still runs of a leftover and removes its
// directory.
func (r *Runtime) discard(lo leftover) {
	defer os.RemoveAll(lo.dir)
	defer os.RemoveAll(filepath.Join(r.workRoot, lo.id))
	if lo.state == nil {
		r.log.Warn("process runtime: removing instance state", "dir", lo.dir, "reason", lo.reason)
		return
	}
	st := lo.state
	grace := st.Spec.WithDefaults().StopGrace
	var alive func() bool
	switch {
	case processAlive(st.PID, st.StartTicks):
		alive = func() bool { return processAlive(st.PID, st.StartTicks) || groupAlive(st.PID) }
	case !pidExists(st.PID):
		// The server died, but what it started may live on in its group.
		// No process has the pid, so the group id is still the server's.
		alive = func() bool { return groupAlive(st.PID) }
	default:
		// The pid now belongs to an unrelated process: leave it alone.
		alive = func() bool { return false }
	}
	if !alive() {
		r.log.Info("process runtime: removing state of a finished instance", "instance", st.Spec.ID, "reason", lo.reason)
		return
	}
	r.log.Info("process runtime: stopping leftover instance", "instance", st.Spec.ID, "pid", st.PID, "reason", lo.reason)
	if err := terminateGroup(st.PID, grace, alive); err != nil {
		r.log.Error("process runtime: leftover instance", "instance", st.Spec.ID, "err", err)
	}
}

// Detach stops supervising every instance and leaves their processes and
// state files in place, for the next Runtime on the same root to Recover;
// then it releases the root. Stop and Start fail with ErrDetached
// afterwards. An instance being stopped is stopped first.
func (r *Runtime) Detach() error {
	r.recoverMu.Lock()
	defer r.recoverMu.Unlock()
	r.mu.Lock()
	if r.detached {
		r.mu.Unlock()
		return nil
	}
	r.detached = true
	list := make([]*Instance, 0, len(r.instances))
	for _, in := range r.instances {
		list = append(list, in)
	}
	r.mu.Unlock()
	for _, in := range list {
		in.detach()
	}
	r.client.CloseIdleConnections()
	return r.lock.Close()
}

// probe asks the server at addr whether it is ready: GET path must answer
// 200 within hostrt.ProbeTimeout.
func (r *Runtime) probe(ctx context.Context, addr, path string) error {
	ctx, cancel := context.WithTimeout(ctx, hostrt.ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fmt.Errorf("GET %s: %w", path, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
	}
	return nil
}
