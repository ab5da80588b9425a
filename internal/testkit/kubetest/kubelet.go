package kubetest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	kubeclient "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// ProbeEvery is how often the fake kubelet runs a pod's probes, whatever
// their periodSeconds say, so that tests see readiness change within
// moments; failure thresholds are kept.
const ProbeEvery = 100 * time.Millisecond

// restartBackoff is the fake kubelet's wait before restarting a crashed
// container (a real kubelet starts at 10 s).
const restartBackoff = 200 * time.Millisecond

// Kubelet plays one node's kubelet (and the scheduler) in one namespace:
// it binds every new pod there to its node, runs each pod's single
// container as a local process on a loopback address of its own
// (127.0.0.N) with the pod's command, arguments and environment ($(VAR)
// references and the status.podIP field expanded as a kubelet would),
// probes it as the pod's startup, readiness and liveness probes say, and
// reports the pod's IP, phase, container state and readiness through the
// API server's status subresource. A container that exits is restarted
// (its restart count and last state reported, CrashLoopBackOff while it
// waits); a pod being deleted has its process stopped (its preStop
// sleep, SIGTERM, SIGKILL after the grace period) and is then removed.
//
// Images are not pulled: the container's command must be an executable on
// this machine. Volumes are not mounted: a path a container reads must
// exist here (Junction's artifact volume is mounted at the same path as
// Junction's own artifact cache, which in a test is the same directory).
type Kubelet struct {
	t      testing.TB
	client kubeclient.Interface
	ns     string
	node   string
	dir    string
	env    []string
	stop   chan struct{}

	mu   sync.Mutex
	pods map[types.UID]*podWorker
	wg   sync.WaitGroup
}

// StartKubelet starts a fake kubelet for namespace ns; env is the base
// environment of every container (PATH and the like; the pod's own env is
// added). It stops, with every process it runs, when the test ends.
func (c *Cluster) StartKubelet(t testing.TB, ns string, env []string) *Kubelet {
	t.Helper()
	k := &Kubelet{t: t, client: c.Client, ns: ns, node: "node-" + ns, dir: t.TempDir(), env: env,
		stop: make(chan struct{}), pods: map[types.UID]*podWorker{}}
	ctx := context.Background()
	gpu := resource.MustParse("8")
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("512Gi"),
		corev1.ResourcePods: resource.MustParse("110"), "nvidia.com/gpu": gpu}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.node}}
	node, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status = corev1.NodeStatus{Capacity: capacity, Allocatable: capacity,
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}}
	if _, err := c.Client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(c.Client, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.sync(obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { k.sync(obj.(*corev1.Pod)) },
		DeleteFunc: k.deleted,
	}); err != nil {
		t.Fatal(err)
	}
	factory.Start(k.stop)
	cache.WaitForCacheSync(k.stop, inf.HasSynced)
	t.Cleanup(func() {
		close(k.stop)
		factory.Shutdown()
		k.mu.Lock()
		for _, w := range k.pods {
			w.cancel()
		}
		k.mu.Unlock()
		k.wg.Wait()
		_ = c.Client.CoreV1().Nodes().Delete(context.Background(), k.node, metav1.DeleteOptions{})
	})
	return k
}

// Node is the node the kubelet binds pods to.
func (k *Kubelet) Node() string { return k.node }

// sync reacts to a pod: bind it, start its worker, or tell its worker it
// is being deleted.
func (k *Kubelet) sync(p *corev1.Pod) {
	select {
	case <-k.stop:
		return
	default:
	}
	if p.Spec.NodeName == "" {
		if p.DeletionTimestamp != nil {
			return
		}
		err := k.client.CoreV1().Pods(k.ns).Bind(context.Background(), &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, UID: p.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: k.node},
		}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			k.t.Logf("kubetest kubelet: bind %s: %v", p.Name, err)
		}
		return
	}
	if p.Spec.NodeName != k.node {
		return
	}
	k.mu.Lock()
	w := k.pods[p.UID]
	if w == nil && p.DeletionTimestamp == nil {
		w = newWorker(k, p)
		if w == nil {
			k.mu.Unlock()
			return
		}
		k.pods[p.UID] = w
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			w.run()
			k.mu.Lock()
			delete(k.pods, p.UID)
			k.mu.Unlock()
			releaseIP(w.ip)
		}()
	}
	k.mu.Unlock()
	if w == nil && p.DeletionTimestamp != nil {
		// Never started here: confirm the deletion at once.
		zero := int64(0)
		uid := p.UID
		_ = k.client.CoreV1().Pods(k.ns).Delete(context.Background(), p.Name,
			metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
		return
	}
	if w != nil && p.DeletionTimestamp != nil {
		grace := int64(30)
		if p.DeletionGracePeriodSeconds != nil {
			grace = *p.DeletionGracePeriodSeconds
		}
		w.terminate(time.Duration(grace) * time.Second)
	}
}

