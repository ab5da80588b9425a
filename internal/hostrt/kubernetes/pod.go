package kubernetes

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/junctionhq/junction/internal/hostrt"
)

// Labels and annotations on every pod the runtime creates. The labels
// select and group pods (kubectl get pods -l junction.dev/endpoint=NAME);
// the annotations carry what a label value cannot hold: the instance's
// full ID and its spec, for Recover.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelOwner     = "junction.dev/owner"
	LabelEndpoint  = "junction.dev/endpoint"
	LabelVariant   = "junction.dev/variant"
	LabelFleet     = "junction.dev/fleet"
	LabelInstance  = "junction.dev/instance"

	AnnotationInstanceID = "junction.dev/instance-id"
	AnnotationSpec       = "junction.dev/spec"
)

const (
	// managedBy is LabelManagedBy's value on the runtime's pods.
	managedBy = "junction"
	// containerName is the model server's container in each pod.
	containerName = "model-server"
	// modelDirInImage is SM_MODEL_DIR when no artifact volume is set up:
	// SageMaker's path, where an image that carries its model keeps it.
	modelDirInImage = "/opt/ml/model"
	// artifactVolume names the pod volume holding the artifact cache.
	artifactVolume = "artifacts"
	// ResourceGPU is the extended resource NVIDIA's device plugin serves.
	ResourceGPU corev1.ResourceName = "nvidia.com/gpu"
)

// labelValue turns s into a valid label value: at most 63 characters of
// letters, digits, '-', '_' and '.', starting and ending with a letter or
// digit. A value that had to change carries a short hash of the original,
// so that two names never collapse into one.
func labelValue(s string) string {
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, s)
	if clean == s && len(s) <= 63 && (s == "" || alnum(s[0]) && alnum(s[len(s)-1])) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	tag := hex.EncodeToString(sum[:4])
	if len(clean) > 54 {
		clean = clean[:54]
	}
	clean = strings.Trim(clean, "-_.")
	if clean == "" {
		return tag
	}
	return clean + "-" + tag
}

func alnum(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' }

// instanceLabel is LabelInstance's value: a hash of the instance ID (IDs
// can be longer than a label value may be).
func instanceLabel(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:10])
}

// podName names one pod of an instance: the ID made DNS-safe and cut
// short, and a random suffix, since a replaced pod's successor must not
// wait for the old name to be released.
func podName(id string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(id) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	base := strings.Trim(b.String(), "-")
	if len(base) > 50 {
		base = strings.TrimRight(base[:50], "-")
	}
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	if base == "" {
		base = "instance"
	}
	return base + "-" + hex.EncodeToString(suffix[:])
}

// podArgs are the container's arguments: the spec's, and for Junction's
// reference model server (junction model-server), which listens on
// loopback unless told otherwise, --host=$(POD_IP) when no --host is
// given, so that it answers on its pod's address.
func podArgs(command string, args []string) []string {
	out := append([]string(nil), args...)
	if filepath.Base(command) != "junction" || len(args) == 0 || args[0] != "model-server" {
		return out
	}
	for _, a := range args {
		if a == "--host" || a == "-host" || strings.HasPrefix(a, "--host=") || strings.HasPrefix(a, "-host=") {
			return out
		}
	}
	return append(out, "--host=$(POD_IP)")
}

// seconds rounds d up to whole seconds, at least min.
func seconds(d time.Duration, min int32) int32 {
	s := int32(math.Ceil(d.Seconds()))
	if s < min {
		return min
	}
	return s
}

// grace is a pod's termination grace period in seconds: the preStop
// sleep, then the stop grace between SIGTERM and SIGKILL.
func (r *Runtime) grace(spec hostrt.Spec) int64 {
	g := int64(seconds(spec.StopGrace, 0))
	if r.opts.PreStopSleep > 0 {
		g += int64(seconds(r.opts.PreStopSleep, 1))
	}
	return g
}

