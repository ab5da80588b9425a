package kubetest

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podWorker runs one pod: its container's process, restarts, probes and
// status reports, until the pod is deleted.
type podWorker struct {
	k     *Kubelet
	pod   *corev1.Pod // as first seen bound to the node
	name  string
	uid   types.UID
	ip    string
	start metav1.Time

	ctx    context.Context // ends when the pod is gone from the API
	cancel context.CancelFunc

	termOnce sync.Once
	term     chan time.Duration // the grace period, once the pod is being deleted

	mu   sync.Mutex
	proc *exec.Cmd
}

func newWorker(k *Kubelet, p *corev1.Pod) *podWorker {
	ip := takeIP()
	if ip == "" || len(p.Spec.Containers) == 0 {
		k.t.Logf("kubetest kubelet: cannot run pod %s (no loopback address left, or no container)", p.Name)
		releaseIP(ip)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &podWorker{k: k, pod: p.DeepCopy(), name: p.Name, uid: p.UID, ip: ip, start: metav1.Now(),
		ctx: ctx, cancel: cancel, term: make(chan time.Duration, 1)}
}

// terminate asks the worker to stop the pod within grace.
func (w *podWorker) terminate(grace time.Duration) {
	w.termOnce.Do(func() { w.term <- grace })
}

func (w *podWorker) running() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.proc != nil
}

// signal sends sig to the container's process group.
func (w *podWorker) signal(sig syscall.Signal) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.proc != nil && w.proc.Process != nil {
		_ = syscall.Kill(-w.proc.Process.Pid, sig)
	}
}

func (w *podWorker) crash() { w.signal(syscall.SIGKILL) }

func (w *podWorker) run() {
	defer w.cancel()
	c := &w.pod.Spec.Containers[0]
	restarts := 0
	var last *corev1.ContainerStateTerminated
	for {
		cmd, err := w.k.startProcess(w.pod, c, w.ip)
		if err != nil {
			w.report(corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "RunContainerError", Message: err.Error()}}, last, restarts, false)
			if !w.wait(backoff(restarts)) {
				w.finish(nil, nil, 0)
				return
			}
			continue
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		w.mu.Lock()
		w.proc = cmd
		w.mu.Unlock()
		code, quit := w.supervise(c, exited, restarts, last)
		w.mu.Lock()
		w.proc = nil
		w.mu.Unlock()
		if quit {
			return
		}
		restarts++
		reason := "Error"
		if code == 0 {
			reason = "Completed"
		}
		now := metav1.Now()
		last = &corev1.ContainerStateTerminated{ExitCode: int32(code), Reason: reason, FinishedAt: now}
		w.report(corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
			Message: "back-off restarting failed container " + c.Name}}, last, restarts, false)
		if !w.wait(backoff(restarts)) {
			w.finish(nil, nil, 0)
			return
		}
	}
}

// backoff is the wait before the nth restart.
func backoff(n int) time.Duration {
	d := restartBackoff
	for i := 1; i < n && d < 2*time.Second; i++ {
		d *= 2
	}
	return d
}

// wait waits d, or returns false when the pod is being deleted or gone
// (and, when deleted, removes it).
func (w *podWorker) wait(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-w.term:
		return false
	case <-w.ctx.Done():
		return false
	}
}

