// Package helm holds the tests of the Helm chart in junction/: helm lint
// and helm template with the default values and with external databases,
// and assertions on the rendered objects.
package helm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/junctionhq/junction/internal/governance"
	"github.com/junctionhq/junction/internal/hostrt/kubernetes"
	"github.com/junctionhq/junction/internal/platform/config"
	"github.com/junctionhq/junction/internal/platform/server"
)

// EnvHelm is the helm binary; scripts/test.sh sets it.
const EnvHelm = "JUNCTION_HELM"

// helmVersion is the release scripts/test.sh installs.
const helmVersion = "v3.22.1"

func helm(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(EnvHelm); p != "" {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	p := filepath.Join(cache, "junction", "helm-"+helmVersion, "helm")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	t.Skipf("no helm: %s is unset and %s is not installed; run scripts/test.sh, or `GOBIN=%s go install helm.sh/helm/v3/cmd/helm@%s`",
		EnvHelm, p, filepath.Dir(p), helmVersion)
	return ""
}

// kubeVersion is the cluster version lint and template assume: a helm built
// by go install, without the release's link flags, would assume v1.20.
const kubeVersion = "v1.34.3"

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	args = append(args, "--kube-version", kubeVersion)
	cmd := exec.Command(helm(t), args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

var external = []string{
	"--set", "postgresql.bundled=false", "--set", "postgresql.external.url=postgres://j:pw@db.internal:5432/junction",
	"--set", "redis.bundled=false", "--set", "redis.external.existingSecret=cache", "--set", "redis.external.existingSecretKey=url",
	"--set", "autoscaling.enabled=true", "--set", "hosting.artifacts.enabled=true",
}

func TestChartLints(t *testing.T) {
	for name, extra := range map[string][]string{"defaults": nil, "external databases": external} {
		out, err := run(t, append([]string{"lint", "--strict", "junction"}, extra...)...)
		if err != nil {
			t.Errorf("helm lint (%s): %v\n%s", name, err, out)
		}
	}
}

// rendered is helm template's output, decoded.
type rendered struct {
	objs []runtime.Object
}

func render(t *testing.T, extra ...string) rendered {
	t.Helper()
	out, err := run(t, append([]string{"template", "rel", "junction", "--namespace", "ml"}, extra...)...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	var r rendered
	for _, doc := range strings.Split(out, "\n---") {
		if strings.TrimSpace(strings.TrimPrefix(doc, "---")) == "" || !strings.Contains(doc, "kind:") {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("decode: %v\n%s", err, doc)
		}
		r.objs = append(r.objs, obj)
	}
	return r
}

// find returns the rendered object of T's kind named name, or nil.
func find[T runtime.Object](r rendered, name string) T {
	var zero T
	for _, o := range r.objs {
		if v, ok := o.(T); ok && reflect.ValueOf(v).Elem().FieldByName("Name").String() == name {
			return v
		}
	}
	return zero
}

func count[T runtime.Object](r rendered) int {
	n := 0
	for _, o := range r.objs {
		if _, ok := o.(T); ok {
			n++
		}
	}
	return n
}

// junctionConfig parses the rendered junction.yaml as Junction would, with
// the environment the Deployment gives it.
func junctionConfig(t *testing.T, r rendered, env map[string]string) *config.Config {
	t.Helper()
	cm := find[*corev1.ConfigMap](r, "rel-junction")
	if cm == nil {
		t.Fatal("no ConfigMap rel-junction")
	}
	cfg, err := config.Parse([]byte(cm.Data["junction.yaml"]), func(k string) string { return env[k] }, server.ConfigChecks()...)
	if err != nil {
		t.Fatalf("junction.yaml does not load: %v\n%s", err, cm.Data["junction.yaml"])
	}
	return cfg
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

func TestChartRendersWithDefaults(t *testing.T) {
	r := render(t)
	d := find[*appsv1.Deployment](r, "rel-junction")
	if d == nil {
		t.Fatal("no gateway Deployment")
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v", d.Spec.Replicas)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.Image != "ghcr.io/junctionhq/junction:0.1.0" {
		t.Errorf("container %+v", c)
	}
	sc := d.Spec.Template.Spec.SecurityContext
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("not locked down: pod %+v container %+v", sc, c.SecurityContext)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", c.Resources)
	}
	env := envOf(c)
	if ref := env["JUNCTION_DATABASE_URL"].ValueFrom.SecretKeyRef; ref == nil || ref.Name != "rel-junction-postgresql" {
		t.Errorf("database url from %+v", env["JUNCTION_DATABASE_URL"])
	}
	if env["JUNCTION_REDIS_URL"].Value != "redis://rel-junction-redis:6379/0" || env["JUNCTION_ADMIN_KEY"].ValueFrom.SecretKeyRef.Name != "rel-junction-keys" {
		t.Errorf("env %+v", env)
	}
	var masterMounted bool
	for _, m := range c.VolumeMounts {
		masterMounted = masterMounted || m.MountPath == "/var/lib/junction/master.key" && m.SubPath == "master.key"
	}
	if !masterMounted {
		t.Error("every replica needs the same master.key: it is not mounted from the Secret")
	}
	keys := find[*corev1.Secret](r, "rel-junction-keys")
	if keys == nil || len(keys.Data["master.key"]) != 32 || !strings.HasPrefix(string(keys.Data["admin-key"]), "jk-") {
		t.Fatalf("keys secret %+v", keys)
	}

	cfg := junctionConfig(t, r, map[string]string{"JUNCTION_DATABASE_URL": "postgres://junction:x@db:5432/junction",
		"JUNCTION_REDIS_URL": "redis://r:6379/0", "JUNCTION_ADMIN_KEY": "jk-x"})
	k := cfg.Hosting.Kubernetes
	var gov governance.Config
	if err := cfg.Governance.Decode(&gov); err != nil {
		t.Fatal(err)
	}
	if cfg.Hosting.Runtime != config.RuntimeKubernetes || k.Namespace != "ml" || k.Owner != "rel-junction" ||
		k.DefaultImage != "ghcr.io/junctionhq/junction:0.1.0" || k.ArtifactClaim != "" || cfg.Server.Addr != "0.0.0.0:9470" ||
		cfg.Server.Database == "" || gov.RedisURL == "" || cfg.Auth.AdminKey != "jk-x" {
		t.Errorf("junction.yaml: server %+v hosting %+v", cfg.Server, cfg.Hosting)
	}

	role := find[*rbacv1.Role](r, "rel-junction-runtime")
	if role == nil || !reflect.DeepEqual(role.Rules, kubernetes.Rules()) {
		t.Errorf("the chart's Role is not the runtime's Rules():\n%+v\nwant %+v", role, kubernetes.Rules())
	}
	rb := find[*rbacv1.RoleBinding](r, "rel-junction-runtime")
	if rb == nil || rb.Subjects[0].Name != d.Spec.Template.Spec.ServiceAccountName || rb.Subjects[0].Namespace != "ml" {
		t.Errorf("role binding %+v", rb)
	}
	if find[*corev1.ServiceAccount](r, "rel-junction") == nil || find[*corev1.Service](r, "rel-junction").Spec.Ports[0].Port != 9470 {
		t.Error("no service account or service on 9470")
	}
	if pdb := find[*policyv1.PodDisruptionBudget](r, "rel-junction"); pdb == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("pdb %+v", pdb)
	}
	if find[*appsv1.StatefulSet](r, "rel-junction-postgresql") == nil || find[*appsv1.Deployment](r, "rel-junction-redis") == nil {
		t.Error("bundled PostgreSQL and Redis are not rendered")
	}
	if count[*autoscalingv2.HorizontalPodAutoscaler](r) != 0 || count[*corev1.PersistentVolumeClaim](r) != 0 {
		t.Error("HPA or artifact claim rendered though not asked for")
	}
}

func TestChartRendersWithExternalDatabases(t *testing.T) {
	r := render(t, external...)
	if count[*appsv1.StatefulSet](r) != 0 || find[*appsv1.Deployment](r, "rel-junction-redis") != nil {
		t.Error("bundled databases rendered with external ones set")
	}
	d := find[*appsv1.Deployment](r, "rel-junction")
	if d.Spec.Replicas != nil {
		t.Errorf("replicas set (%d) though the HPA owns them", *d.Spec.Replicas)
	}
	env := envOf(d.Spec.Template.Spec.Containers[0])
	if ref := env["JUNCTION_DATABASE_URL"].ValueFrom.SecretKeyRef; ref.Name != "rel-junction-external" || ref.Key != "database-url" {
		t.Errorf("database url from %+v", ref)
	}
	if ref := env["JUNCTION_REDIS_URL"].ValueFrom.SecretKeyRef; ref.Name != "cache" || ref.Key != "url" {
		t.Errorf("redis url from %+v", ref)
	}
	ext := find[*corev1.Secret](r, "rel-junction-external")
	if ext == nil || ext.StringData["database-url"] != "postgres://j:pw@db.internal:5432/junction" {
		t.Errorf("external secret %+v", ext)
	}
	hpa := find[*autoscalingv2.HorizontalPodAutoscaler](r, "rel-junction")
	if hpa == nil || hpa.Spec.ScaleTargetRef.Name != "rel-junction" || *hpa.Spec.MinReplicas != 2 {
		t.Errorf("hpa %+v", hpa)
	}
	pvc := find[*corev1.PersistentVolumeClaim](r, "rel-junction-artifacts")
	if pvc == nil || pvc.Spec.AccessModes[0] != corev1.ReadWriteMany {
		t.Fatalf("artifact claim %+v", pvc)
	}
	var mounted bool
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		mounted = mounted || m.MountPath == "/var/lib/junction/artifacts"
	}
	cfg := junctionConfig(t, r, map[string]string{"JUNCTION_DATABASE_URL": "postgres://j:pw@db:5432/j", "JUNCTION_REDIS_URL": "redis://c:6379/0"})
	if !mounted || cfg.Hosting.Kubernetes.ArtifactClaim != "rel-junction-artifacts" {
		t.Errorf("artifacts: mounted %v, claim in config %q", mounted, cfg.Hosting.Kubernetes.ArtifactClaim)
	}
}

func TestChartRefusesWhatCannotWork(t *testing.T) {
	for name, args := range map[string][]string{
		"no database":                   {"--set", "postgresql.bundled=false"},
		"process runtime, 2 replicas":   {"--set", "hosting.runtime=process"},
		"a runtime that does not exist": {"--set", "hosting.runtime=nomad"},
	} {
		out, err := run(t, append([]string{"template", "rel", "junction"}, args...)...)
		if err == nil {
			t.Errorf("%s: rendered", name)
			continue
		}
		if !strings.Contains(out, "postgresql: set bundled") && !strings.Contains(out, "replicaCount: 1") && !strings.Contains(out, "is not kubernetes or process") {
			t.Errorf("%s: unclear refusal: %s", name, out)
		}
	}
}
