package kubernetes

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/junctionhq/junction/internal/hostrt"
)

func TestPodCarriesTheContainerContract(t *testing.T) {
	r := &Runtime{opts: Options{Namespace: "ml", Owner: "junction", DefaultImage: "ghcr.io/x/junction:1", Port: 8080, PreStopSleep: DefaultPreStopSleep,
		ImagePullPolicy: "IfNotPresent", ServiceAccount: "models",
		Artifacts: ArtifactVolume{Root: "/var/lib/junction/artifacts", Claim: "junction-artifacts"}}}
	secs := int64(60)
	spec := hostrt.Spec{
		ID: "Chat_Bot.cfg-1.blue.a1b2c3", Endpoint: "chat-bot", Variant: "blue", ConfigHash: "h123",
		ServerType: hostrt.ServerOpenAI, Command: "vllm", Args: []string{"serve", "--port", "$(SAGEMAKER_BIND_TO_PORT)"},
		Env: map[string]string{"HF_HOME": "/cache", "SAGEMAKER_BIND_TO_PORT": "1"}, ModelDir: "/var/lib/junction/artifacts/ab/model",
		GPUCount: 2, CPUs: 7.5, MemoryMB: 30000, StartupTimeout: 90 * time.Second, HealthInterval: 2 * time.Second,
		Container: hostrt.Container{Image: "vllm/vllm-openai:v0.9", NodeSelector: map[string]string{"gpu": "a10g"},
			Tolerations: []hostrt.Toleration{{Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: &secs}}},
	}.WithDefaults()
	pod, err := r.buildPod(spec)
	if err != nil {
		t.Fatal(err)
	}
	if errs := validation.IsDNS1123Subdomain(pod.Name); len(errs) > 0 || !strings.HasPrefix(pod.Name, "chat-bot-cfg-1-blue-a1b2c3-") {
		t.Errorf("pod name %q: %v", pod.Name, errs)
	}
	for k, v := range pod.Labels {
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("label %s=%q: %v", k, v, errs)
		}
	}
	if pod.Labels[LabelEndpoint] != "chat-bot" || pod.Labels[LabelVariant] != "blue" || pod.Labels[LabelFleet] != "h123" ||
		pod.Labels[LabelOwner] != "junction" || pod.Annotations[AnnotationInstanceID] != spec.ID {
		t.Errorf("labels %v annotations %v", pod.Labels, pod.Annotations)
	}
	c := pod.Spec.Containers[0]
	if c.Image != "vllm/vllm-openai:v0.9" || c.ImagePullPolicy != corev1.PullIfNotPresent || c.Command[0] != "vllm" || c.Args[2] != "$(SAGEMAKER_BIND_TO_PORT)" {
		t.Errorf("container %+v", c)
	}
	env := map[string]corev1.EnvVar{}
	for i, e := range c.Env {
		env[e.Name] = e
		if i == 0 && e.Name != "POD_IP" {
			t.Errorf("POD_IP must come first, so that later values can refer to it; got %s", e.Name)
		}
	}
	if env["SAGEMAKER_BIND_TO_PORT"].Value != "8080" || env["PORT"].Value != "8080" || env["HF_HOME"].Value != "/cache" ||
		env["SM_MODEL_DIR"].Value != spec.ModelDir || env["POD_IP"].ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Errorf("env %+v", c.Env)
	}
	want := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("7500m"), corev1.ResourceMemory: resource.MustParse("30000Mi"),
		ResourceGPU: resource.MustParse("2")}
	for name, q := range want {
		if got := c.Resources.Limits[name]; got.Cmp(q) != 0 {
			t.Errorf("limit %s = %s, want %s", name, got.String(), q.String())
		}
		if got := c.Resources.Requests[name]; got.Cmp(q) != 0 {
			t.Errorf("request %s = %s, want %s", name, got.String(), q.String())
		}
	}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/v1/models" || p.HTTPGet.Port.IntValue() != 8080 {
			t.Fatalf("%s probe %+v", name, p)
		}
	}
	if c.StartupProbe.FailureThreshold*c.StartupProbe.PeriodSeconds != 90 || c.ReadinessProbe.PeriodSeconds != 2 ||
		c.ReadinessProbe.FailureThreshold != 3 || c.LivenessProbe.FailureThreshold <= c.ReadinessProbe.FailureThreshold {
		t.Errorf("probe timings: startup %+v readiness %+v liveness %+v", c.StartupProbe, c.ReadinessProbe, c.LivenessProbe)
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/var/lib/junction/artifacts" || !c.VolumeMounts[0].ReadOnly ||
		pod.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "junction-artifacts" {
		t.Errorf("artifact volume: mounts %+v volumes %+v", c.VolumeMounts, pod.Spec.Volumes)
	}
	if pod.Spec.ServiceAccountName != "models" || *pod.Spec.AutomountServiceAccountToken || pod.Spec.NodeSelector["gpu"] != "a10g" ||
		pod.Spec.Tolerations[0].Key != "nvidia.com/gpu" || *pod.Spec.Tolerations[0].TolerationSeconds != 60 ||
		*pod.Spec.TerminationGracePeriodSeconds != 32 || pod.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("pod spec %+v", pod.Spec)
	}
	// Deleted, the pod answers two seconds more before its SIGTERM, and
	// its grace period covers that and the stop grace.
	if l := c.Lifecycle; l == nil || l.PreStop == nil || l.PreStop.Sleep == nil || l.PreStop.Sleep.Seconds != 2 {
		t.Errorf("lifecycle %+v, want a 2 s preStop sleep", l)
	}
}