// deleted stops the worker of a pod removed outright.
func (k *Kubelet) deleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	k.mu.Lock()
	w := k.pods[p.UID]
	k.mu.Unlock()
	if w != nil {
		w.cancel()
	}
}

func (k *Kubelet) worker(pod string) *podWorker {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, w := range k.pods {
		if w.name == pod {
			return w
		}
	}
	return nil
}

// Crash kills a pod's model-server process with SIGKILL, as a crashing
// container: the kubelet reports it and restarts it in the same pod.
func (k *Kubelet) Crash(pod string) error {
	w := k.worker(pod)
	if w == nil {
		return fmt.Errorf("kubetest kubelet: no pod %s running", pod)
	}
	w.crash()
	return nil
}

// KillPod loses a pod as a failed node would: its process is killed with
// SIGKILL and the pod is removed from the API at once.
func (k *Kubelet) KillPod(pod string) error {
	w := k.worker(pod)
	if w == nil {
		return fmt.Errorf("kubetest kubelet: no pod %s running", pod)
	}
	w.crash()
	zero := int64(0)
	return k.client.CoreV1().Pods(k.ns).Delete(context.Background(), pod, metav1.DeleteOptions{GracePeriodSeconds: &zero})
}

// Running lists the pods whose process runs now.
func (k *Kubelet) Running() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for _, w := range k.pods {
		if w.running() {
			out = append(out, w.name)
		}
	}
	return out
}

// ipPool hands out loopback addresses 127.0.0.2 to 127.0.0.254, one per
// running pod across every kubelet of the test binary.
var ipPool struct {
	mu   sync.Mutex
	used [256]bool
}

func takeIP() string {
	ipPool.mu.Lock()
	defer ipPool.mu.Unlock()
	for n := 2; n < 255; n++ {
		if !ipPool.used[n] {
			ipPool.used[n] = true
			return "127.0.0." + strconv.Itoa(n)
		}
	}
	return ""
}

func releaseIP(ip string) {
	n, err := strconv.Atoi(strings.TrimPrefix(ip, "127.0.0."))
	if err != nil {
		return
	}
	ipPool.mu.Lock()
	ipPool.used[n] = false
	ipPool.mu.Unlock()
}

// statusPatch is the part of a pod's status the kubelet reports.
type statusPatch struct {
	Status corev1.PodStatus `json:"status"`
}

func (k *Kubelet) patchStatus(name string, st corev1.PodStatus) error {
	b, err := json.Marshal(statusPatch{Status: st})
	if err != nil {
		return err
	}
	_, err = k.client.CoreV1().Pods(k.ns).Patch(context.Background(), name, types.MergePatchType, b, metav1.PatchOptions{}, "status")
	return err
}

// probe runs one HTTP probe against ip.
func probe(client *http.Client, ip string, p *corev1.Probe) bool {
	if p == nil || p.HTTPGet == nil {
		return true
	}
	url := fmt.Sprintf("http://%s:%d%s", ip, p.HTTPGet.Port.IntValue(), p.HTTPGet.Path)
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

// expand replaces $(NAME) with env's value, as the kubelet does in
// commands, arguments and env values; $$ escapes a dollar.
func expand(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) {
			if s[i+1] == '$' {
				b.WriteByte('$')
				i++
				continue
			}
			if s[i+1] == '(' {
				if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
					name := s[i+2 : i+2+end]
					if v, ok := env[name]; ok {
						b.WriteString(v)
						i += 2 + end
						continue
					}
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// containerEnv resolves a container's environment for a pod on ip.
func containerEnv(p *corev1.Pod, c *corev1.Container, ip string) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			switch e.ValueFrom.FieldRef.FieldPath {
			case "status.podIP":
				env[e.Name] = ip
			case "metadata.name":
				env[e.Name] = p.Name
			case "metadata.namespace":
				env[e.Name] = p.Namespace
			case "spec.nodeName":
				env[e.Name] = p.Spec.NodeName
			}
		case e.ValueFrom == nil:
			env[e.Name] = expand(e.Value, env)
		}
	}
	return env
}

// logFile is where a pod's container output goes.
func (k *Kubelet) logFile(p *corev1.Pod) (*os.File, error) {
	return os.OpenFile(filepath.Join(k.dir, p.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// startProcess runs the container's command.
func (k *Kubelet) startProcess(p *corev1.Pod, c *corev1.Container, ip string) (*exec.Cmd, error) {
	env := containerEnv(p, c, ip)
	argv := make([]string, 0, len(c.Command)+len(c.Args))
	for _, a := range append(append([]string(nil), c.Command...), c.Args...) {
		argv = append(argv, expand(a, env))
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("container %s has no command: the fake kubelet cannot run an image's entrypoint", c.Name)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string(nil), k.env...)
	for name, v := range env {
		cmd.Env = append(cmd.Env, name+"="+v)
	}
	cmd.Dir = k.dir
	out, err := k.logFile(p)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}
