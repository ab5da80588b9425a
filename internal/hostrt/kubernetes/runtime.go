// Package kubernetes is a hostrt.Runtime that runs each model-server
// instance as a Pod in one namespace of a Kubernetes cluster, through the
// API server (client-go).
//
// It creates bare Pods, one per instance, rather than a Deployment per
// variant: the hosting controller already decides how many instances a
// variant has, which one to drain before it stops, how traffic moves
// between an old fleet and a new one, and when to roll back. A Deployment
// would make those decisions a second time (its own scale-down picks its
// own victim, its own rollout replaces pods on its own schedule) and
// fight the controller. With bare Pods, Kubernetes does what it is good
// at: placing the pod on a node with the resources its instance type asks
// for (CPU, memory, nvidia.com/gpu), restarting a crashed container, and
// probing readiness and liveness.
//
// A pod informer follows every pod of this runtime: an instance is Ready
// while its current pod is Ready (its readiness probe passes) and has an
// IP, and its Addr is that IP and the container port, to which the
// hosting controller sends invocations with its own balancing. A pod that
// stops being ready leaves rotation as soon as the kubelet says so; a
// crashed container (restarted by the kubelet) shows up as a restart and
// a LastError; a pod deleted behind Junction's back is replaced by a new
// pod for the same instance. See docs/kubernetes.md for the pod contract,
// the artifact volume and the RBAC the runtime needs.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	kubeclient "k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/junctionhq/junction/internal/hostrt"
)

// DefaultPort is the container port model servers listen on, as in
// SageMaker.
const DefaultPort = 8080

// DefaultPreStopSleep is Options.PreStopSleep's default: long enough for
// the replicas that follow the lease holder's routing (about a second
// behind) to drop a deleted pod.
const DefaultPreStopSleep = 2 * time.Second

// ErrDetached is returned by a Runtime, and its instances' Stop, after
// Detach.
var ErrDetached = errors.New("kubernetes runtime: detached")

// Options configures a Runtime.
type Options struct {
	// Namespace is where the pods run (required).
	Namespace string
	// Owner tells this Junction's pods from another's in the same
	// namespace (label junction.dev/owner); default "junction".
	Owner string
	// DefaultImage runs instances whose model names no image: usually
	// the Junction image, whose binary serves the reference model.
	DefaultImage string
	// ImagePullPolicy and ServiceAccount apply to instances whose model
	// sets none; empty leaves them to the cluster.
	ImagePullPolicy string
	ServiceAccount  string
	// Port is the container port the server listens on
	// (SAGEMAKER_BIND_TO_PORT); default DefaultPort.
	Port int
	// Artifacts is the volume that holds Junction's artifact cache; see
	// ArtifactVolume. Without one, SM_MODEL_DIR is /opt/ml/model and the
	// image must carry its model there.
	Artifacts ArtifactVolume
	// PreStopSleep keeps a pod's server answering this long after the
	// pod is deleted, before it is sent SIGTERM (a preStop sleep hook):
	// every Junction replica takes the pod out of rotation meanwhile,
	// so that no call is sent to a server that has stopped listening.
	// Zero means DefaultPreStopSleep; negative, none. The pod's grace
	// period is the stop grace plus this.
	PreStopSleep time.Duration
	// Log receives pod failures and replacements; default slog.Default().
	Log *slog.Logger
}

// ArtifactVolume is a volume that Junction and its model-server pods both
// mount at Root: Junction unpacks artifacts under Root, and each pod
// mounts the volume read-only at the same path, so that SM_MODEL_DIR
// names the same directory in both. Set Claim (a PersistentVolumeClaim
// that can be mounted by many pods, ReadWriteMany or ReadOnlyMany) or
// HostPath (a node directory, for single-node clusters such as k3s).
type ArtifactVolume struct {
	Root     string
	Claim    string
	HostPath bool
}