// buildPod is the pod that runs one instance of spec (defaults applied).
func (r *Runtime) buildPod(spec hostrt.Spec) (*corev1.Pod, error) {
	saved, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	c := spec.Container
	image := c.Image
	if image == "" {
		image = r.opts.DefaultImage
	}
	if image == "" {
		return nil, fmt.Errorf("kubernetes runtime: instance %s has no image: set the model's server.image or the runtime's default image", spec.ID)
	}
	port := r.opts.Port
	ctr := corev1.Container{
		Name:  containerName,
		Image: image,
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port), Protocol: corev1.ProtocolTCP}},
	}
	if spec.Command != "" {
		ctr.Command = []string{spec.Command}
	}
	ctr.Args = podArgs(spec.Command, spec.Args)
	pull := c.ImagePullPolicy
	if pull == "" {
		pull = r.opts.ImagePullPolicy
	}
	ctr.ImagePullPolicy = corev1.PullPolicy(pull)

	env, mounts, volumes, err := r.environment(spec)
	if err != nil {
		return nil, err
	}
	ctr.Env, ctr.VolumeMounts = env, mounts
	ctr.Resources = resources(spec)

	probe := func(period int32, failures int) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: spec.ProbePath(), Port: intstr.FromInt32(int32(port)), Scheme: corev1.URISchemeHTTP,
			}},
			PeriodSeconds:    period,
			TimeoutSeconds:   seconds(hostrt.ProbeTimeout, 1),
			FailureThreshold: int32(failures),
			SuccessThreshold: 1,
		}
	}
	every := seconds(spec.HealthInterval, 1)
	// Until the startup probe passes, neither readiness nor liveness
	// runs: a model that loads slowly has its StartupTimeout, as on the
	// process runtime, before the kubelet restarts it.
	ctr.StartupProbe = probe(1, int(seconds(spec.StartupTimeout, 1)))
	ctr.ReadinessProbe = probe(every, spec.UnhealthyAfter)
	// Liveness gives up later than readiness: a server that stops
	// answering leaves rotation first, and is restarted only if it stays
	// silent twice as long.
	ctr.LivenessProbe = probe(every, 2*spec.UnhealthyAfter)

	sa := c.ServiceAccount
	if sa == "" {
		sa = r.opts.ServiceAccount
	}
	if r.opts.PreStopSleep > 0 {
		ctr.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			Sleep: &corev1.SleepAction{Seconds: int64(seconds(r.opts.PreStopSleep, 1))}}}
	}
	grace := r.grace(spec)
	no := false
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      podName(spec.ID),
			Namespace: r.opts.Namespace,
			Labels: map[string]string{
				LabelManagedBy: managedBy,
				LabelOwner:     r.opts.Owner,
				LabelEndpoint:  labelValue(spec.Endpoint),
				LabelVariant:   labelValue(spec.Variant),
				LabelFleet:     labelValue(spec.ConfigHash),
				LabelInstance:  instanceLabel(spec.ID),
			},
			Annotations: map[string]string{AnnotationInstanceID: spec.ID, AnnotationSpec: string(saved)},
		},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{ctr},
			Volumes:                       volumes,
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: &grace,
			ServiceAccountName:            sa,
			// Model servers have no business with the Kubernetes API.
			AutomountServiceAccountToken: &no,
			NodeSelector:                 c.NodeSelector,
			Tolerations:                  tolerations(c.Tolerations),
		},
	}
	return pod, nil
}

// environment is the container's environment and the artifact volume:
// the spec's Env, then the contract's variables, which win.
func (r *Runtime) environment(spec hostrt.Spec) ([]corev1.EnvVar, []corev1.VolumeMount, []corev1.Volume, error) {
	port := strconv.Itoa(r.opts.Port)
	set := map[string]string{}
	for k, v := range spec.Env {
		set[k] = v
	}
	set["SAGEMAKER_BIND_TO_PORT"] = port
	set["PORT"] = port
	modelDir := modelDirInImage
	var mounts []corev1.VolumeMount
	var volumes []corev1.Volume
	if a := r.opts.Artifacts; a.Root != "" && spec.ModelDir != "" {
		rel, err := filepath.Rel(a.Root, spec.ModelDir)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, nil, nil, fmt.Errorf("kubernetes runtime: model directory %s is not under the artifact volume's root %s", spec.ModelDir, a.Root)
		}
		modelDir = spec.ModelDir
		mounts = []corev1.VolumeMount{{Name: artifactVolume, MountPath: a.Root, ReadOnly: true}}
		volumes = []corev1.Volume{{Name: artifactVolume, VolumeSource: a.source()}}
	}
	set["SM_MODEL_DIR"] = modelDir
	if spec.CPUs > 0 {
		set["JUNCTION_CPUS"] = strconv.FormatFloat(spec.CPUs, 'f', -1, 64)
	}
	if spec.MemoryMB > 0 {
		set["JUNCTION_MEMORY_MB"] = strconv.Itoa(spec.MemoryMB)
	}
	names := make([]string, 0, len(set))
	for k := range set {
		names = append(names, k)
	}
	sort.Strings(names)
	env := make([]corev1.EnvVar, 0, len(names)+1)
	// POD_IP first, so that the server's arguments and the variables
	// after it can refer to it as $(POD_IP) (say --host=$(POD_IP) for a
	// server that binds to loopback unless told otherwise).
	env = append(env, corev1.EnvVar{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"},
	}})
	for _, k := range names {
		if k == "POD_IP" {
			continue
		}
		env = append(env, corev1.EnvVar{Name: k, Value: set[k]})
	}
	return env, mounts, volumes, nil
}

// resources are the instance type's CPUs, memory and GPUs, requested and
// limited alike (the Guaranteed QoS class: an instance gets what its type
// promises, and is metered for).
func resources(spec hostrt.Spec) corev1.ResourceRequirements {
	list := corev1.ResourceList{}
	if spec.CPUs > 0 {
		list[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(math.Ceil(spec.CPUs*1000)), resource.DecimalSI)
	}
	if spec.MemoryMB > 0 {
		list[corev1.ResourceMemory] = *resource.NewQuantity(int64(spec.MemoryMB)<<20, resource.BinarySI)
	}
	gpus := spec.GPUCount
	if len(spec.GPUs) > 0 {
		gpus = len(spec.GPUs)
	}
	if gpus > 0 {
		list[ResourceGPU] = *resource.NewQuantity(int64(gpus), resource.DecimalSI)
	}
	if len(list) == 0 {
		return corev1.ResourceRequirements{}
	}
	return corev1.ResourceRequirements{Requests: list, Limits: list.DeepCopy()}
}

func tolerations(ts []hostrt.Toleration) []corev1.Toleration {
	if len(ts) == 0 {
		return nil
	}
	out := make([]corev1.Toleration, len(ts))
	for i, t := range ts {
		out[i] = corev1.Toleration{Key: t.Key, Operator: corev1.TolerationOperator(t.Operator), Value: t.Value,
			Effect: corev1.TaintEffect(t.Effect), TolerationSeconds: t.TolerationSeconds}
	}
	return out
}