func TestPodDefaultsAndRefusals(t *testing.T) {
	r := &Runtime{opts: Options{Namespace: "ml", Owner: "junction", Port: 9000, DefaultImage: "junction:dev"}}
	pod, err := r.buildPod(hostrt.Spec{ID: "ep.c.v.1", Command: "junction", Args: []string{"model-server"}, ModelDir: "/data/m"}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	c := pod.Spec.Containers[0]
	var modelDir string
	for _, e := range c.Env {
		if e.Name == "SM_MODEL_DIR" {
			modelDir = e.Value
		}
	}
	// Without an artifact volume the image carries its model where
	// SageMaker keeps it.
	if c.Image != "junction:dev" || modelDir != "/opt/ml/model" || len(c.VolumeMounts) != 0 || c.ReadinessProbe.HTTPGet.Path != "/ping" ||
		len(c.Resources.Limits) != 0 {
		t.Errorf("container %+v", c)
	}
	r.opts.DefaultImage = ""
	if _, err := r.buildPod(hostrt.Spec{ID: "a", Command: "x"}.WithDefaults()); err == nil || !strings.Contains(err.Error(), "server.image") {
		t.Errorf("no image: %v", err)
	}
	r.opts.DefaultImage = "img"
	r.opts.Artifacts = ArtifactVolume{Root: "/srv/artifacts", HostPath: true}
	if _, err := r.buildPod(hostrt.Spec{ID: "a", Command: "x", ModelDir: "/elsewhere/m"}.WithDefaults()); err == nil ||
		!strings.Contains(err.Error(), "not under the artifact volume") {
		t.Errorf("model dir outside the volume: %v", err)
	}
}

func TestReferenceServerListensOnItsPodAddress(t *testing.T) {
	for _, tc := range []struct {
		command string
		args    []string
		want    string
	}{
		{"/usr/local/bin/junction", []string{"model-server"}, "model-server --host=$(POD_IP)"},
		{"junction", []string{"model-server", "--mode", "openai"}, "model-server --mode openai --host=$(POD_IP)"},
		{"junction", []string{"model-server", "--host", "0.0.0.0"}, "model-server --host 0.0.0.0"},
		{"junction", []string{"model-server", "--host=::"}, "model-server --host=::"},
		{"vllm", []string{"serve"}, "serve"},
		{"junction", []string{"serve"}, "serve"},
	} {
		if got := strings.Join(podArgs(tc.command, tc.args), " "); got != tc.want {
			t.Errorf("podArgs(%q, %q) = %q, want %q", tc.command, tc.args, got, tc.want)
		}
	}
}

func TestLabelValuesStayValidAndDistinct(t *testing.T) {
	long := strings.Repeat("a", 80)
	for _, s := range []string{"", "ok-name", "Has Space", "-lead", long, long + "b", "x/y"} {
		v := labelValue(s)
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("labelValue(%q) = %q: %v", s, v, errs)
		}
	}
	if labelValue(long) == labelValue(long+"b") || labelValue("x/y") == labelValue("x-y") {
		t.Error("different names share a label value")
	}
}

func TestPodProblemSaysWhy(t *testing.T) {
	p := &corev1.Pod{}
	p.Name = "p1"
	ctr := &corev1.ContainerStatus{Name: containerName, RestartCount: 4,
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 7, Reason: "Error"}}}
	if got := podProblem(p, ctr); got != "CrashLoopBackOff: back-off 40s; container exited with status 7 (Error), 4 restart(s)" {
		t.Errorf("crash loop: %q", got)
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
		Message: "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}}
	if got := podProblem(p, nil); !strings.Contains(got, "cannot be scheduled: 0/3 nodes") {
		t.Errorf("unschedulable: %q", got)
	}
}
