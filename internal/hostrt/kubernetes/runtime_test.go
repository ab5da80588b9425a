package kubernetes_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeclient "k8s.io/client-go/kubernetes"

	"github.com/junctionhq/junction/internal/hosting/modelserver"
	"github.com/junctionhq/junction/internal/hosting/refmodel"
	"github.com/junctionhq/junction/internal/hostrt"
	"github.com/junctionhq/junction/internal/hostrt/kubernetes"
	"github.com/junctionhq/junction/internal/testkit/kubetest"
)

// TestMain lets this test binary serve as the reference model server that
// the fake kubelet runs in each pod, and stops the test cluster at the end.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "model-server" {
		os.Exit(modelserver.Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(kubetest.Run(m))
}

// setup is a namespace with a fake kubelet, and a runtime in it that acts
// as a user holding only the runtime's Role.
type setup struct {
	cluster   *kubetest.Cluster
	ns        string
	kubelet   *kubetest.Kubelet
	client    kubeclient.Interface // as kubetest.RuntimeUser
	artifacts string
	modelDir  string
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	c := kubetest.Start(t)
	s := &setup{cluster: c, ns: c.Namespace(t)}
	c.GrantRuntimeUser(t, s.ns, kubernetes.Rules())
	client, err := kubeclient.NewForConfig(c.RuntimeConfig())
	if err != nil {
		t.Fatal(err)
	}
	s.client = client
	s.kubelet = c.StartKubelet(t, s.ns, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")})
	s.artifacts = t.TempDir()
	s.modelDir = filepath.Join(s.artifacts, "demo")
	if err := refmodel.WriteDemoArtifact(s.modelDir); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *setup) runtime(t *testing.T) *kubernetes.Runtime {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rt, err := kubernetes.New(ctx, s.client, kubernetes.Options{Namespace: s.ns, DefaultImage: "junction:test",
		Artifacts: kubernetes.ArtifactVolume{Root: s.artifacts, Claim: "artifacts"}})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// spec runs this test binary's reference model server, bound to the pod's
// IP as a container binds to its pod's network.
func (s *setup) spec(id string, env map[string]string) hostrt.Spec {
	self, _ := os.Executable()
	return hostrt.Spec{ID: id, Endpoint: "ep", Variant: "v1", ConfigHash: "h1", Command: self,
		Args: []string{"model-server", "--host=$(POD_IP)"}, Env: env, ModelDir: s.modelDir,
		HealthInterval: 100 * time.Millisecond, StopGrace: 5 * time.Second}
}

// recorder keeps every status an instance reported, in order.
type recorder struct {
	mu   sync.Mutex
	seen []hostrt.Status
}

func (r *recorder) add(st hostrt.Status) {
	r.mu.Lock()
	r.seen = append(r.seen, st)
	r.mu.Unlock()
}

func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling the cluster's view; nothing to wait on
	}
}

func invoke(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/invocations", "application/json", strings.NewReader(`{"inputs":"the site is down"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("invocation: %d %s", resp.StatusCode, b)
	}
}