func (a ArtifactVolume) source() corev1.VolumeSource {
	if a.HostPath {
		t := corev1.HostPathDirectory
		return corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: a.Root, Type: &t}}
	}
	return corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: a.Claim, ReadOnly: true}}
}

// Runtime runs instances as pods. It is safe for concurrent use.
type Runtime struct {
	client kubeclient.Interface
	opts   Options
	log    *slog.Logger
	pods   listersv1.PodNamespaceLister
	stop   chan struct{}

	mu        sync.Mutex
	detached  bool
	instances map[string]*Instance // by ID, until stopped
	// gone is closed and replaced whenever a pod of this runtime is
	// deleted, for those waiting for one to go.
	gone chan struct{}
}

var _ hostrt.Runtime = (*Runtime)(nil)

// New starts a Runtime on client: it watches the namespace's pods of this
// owner and returns once the watch has caught up.
func New(ctx context.Context, client kubeclient.Interface, opts Options) (*Runtime, error) {
	if opts.Namespace == "" {
		return nil, errors.New("kubernetes runtime: a namespace is required")
	}
	if opts.Owner == "" {
		opts.Owner = "junction"
	}
	if opts.PreStopSleep == 0 {
		opts.PreStopSleep = DefaultPreStopSleep
	}
	if opts.Port <= 0 {
		opts.Port = DefaultPort
	}
	if a := opts.Artifacts; a.Root != "" && a.Claim == "" && !a.HostPath {
		return nil, errors.New("kubernetes runtime: the artifact volume needs a claim or host_path")
	}
	r := &Runtime{client: client, opts: opts, log: opts.Log, stop: make(chan struct{}),
		instances: map[string]*Instance{}, gone: make(chan struct{})}
	if r.log == nil {
		r.log = slog.Default()
	}
	selector := labels.SelectorFromSet(labels.Set{LabelManagedBy: managedBy, LabelOwner: opts.Owner}).String()
	factory := informers.NewSharedInformerFactoryWithOptions(client, 10*time.Minute,
		informers.WithNamespace(opts.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	inf := factory.Core().V1().Pods()
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.podChanged(obj) },
		UpdateFunc: func(_, obj any) { r.podChanged(obj) },
		DeleteFunc: r.podDeleted,
	}); err != nil {
		return nil, err
	}
	r.pods = inf.Lister().Pods(opts.Namespace)
	factory.Start(r.stop)
	synced := make(chan bool, 1)
	go func() { synced <- cache.WaitForCacheSync(r.stop, inf.Informer().HasSynced) }()
	select {
	case ok := <-synced:
		if !ok {
			close(r.stop)
			return nil, errors.New("kubernetes runtime: the pod watch did not start")
		}
	case <-ctx.Done():
		close(r.stop)
		return nil, fmt.Errorf("kubernetes runtime: waiting for the pod watch: %w", ctx.Err())
	}
	return r, nil
}

// Start creates the pod for spec and returns once the API server has
// accepted it; readiness follows through the Instance.
func (r *Runtime) Start(ctx context.Context, spec hostrt.Spec) (hostrt.Instance, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	spec = spec.WithDefaults()
	if _, err := r.buildPod(spec); err != nil { // fail at once on what no retry mends
		return nil, err
	}
	in := newInstance(r, spec, false)
	r.mu.Lock()
	if r.detached {
		r.mu.Unlock()
		return nil, ErrDetached
	}
	if _, used := r.instances[spec.ID]; used {
		r.mu.Unlock()
		return nil, fmt.Errorf("kubernetes runtime: instance %s already exists", spec.ID)
	}
	r.instances[spec.ID] = in
	r.mu.Unlock()
	if err := in.createPod(ctx); err != nil {
		r.forget(in)
		return nil, err
	}
	return in, nil
}

