package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/junctionhq/junction/internal/hostrt"
)

// Replacing a deleted pod waits this long after a failed create, doubled
// after each further failure up to replaceBackoffMax.
const (
	replaceBackoff    = 250 * time.Millisecond
	replaceBackoffMax = 30 * time.Second
	// goneGrace is how long Stop waits past the stop grace for the
	// kubelet to confirm a pod's end before it deletes the pod at once.
	goneGrace = 30 * time.Second
)

// Instance is one model server in a pod. When its pod is deleted by
// anyone but Stop, the instance gets a new pod. Its methods are safe for
// concurrent use.
type Instance struct {
	rt   *Runtime
	spec hostrt.Spec // OnChange moved to onChange

	ready   chan struct{} // closed when the instance is first Ready
	done    chan struct{} // closed when the instance is stopped or detached
	stopped chan struct{} // closed when Stop has finished
	stopErr error

	// podMu is held while a pod is created, so that Stop never misses
	// one being made.
	podMu sync.Mutex
	// cbMu orders status changes and their callbacks: a change and its
	// OnChange call happen under it, one at a time.
	cbMu sync.Mutex

	mu       sync.Mutex
	st       hostrt.Status
	onChange func(hostrt.Status)
	pod      string // the current pod's name
	// earlier counts the restarts of earlier pods (their containers'
	// restarts, and each pod's loss); podRestarts is the current pod's.
	earlier     int
	podRestarts int
	isReady     bool // closed(ready)
	stopping    bool
	detached    bool
	stopOnce    sync.Once
	everReady   bool // the current pod has been ready
	lastStatus  string
}

var _ hostrt.Instance = (*Instance)(nil)

func newInstance(r *Runtime, spec hostrt.Spec, adopted bool) *Instance {
	in := &Instance{rt: r, spec: spec, onChange: spec.OnChange,
		ready: make(chan struct{}), done: make(chan struct{}), stopped: make(chan struct{}),
		st: hostrt.Status{ID: spec.ID, State: hostrt.StateStarting, Since: time.Now(), Adopted: adopted}}
	in.spec.OnChange = nil
	return in
}

// savedSpec reads the spec a pod was created with.
func savedSpec(p *corev1.Pod) (hostrt.Spec, error) {
	var s hostrt.Spec
	err := json.Unmarshal([]byte(p.Annotations[AnnotationSpec]), &s)
	return s.WithDefaults(), err
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

// Status is the instance's current status. PID is always 0: the process
// lives in a pod on some node.
func (in *Instance) Status() hostrt.Status {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.st
}

// Pod is the name of the instance's current pod.
func (in *Instance) Pod() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.pod
}

// SetOnChange replaces the spec's OnChange.
func (in *Instance) SetOnChange(f func(hostrt.Status)) {
	in.cbMu.Lock()
	in.mu.Lock()
	in.onChange = f
	in.mu.Unlock()
	in.cbMu.Unlock()
}