// supervise probes a running process until it exits (its exit code) or
// the pod ends (quit).
func (w *podWorker) supervise(c *corev1.Container, exited chan error, restarts int, last *corev1.ContainerStateTerminated) (code int, quit bool) {
	started := metav1.Now()
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}
	w.report(running, last, restarts, false)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	startupDone := c.StartupProbe == nil
	ready := false
	var startupFails, readyFails, liveFails int32
	tick := time.NewTicker(ProbeEvery)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return exitCode(err), false
		case grace := <-w.term:
			w.finish(exited, &running, grace)
			return 0, true
		case <-w.ctx.Done():
			w.signal(syscall.SIGKILL)
			<-exited
			return 0, true
		case <-tick.C:
		}
		if !startupDone {
			if probe(client, w.ip, c.StartupProbe) {
				startupDone = true
			} else if startupFails++; startupFails >= threshold(c.StartupProbe) {
				w.signal(syscall.SIGKILL)
			}
			continue
		}
		if c.ReadinessProbe == nil || probe(client, w.ip, c.ReadinessProbe) {
			readyFails = 0
			if !ready {
				ready = true
				w.report(running, last, restarts, true)
			}
		} else if readyFails++; ready && readyFails >= threshold(c.ReadinessProbe) {
			ready = false
			w.report(running, last, restarts, false)
		}
		if c.LivenessProbe != nil {
			if probe(client, w.ip, c.LivenessProbe) {
				liveFails = 0
			} else if liveFails++; liveFails >= threshold(c.LivenessProbe) {
				w.signal(syscall.SIGKILL)
			}
		}
	}
}

func threshold(p *corev1.Probe) int32 {
	if p == nil || p.FailureThreshold <= 0 {
		return 3
	}
	return p.FailureThreshold
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		return 1
	}
	return 0
}

// finish stops the process (its preStop sleep, then SIGTERM, SIGKILL
// after the rest of grace) when one runs,
// and removes the pod from the API, as a kubelet confirms a graceful
// deletion.
func (w *podWorker) finish(exited chan error, running *corev1.ContainerState, grace time.Duration) {
	if exited != nil {
		// A preStop sleep runs first, within the grace period.
		if l := w.pod.Spec.Containers[0].Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
			sleep := min(time.Duration(l.PreStop.Sleep.Seconds)*time.Second, grace)
			select {
			case <-time.After(sleep):
				grace -= sleep
			case err := <-exited:
				exited <- err
			case <-w.ctx.Done():
			}
		}
		w.signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(grace):
			w.signal(syscall.SIGKILL)
			<-exited
		case <-w.ctx.Done():
			w.signal(syscall.SIGKILL)
			<-exited
		}
	}
	zero := int64(0)
	uid := w.uid
	err := w.k.client.CoreV1().Pods(w.k.ns).Delete(context.Background(), w.name,
		metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		w.k.t.Logf("kubetest kubelet: remove pod %s: %v", w.name, err)
	}
}

// report writes the pod's status: running on its loopback IP, with the
// container's state and readiness.
func (w *podWorker) report(state corev1.ContainerState, last *corev1.ContainerStateTerminated, restarts int, ready bool) {
	cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
		}
		return corev1.PodCondition{Type: t, Status: s, LastTransitionTime: metav1.Now()}
	}
	started := state.Running != nil
	cs := corev1.ContainerStatus{Name: w.pod.Spec.Containers[0].Name, State: state, Ready: ready,
		RestartCount: int32(restarts), Image: w.pod.Spec.Containers[0].Image, Started: &started,
		ContainerID: "fake://" + w.name + "-" + strconv.Itoa(restarts)}
	if last != nil {
		cs.LastTerminationState = corev1.ContainerState{Terminated: last}
	}
	st := corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: w.ip, PodIPs: []corev1.PodIP{{IP: w.ip}},
		HostIP: "127.0.0.1", HostIPs: []corev1.HostIP{{IP: "127.0.0.1"}}, StartTime: &w.start,
		Conditions: []corev1.PodCondition{cond(corev1.PodScheduled, true), cond(corev1.PodInitialized, true),
			cond(corev1.ContainersReady, ready), cond(corev1.PodReady, ready)},
		ContainerStatuses: []corev1.ContainerStatus{cs},
	}
	if err := w.k.patchStatus(w.name, st); err != nil && !apierrors.IsNotFound(err) {
		w.k.t.Logf("kubetest kubelet: status of %s: %v", w.name, err)
	}
}