// Recover adopts the pods an earlier Junction left: for each instance, its
// newest pod that is not being deleted, if keep accepts the saved spec and
// the pod is ready; every other pod of this owner is deleted, and Recover
// returns once they are gone.
func (r *Runtime) Recover(ctx context.Context, keep func(hostrt.Spec) bool) ([]hostrt.Instance, error) {
	pods, err := r.pods.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	newest := map[string]*corev1.Pod{}
	var doomed []*corev1.Pod
	for _, p := range pods {
		id := p.Annotations[AnnotationInstanceID]
		r.mu.Lock()
		_, live := r.instances[id]
		r.mu.Unlock()
		if live {
			continue // this runtime's own
		}
		if p.DeletionTimestamp != nil || id == "" {
			doomed = append(doomed, p)
			continue
		}
		if cur := newest[id]; cur == nil || cur.CreationTimestamp.Before(&p.CreationTimestamp) {
			if cur != nil {
				doomed = append(doomed, cur)
			}
			newest[id] = p
		} else {
			doomed = append(doomed, p)
		}
	}
	var adopted []hostrt.Instance
	for id, p := range newest {
		spec, err := savedSpec(p)
		ok := err == nil && spec.ID == id && keep(spec) && podReady(p)
		if ok {
			in := newInstance(r, spec, true)
			in.pod = p.Name
			r.mu.Lock()
			if r.detached {
				r.mu.Unlock()
				return nil, ErrDetached
			}
			r.instances[id] = in
			r.mu.Unlock()
			in.observe(p)
			adopted = append(adopted, in)
			continue
		}
		doomed = append(doomed, p)
	}
	for _, p := range doomed {
		if err := r.deletePod(ctx, p.Name, nil); err != nil {
			return adopted, err
		}
	}
	for _, p := range doomed {
		if err := r.waitGone(ctx, p.Name); err != nil {
			return adopted, err
		}
	}
	return adopted, nil
}

// Detach stops watching pods and leaves them running, for a later Junction
// (or another replica) to Recover.
func (r *Runtime) Detach() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.detached {
		return nil
	}
	r.detached = true
	close(r.stop)
	for _, in := range r.instances {
		in.detach()
	}
	r.instances = map[string]*Instance{}
	return nil
}

// forget drops a stopped instance.
func (r *Runtime) forget(in *Instance) {
	r.mu.Lock()
	if r.instances[in.spec.ID] == in {
		delete(r.instances, in.spec.ID)
	}
	r.mu.Unlock()
}

// instanceOf is the live instance a pod belongs to, if the pod is its
// current one.
func (r *Runtime) instanceOf(p *corev1.Pod) *Instance {
	r.mu.Lock()
	in := r.instances[p.Annotations[AnnotationInstanceID]]
	r.mu.Unlock()
	return in
}

func (r *Runtime) podChanged(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if in := r.instanceOf(p); in != nil {
		in.podUpdated(p)
	}
}

func (r *Runtime) podDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	r.mu.Lock()
	close(r.gone)
	r.gone = make(chan struct{})
	r.mu.Unlock()
	if in := r.instanceOf(p); in != nil {
		in.podGone(p)
	}
}

// deletePod deletes a pod, with grace seconds when set (else the pod's
// own); a pod already gone is no error.
func (r *Runtime) deletePod(ctx context.Context, name string, grace *int64) error {
	err := r.client.CoreV1().Pods(r.opts.Namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: grace})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("kubernetes runtime: delete pod %s: %w", name, err)
	}
	return nil
}

// waitGone returns once the watch has seen pod name deleted.
func (r *Runtime) waitGone(ctx context.Context, name string) error {
	for {
		r.mu.Lock()
		gone := r.gone
		r.mu.Unlock()
		if _, err := r.pods.Get(name); apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-gone:
		case <-r.stop:
			return ErrDetached
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// MetersFromReady reports that instance time counts from a pod's first
// readiness (hostrt.ReadyMetering), not from its creation.
func (r *Runtime) MetersFromReady() bool { return true }