// Ready blocks until the instance is first Ready.
func (in *Instance) Ready(ctx context.Context) error {
	select {
	case <-in.ready:
		return nil
	default:
	}
	select {
	case <-in.ready:
		return nil
	case <-in.done:
		return fmt.Errorf("instance %s stopped before it was ready", in.spec.ID)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LogPath is empty: the logs are the pod's, read through the API server.
func (in *Instance) LogPath() string { return "" }

// Logs returns about the last tail bytes of the model server's output,
// from the current pod's container log (through the API server, which
// asks the node's kubelet).
func (in *Instance) Logs(tail int64) (io.ReadCloser, error) {
	opts := &corev1.PodLogOptions{Container: containerName}
	if tail > 0 {
		lines := tail/40 + 10
		opts.TailLines = &lines
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := in.rt.client.CoreV1().Pods(in.rt.opts.Namespace).GetLogs(in.Pod(), opts).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("logs of pod %s: %w", in.Pod(), err)
	}
	if tail > 0 && int64(len(b)) > tail {
		b = b[int64(len(b))-tail:]
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// change applies f to the status and, when it changed, calls OnChange.
func (in *Instance) change(f func(*hostrt.Status)) {
	in.cbMu.Lock()
	defer in.cbMu.Unlock()
	in.mu.Lock()
	old := in.st
	f(&in.st)
	if in.st.State != old.State {
		in.st.Since = time.Now()
	}
	if in.st.State == hostrt.StateReady && !in.isReady {
		in.isReady = true
		close(in.ready)
	}
	st, cb := in.st, in.onChange
	in.mu.Unlock()
	if cb != nil && st != old {
		cb(st)
	}
}

// createPod creates a new pod for the instance and makes it the current
// one.
func (in *Instance) createPod(ctx context.Context) error {
	in.podMu.Lock()
	defer in.podMu.Unlock()
	in.mu.Lock()
	stopping := in.stopping || in.detached
	in.mu.Unlock()
	if stopping {
		return nil
	}
	pod, err := in.rt.buildPod(in.spec)
	if err != nil {
		return err
	}
	in.mu.Lock()
	in.pod, in.everReady = pod.Name, false
	in.mu.Unlock()
	if _, err := in.rt.client.CoreV1().Pods(in.rt.opts.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("kubernetes runtime: create pod for %s: %w", in.spec.ID, err)
	}
	return nil
}

// podUpdated follows the current pod's status.
func (in *Instance) podUpdated(p *corev1.Pod) {
	in.mu.Lock()
	current := p.Name == in.pod
	in.mu.Unlock()
	if current {
		in.observe(p)
	}
}

// observe turns the pod's status into the instance's.
func (in *Instance) observe(p *corev1.Pod) {
	in.change(func(st *hostrt.Status) {
		if in.stopping || in.detached {
			return
		}
		ctr := containerStatus(p)
		restarts := 0
		if ctr != nil {
			restarts = int(ctr.RestartCount)
		}
		in.podRestarts = restarts
		st.Restarts = in.earlier + restarts
		if why := podProblem(p, ctr); why != "" {
			st.LastError = why
		}
		if p.DeletionTimestamp != nil {
			// Deleted behind Junction's back: out of rotation now, and
			// replaced once it is gone.
			st.LastError = fmt.Sprintf("pod %s is being deleted", p.Name)
		}
		running := ctr != nil && ctr.State.Running != nil && p.DeletionTimestamp == nil
		st.Addr = ""
		if running && p.Status.PodIP != "" {
			st.Addr = net.JoinHostPort(p.Status.PodIP, strconv.Itoa(in.rt.opts.Port))
		}
		switch {
		case p.DeletionTimestamp != nil:
			st.State = hostrt.StateRestarting
		case podReady(p):
			st.State = hostrt.StateReady
			in.everReady = true
		case !running && (restarts > 0 || ctr != nil && ctr.State.Terminated != nil):
			st.State = hostrt.StateRestarting
		case running && st.State == hostrt.StateReady:
			st.State = hostrt.StateUnhealthy
			st.LastError = fmt.Sprintf("pod %s is not ready (its readiness probe fails)", p.Name)
		case running && st.State == hostrt.StateUnhealthy:
		default:
			st.State = hostrt.StateStarting
		}
		if !podReady(p) && st.State != hostrt.StateUnhealthy && st.State != hostrt.StateReady {
			st.Addr = ""
		}
		if s := st.LastError; s != in.lastStatus && s != "" {
			in.lastStatus = s
			in.rt.log.Warn("kubernetes runtime: pod trouble", "instance", in.spec.ID, "pod", p.Name, "state", string(st.State), "why", s)
		}
	})
}

// podGone replaces the current pod when it was deleted by anyone but
// Stop (eviction, a drained node, kubectl delete).
func (in *Instance) podGone(p *corev1.Pod) {
	in.mu.Lock()
	replace := p.Name == in.pod && !in.stopping && !in.detached
	in.mu.Unlock()
	if !replace {
		return
	}
	in.change(func(st *hostrt.Status) {
		in.earlier += in.podRestarts + 1
		in.podRestarts = 0
		st.Restarts = in.earlier
		st.State, st.Addr = hostrt.StateRestarting, ""
		st.LastError = fmt.Sprintf("pod %s was deleted", p.Name)
		if p.Status.Reason != "" {
			st.LastError += " (" + p.Status.Reason + ")"
		}
	})
	in.rt.log.Warn("kubernetes runtime: pod deleted; creating another", "instance", in.spec.ID, "pod", p.Name)
	go in.replace()
}

// replace creates a new pod, retrying with backoff until it is made or
// the instance stops.
func (in *Instance) replace() {
	wait := replaceBackoff
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := in.createPod(ctx)
		cancel()
		if err == nil {
			in.change(func(st *hostrt.Status) {
				if !in.stopping && !in.detached && st.State == hostrt.StateRestarting {
					st.State = hostrt.StateStarting
				}
			})
			return
		}
		in.rt.log.Warn("kubernetes runtime: replacing a pod", "instance", in.spec.ID, "err", err)
		in.change(func(st *hostrt.Status) { st.LastError = err.Error() })
		select {
		case <-in.done:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, replaceBackoffMax)
	}
}

// Stop deletes the instance's pod (the kubelet sends SIGTERM, and SIGKILL
// after the stop grace) and returns once the pod is gone.
func (in *Instance) Stop(ctx context.Context) error {
	in.stopOnce.Do(func() { go in.stop() })
	select {
	case <-in.stopped:
		return in.stopErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (in *Instance) stop() {
	defer close(in.stopped)
	in.podMu.Lock()
	in.mu.Lock()
	detached := in.detached
	in.stopping = true
	name := in.pod
	in.mu.Unlock()
	in.podMu.Unlock()
	if detached {
		in.stopErr = ErrDetached
		return
	}
	in.change(func(st *hostrt.Status) { st.State, st.Addr = hostrt.StateStopping, "" })
	grace := in.rt.grace(in.spec)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(grace)*time.Second+goneGrace)
	err := in.rt.deletePod(ctx, name, &grace)
	if err == nil {
		err = in.rt.waitGone(ctx, name)
	}
	cancel()
	if err != nil && err != ErrDetached {
		// The node did not confirm the end (it may be gone): delete the
		// pod at once.
		in.rt.log.Warn("kubernetes runtime: pod did not stop in time; deleting it at once", "pod", name, "err", err)
		zero := int64(0)
		ctx, cancel := context.WithTimeout(context.Background(), goneGrace)
		err = in.rt.deletePod(ctx, name, &zero)
		if err == nil {
			err = in.rt.waitGone(ctx, name)
		}
		cancel()
	}
	in.stopErr = err
	in.change(func(st *hostrt.Status) { st.State = hostrt.StateStopped })
	in.rt.forget(in)
	in.mu.Lock()
	in.closeDone()
	in.mu.Unlock()
}

// closeDone closes done once; in.mu is held.
func (in *Instance) closeDone() {
	select {
	case <-in.done:
	default:
		close(in.done)
	}
}

// detach lets go of the instance without touching its pod.
func (in *Instance) detach() {
	in.mu.Lock()
	in.detached = true
	in.closeDone()
	in.mu.Unlock()
}

// containerStatus is the model server container's status, or nil before
// the kubelet reports one.
func containerStatus(p *corev1.Pod) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == containerName {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// podReady reports that the kubelet says the pod is ready and it has an
// address.
func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.PodIP == "" {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podProblem says what is wrong with a pod, or "": why it cannot be
// scheduled, why its container waits (CrashLoopBackOff, ImagePullBackOff,
// ...) and how the container last ended.
func podProblem(p *corev1.Pod, ctr *corev1.ContainerStatus) string {
	if p.Status.Phase == corev1.PodFailed {
		return fmt.Sprintf("pod %s failed: %s %s", p.Name, p.Status.Reason, p.Status.Message)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason != "" {
			return fmt.Sprintf("pod %s cannot be scheduled: %s", p.Name, c.Message)
		}
	}
	if ctr == nil {
		return ""
	}
	var out string
	if w := ctr.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
		out = w.Reason
		if w.Message != "" {
			out += ": " + w.Message
		}
	}
	last := ctr.State.Terminated
	if last == nil {
		last = ctr.LastTerminationState.Terminated
	}
	if last != nil {
		ended := fmt.Sprintf("container exited with status %d", last.ExitCode)
		if last.Reason != "" {
			ended += " (" + last.Reason + ")"
		}
		if out != "" {
			out += "; " + ended
		} else {
			out = ended
		}
		if ctr.RestartCount > 0 {
			out += fmt.Sprintf(", %d restart(s)", ctr.RestartCount)
		}
	}
	return out
}