func TestInstanceRunsAsAPodAndSurvivesCrashesAndDeletion(t *testing.T) {
	s := newSetup(t)
	rt := s.runtime(t)
	defer rt.Detach()
	var rec recorder
	spec := s.spec("ep.c1.v1.aa01", nil)
	spec.OnChange = rec.add
	inst, err := rt.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := inst.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	st := inst.Status()
	if !strings.HasPrefix(st.Addr, "127.0.0.") || st.State != hostrt.StateReady {
		t.Fatalf("ready status %+v", st)
	}
	invoke(t, st.Addr)
	pod := inst.(*kubernetes.Instance).Pod()
	got, err := s.cluster.Client.CoreV1().Pods(s.ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels[kubernetes.LabelEndpoint] != "ep" || got.Labels[kubernetes.LabelVariant] != "v1" || got.Spec.NodeName != s.kubelet.Node() {
		t.Fatalf("pod labels %v node %q", got.Labels, got.Spec.NodeName)
	}

	// A crashed container leaves rotation, is restarted by the kubelet in
	// the same pod, and comes back ready with the crash counted.
	if err := s.kubelet.Crash(pod); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the crash to be seen", time.Minute, func() bool { return inst.Status().Restarts == 1 })
	waitFor(t, "ready after the crash", time.Minute, func() bool { return inst.Status().State == hostrt.StateReady })
	if st := inst.Status(); !strings.Contains(st.LastError, "exited with status 137") || inst.(*kubernetes.Instance).Pod() != pod {
		t.Fatalf("after a crash: %+v, pod %s (was %s)", st, inst.(*kubernetes.Instance).Pod(), pod)
	}
	rec.mu.Lock()
	var leftRotation bool
	for _, st := range rec.seen {
		leftRotation = leftRotation || st.State != hostrt.StateReady && st.Restarts == 1
	}
	rec.mu.Unlock()
	if !leftRotation {
		t.Fatal("the crashed instance never reported itself out of rotation")
	}

	// A pod lost with its node is replaced by a new pod, counted as a restart
	// beyond those already counted (the test kubelet may restart a crashed
	// container more than once, so the count is not fixed in advance).
	before := inst.Status().Restarts
	if err := s.kubelet.KillPod(pod); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a replacement pod", time.Minute, func() bool {
		in := inst.(*kubernetes.Instance)
		return in.Pod() != pod && in.Status().State == hostrt.StateReady
	})
	if st := inst.Status(); st.Restarts < before+1 || !strings.Contains(st.LastError, "was deleted") {
		t.Fatalf("after the pod was lost: %+v", st)
	}
	invoke(t, inst.Status().Addr)

	if err := inst.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st := inst.Status(); st.State != hostrt.StateStopped {
		t.Fatalf("stopped status %+v", st)
	}
	pods, err := s.cluster.Client.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 0 {
		t.Fatalf("pods left after Stop: %d (%v)", len(pods.Items), err)
	}
	waitFor(t, "no process left", time.Minute, func() bool { return len(s.kubelet.Running()) == 0 })
}

func TestCrashLoopSaysWhy(t *testing.T) {
	s := newSetup(t)
	rt := s.runtime(t)
	defer rt.Detach()
	inst, err := rt.Start(context.Background(), s.spec("ep.c1.v1.bb02", map[string]string{modelserver.EnvExitAtStart: "7"}))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the crash loop", time.Minute, func() bool {
		st := inst.Status()
		return st.Restarts >= 2 && strings.Contains(st.LastError, "CrashLoopBackOff") && strings.Contains(st.LastError, "exited with status 7")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := inst.Ready(ctx); err == nil {
		t.Fatal("a crash-looping instance reported ready")
	}
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRecoverAdoptsReadyPodsAndDeletesTheRest(t *testing.T) {
	s := newSetup(t)
	rt := s.runtime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var started []hostrt.Instance
	for _, id := range []string{"ep.c1.v1.keep", "ep.c1.v1.drop"} {
		in, err := rt.Start(ctx, s.spec(id, nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		started = append(started, in)
	}
	keepPod := started[0].(*kubernetes.Instance).Pod()
	if err := rt.Detach(); err != nil {
		t.Fatal(err)
	}

	next := s.runtime(t)
	defer next.Detach()
	found, err := next.Recover(ctx, func(sp hostrt.Spec) bool { return strings.HasSuffix(sp.ID, "keep") })
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].ID() != "ep.c1.v1.keep" || !found[0].Status().Adopted || found[0].Status().State != hostrt.StateReady {
		t.Fatalf("adopted %v", found)
	}
	if found[0].(*kubernetes.Instance).Pod() != keepPod || found[0].Spec().Args[1] != "--host=$(POD_IP)" {
		t.Fatalf("adopted pod %s spec %+v", found[0].(*kubernetes.Instance).Pod(), found[0].Spec())
	}
	invoke(t, found[0].Status().Addr)
	pods, err := s.cluster.Client.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 1 || pods.Items[0].Name != keepPod {
		t.Fatalf("pods after Recover: %v (%v)", pods.Items, err)
	}
	if _, err := next.Start(ctx, s.spec("ep.c1.v1.keep", nil)); err == nil {
		t.Fatal("Start reused an adopted instance's ID")
	}
	if err := found[0].Stop(ctx); err != nil {
		t.Fatal(err)
	}
}
