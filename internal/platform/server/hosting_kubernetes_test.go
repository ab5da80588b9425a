package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/junctionhq/junction/internal/hosting"
	"github.com/junctionhq/junction/internal/hosting/modelserver"
	"github.com/junctionhq/junction/internal/hosting/refmodel"
	"github.com/junctionhq/junction/internal/hostrt/kubernetes"
	"github.com/junctionhq/junction/internal/platform/store/storetest"
	"github.com/junctionhq/junction/internal/testkit/junctiontest"
	"github.com/junctionhq/junction/internal/testkit/kubetest"
)

// kubeJunction is Junction on the Kubernetes runtime against the test
// cluster: a namespace of its own, a fake kubelet playing the node, and a
// kubeconfig that grants Junction only the runtime's Role.
type kubeJunction struct {
	*junction
	cluster *kubetest.Cluster
	ns      string
	kubelet *kubetest.Kubelet
}

func startKubeHosted(t *testing.T) *kubeJunction {
	t.Helper()
	c := kubetest.Start(t)
	ns := c.Namespace(t)
	kubeconfig := c.GrantRuntimeUser(t, ns, kubernetes.Rules())
	kubelet := c.StartKubelet(t, ns, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")})
	// Every pod has an address of its own, so they all listen on one port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	extra := fmt.Sprintf("hosting: {health_interval: 100ms, stop_grace: 3s, meter_interval: 100ms, invocation_timeout: 5s, runtime: kubernetes, "+
		"autoscale: {interval: 100ms, window: 1s}, "+
		"kubernetes: {kubeconfig: %q, default_image: junction:test, port: %d, artifact_claim: artifacts}}\n", kubeconfig, port)
	dataDir := t.TempDir()
	j := startHosted(t, dataDir, "", extra)
	return &kubeJunction{junction: j, cluster: c, ns: ns, kubelet: kubelet}
}

// serve runs endpoint "ep" of one variant of the reference model, with
// env added to its server's, on instances pods, and waits until it is
// in service.
func (k *kubeJunction) serve(variant string, instances int, env map[string]string) *hosting.Endpoint {
	k.t.Helper()
	k.model("m", k.artifact(), env)
	k.endpointConfig("c1", hosting.Variant{Name: variant, Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: instances})
	k.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c1"}, http.StatusCreated, nil)
	return k.waitEndpoint("ep", 2*time.Minute, inService)
}

// artifact writes the reference model's artifact inside Junction's
// artifact directory, the volume the pods share with Junction.
func (k *kubeJunction) artifact() string {
	k.t.Helper()
	dir := filepath.Join(k.dataDir, "artifacts", "src", fmt.Sprint(time.Now().UnixNano()))
	if err := refmodel.WriteDemoArtifact(dir); err != nil {
		k.t.Fatal(err)
	}
	return dir
}

// model creates a reference-server model that binds to its pod's IP.
func (k *kubeJunction) model(name, artifact string, env map[string]string) {
	k.t.Helper()
	all := map[string]string{modelserver.EnvFaults: "1"}
	for key, v := range env {
		all[key] = v
	}
	k.admin("POST", "/api/v1/models", hosting.Model{Name: name, Artifact: "file://" + artifact,
		Server: hosting.Server{Type: "byoc", Command: "junction", Args: []string{"model-server", "--host=$(POD_IP)"}, Env: all,
			StartupTimeoutSeconds: 60}}, http.StatusCreated, nil)
}

// pods lists the endpoint's pods that are not being deleted.
func (k *kubeJunction) pods(endpoint string) []string {
	k.t.Helper()
	list, err := k.cluster.Client.CoreV1().Pods(k.ns).List(context.Background(),
		metav1.ListOptions{LabelSelector: kubernetes.LabelEndpoint + "=" + endpoint})
	if err != nil {
		k.t.Fatal(err)
	}
	var out []string
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p.Name)
		}
	}
	return out
}

// podsLeft counts the namespace's pods, those being deleted too.
func (k *kubeJunction) podsLeft() int {
	k.t.Helper()
	list, err := k.cluster.Client.CoreV1().Pods(k.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		k.t.Fatal(err)
	}
	return len(list.Items)
}

func readyInstances(e *hosting.Endpoint) int {
	n := 0
	for _, v := range e.Variants {
		for _, in := range v.Instances {
			if in.State == "Ready" {
				n++
			}
		}
	}
	return n
}

func TestEndpointOnKubernetes(t *testing.T) {
	k := startKubeHosted(t)
	ep := k.serve("primary", 2, nil)
	if pods := k.pods("ep"); len(pods) != 2 {
		t.Fatalf("pods %v, want 2", pods)
	}
	// The hosting lease is a Lease object in the pods' namespace.
	lease, err := k.cluster.Client.CoordinationV1().Leases(k.ns).Get(context.Background(), kubernetes.DefaultLeaseName, metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Fatalf("hosting lease: %+v %v", lease, err)
	}
	for _, in := range ep.Variants[0].Instances {
		if !strings.HasPrefix(in.Addr, "127.0.0.") || in.Addr == "127.0.0.1" {
			t.Fatalf("instance %+v is not on its pod's address", in)
		}
	}

	// Through the AWS SDK, as an application calls SageMaker.
	client := k.sagemakerClient()
	out, err := client.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("ep"), ContentType: aws.String("application/json"), Body: []byte(`{"inputs":"the site is down again"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.InvokedProductionVariant) != "primary" || !strings.Contains(string(out.Body), "predictions") {
		t.Fatalf("InvokeEndpoint: %s %s", aws.ToString(out.InvokedProductionVariant), out.Body)
	}

	// Deleting the endpoint deletes its pods and stops their servers; their
	// time is in the ledger.
	k.admin("DELETE", "/api/v1/endpoints/ep", nil, http.StatusAccepted, nil)
	k.waitPodsGone("ep")
	if h := k.hostingUsage(); len(h) != 1 || h[0].Endpoint != "ep" || h[0].InstanceHours <= 0 || h[0].CostUSD <= 0 {
		t.Fatalf("hosting usage %+v", h)
	}
}

// TestPodDeletedOrLostUnderLoadOnKubernetes: with clients invoking
// steadily, one pod is deleted (kubectl delete pod, an eviction, a node
// drain): it leaves rotation as soon as it is marked for deletion and its
// server answers what it holds through its preStop sleep, so no request
// fails; a replacement pod comes up and takes traffic. Then a pod is lost
// with its node (SIGKILL, removed at once): only requests in flight on it
// may fail (a request that may have killed a server is not replayed onto
// another), none once the replacement is ready. The events say what
// happened.
func TestPodDeletedOrLostUnderLoadOnKubernetes(t *testing.T) {
	k := startKubeHosted(t)
	k.serve("primary", 2, nil)
	replaced := func(gone string) *hosting.Endpoint {
		t.Helper()
		return k.waitEndpoint("ep", time.Minute, func(e *hosting.Endpoint) bool {
			pods := k.pods("ep")
			return readyInstances(e) == 2 && len(pods) == 2 && !slices.Contains(pods, gone)
		})
	}

	l := startLoad(k.junction, "ep", 4)
	l.waitOK(t, 50)
	deleted := k.pods("ep")[0]
	if err := k.cluster.Client.CoreV1().Pods(k.ns).Delete(context.Background(), deleted, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ep := replaced(deleted)
	l.waitOK(t, 100)
	ok, failed, errs := l.finish()
	if failed != 0 {
		t.Fatalf("%d of %d requests failed while pod %s was deleted and replaced: %v", failed, ok+failed, deleted, errs)
	}
	// The replacement takes traffic.
	for range 20 {
		if status, _, b := k.invoke("ep", `{"inputs":"hello"}`); status != 200 {
			t.Fatalf("after the replacement: %d %s", status, b)
		}
	}
	for _, in := range ep.Variants[0].Instances {
		if n := podInvocations(t, in.Addr); n == 0 {
			t.Fatalf("instance %s at %s took no invocation", in.ID, in.Addr)
		}
	}
	t.Logf("pod deleted: %d ok, 0 failed", ok)

	// A pod whose readiness probe fails leaves rotation while its server
	// still answers what it holds; the kubelet restarts it when its
	// liveness probe fails too, and it comes back. No request fails.
	l = startLoad(k.junction, "ep", 4)
	l.waitOK(t, 50)
	sick := ep.Variants[0].Instances[0]
	resp, err := http.Post("http://"+sick.Addr+"/faults", "application/json", strings.NewReader(`{"ping_fail": true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	k.waitEndpoint("ep", time.Minute, func(e *hosting.Endpoint) bool {
		for _, in := range e.Variants[0].Instances {
			if in.ID == sick.ID {
				return in.Restarts > sick.Restarts && readyInstances(e) == 2
			}
		}
		return false
	})
	l.waitOK(t, 100)
	ok, failed, errs = l.finish()
	if failed != 0 {
		t.Fatalf("%d of %d requests failed while a pod was unready and restarted: %v", failed, ok+failed, errs)
	}
	t.Logf("pod unready: %d ok, 0 failed", ok)

	l = startLoad(k.junction, "ep", 4)
	l.waitOK(t, 50)
	lost := k.pods("ep")[0]
	if err := k.kubelet.KillPod(lost); err != nil {
		t.Fatal(err)
	}
	replaced(lost)
	l.mark()
	l.waitOK(t, 100)
	ok, failed, errs = l.finish()
	if failed > 4 || l.failedAfter.Load() != 0 {
		t.Fatalf("%d of %d requests failed around the lost pod, %d after its replacement was ready: %v", failed, ok+failed, l.failedAfter.Load(), errs)
	}
	t.Logf("pod lost: %d ok, %d failed (in flight on it)", ok, failed)

	// The lost pod's event names its SIGKILL or its deletion, whichever
	// the watch brought first.
	ev := k.events("ep")
	for _, want := range []string{regexp.QuoteMeta("pod " + deleted + " is being deleted; draining it"),
		"is Unhealthy: pod [^ ]+ is not ready \\(its readiness probe fails\\); draining it",
		"(pod " + lost + "|container exited with status 137).*; draining it", regexp.QuoteMeta("ready again after 1 restart(s)")} {
		if !regexp.MustCompile(want).MatchString(ev) {
			t.Fatalf("events lack %q:\n%s", want, ev)
		}
	}
}

// podInvocations is how many invocations the reference server at addr
// has answered (its GET /stats).
func podInvocations(t *testing.T, addr string) int64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Invocations int64 `json:"invocations"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Invocations
}

// TestScaleOutAndInOnKubernetesMetersPodsFromReadiness: the variant's
// capacity (UpdateEndpointWeightsAndCapacities) goes from one instance to
// three and back to one under load: pods are created and deleted, the
// new pods take traffic, no request fails, and each instance that came
// and went is metered from the moment its pod was ready to its deletion,
// in contiguous segments, none twice.
func TestScaleOutAndInOnKubernetesMetersPodsFromReadiness(t *testing.T) {
	k := startKubeHosted(t)
	k.serve("primary", 1, nil)

	l := startLoad(k.junction, "ep", 4)
	l.waitOK(t, 20)
	k.admin("PUT", "/api/v1/endpoints/ep/variants", map[string]any{"variants": []map[string]any{{"variant": "primary", "instance_count": 3}}}, http.StatusOK, nil)
	out := k.waitEndpoint("ep", 2*time.Minute, func(e *hosting.Endpoint) bool { return converged(e) && readyInstances(e) == 3 })
	if pods := k.pods("ep"); len(pods) != 3 {
		t.Fatalf("scaled out to pods %v", pods)
	}
	l.waitOK(t, 100)
	readyAt := map[string]time.Time{}
	for _, in := range out.Variants[0].Instances {
		if podInvocations(t, in.Addr) == 0 {
			t.Fatalf("instance %s at %s took no invocation", in.ID, in.Addr)
		}
		readyAt[in.ID] = in.Since
	}
	scaleIn := time.Now()
	k.admin("PUT", "/api/v1/endpoints/ep/variants", map[string]any{"variants": []map[string]any{{"variant": "primary", "instance_count": 1}}}, http.StatusOK, nil)
	in := k.waitEndpoint("ep", 2*time.Minute, func(e *hosting.Endpoint) bool {
		return converged(e) && len(e.Variants[0].Instances) == 1 && k.podsLeft() == 1
	})
	goneBy := time.Now()
	// Load goes on for two seconds more: an instance metered past its
	// deletion would show it.
	for time.Since(goneBy) < 2*time.Second {
		l.waitOK(t, 10)
	}
	ok, failed, errs := l.finish()
	if failed != 0 {
		t.Fatalf("%d of %d requests failed while scaling: %v", failed, ok+failed, errs)
	}
	delete(readyAt, in.Variants[0].Instances[0].ID)
	if len(readyAt) != 2 {
		t.Fatalf("scaled in to %+v", in.Variants[0].Instances)
	}

	k.stop()
	db := meteredOnce(t, filepath.Join(k.dataDir, "junction.db"))
	for id, ready := range readyAt {
		first, last, sum := meteredSpan(t, db, id)
		if d := first - ready.UnixMilli(); d < -1 || d > 1 {
			t.Errorf("instance %s: metered from %s, ready at %s", id, time.UnixMilli(first).Format(time.StampMilli), ready.Format(time.StampMilli))
		}
		if last < scaleIn.UnixMilli() || last > goneBy.Add(500*time.Millisecond).UnixMilli() {
			t.Errorf("instance %s: metered until %s, scaled in between %s and %s", id, time.UnixMilli(last).Format(time.StampMilli),
				scaleIn.Format(time.StampMilli), goneBy.Format(time.StampMilli))
		}
		if sum != last-first {
			t.Errorf("instance %s: segments sum to %d ms over a span of %d ms", id, sum, last-first)
		}
	}
}

// TestAutoscalingOnKubernetes runs the process runtime's autoscaling
// steps on pods: a step load scales the variant out to three pods by its
// target-tracking policy, and a trickle back in to one.
func TestAutoscalingOnKubernetes(t *testing.T) {
	k := startKubeHosted(t)
	k.serve("v", 1, map[string]string{modelserver.EnvDelay: "50ms"})
	scaleOutUnderStepLoad(t, k.junction, "ep")
	if pods := k.pods("ep"); len(pods) != 3 {
		t.Fatalf("scaled out to pods %v", pods)
	}
	scaleInWhenIdle(t, k.junction, "ep")
	k.waitEndpoint("ep", time.Minute, func(*hosting.Endpoint) bool { return len(k.pods("ep")) == 1 })
}

// TestLeaderKilledOnKubernetesTheOtherAdoptsItsPods: two junction serve
// replicas on one PostgreSQL and the Kubernetes runtime, the hosting
// lease a Lease object. Clients invoke through both; the holder is
// killed (SIGKILL). Its pods outlive it: the other replica takes the
// Lease, adopts them as they are (no pod is replaced), and calls through
// it never fail. Instance time goes on from where the dead holder's
// metering stopped: each instance's segments are contiguous, none twice.
func TestLeaderKilledOnKubernetesTheOtherAdoptsItsPods(t *testing.T) {
	c := kubetest.Start(t)
	ns := c.Namespace(t)
	kubeconfig := c.GrantRuntimeUser(t, ns, kubernetes.Rules())
	c.StartKubelet(t, ns, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")})
	pg := storetest.Postgres(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := hostingYAML(pg, "runtime: kubernetes", fmt.Sprintf("kubernetes: {kubeconfig: %q, default_image: junction:test, port: %d, artifact_claim: artifacts}", kubeconfig, port))
	pa := junctiontest.Start(t, junctiontest.Options{Config: cfg})
	pb := junctiontest.Start(t, junctiontest.Options{Config: cfg})
	a, b := childJunction(t, pa), childJunction(t, pb)
	k := &kubeJunction{junction: a, cluster: c, ns: ns}
	holder := func() string {
		t.Helper()
		lease, err := c.Client.CoordinationV1().Leases(ns).Get(context.Background(), kubernetes.DefaultLeaseName, metav1.GetOptions{})
		if err != nil || lease.Spec.HolderIdentity == nil {
			t.Fatalf("hosting lease: %+v %v", lease, err)
		}
		return *lease.Spec.HolderIdentity
	}
	first := holder()

	// The pods read the model from the holder's artifact volume.
	art := filepath.Join(pa.DataDir, "artifacts", "src")
	if err := refmodel.WriteDemoArtifact(art); err != nil {
		t.Fatal(err)
	}
	b.refModel("m", art)
	b.endpointConfig("c", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 2})
	b.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c"}, http.StatusCreated, nil)
	two := func(e *hosting.Endpoint) bool { return converged(e) && readyInstances(e) == 2 }
	ep := a.waitEndpoint("ep", 2*time.Minute, two)
	b.waitEndpoint("ep", 10*time.Second, two)
	pods := k.pods("ep")
	slices.Sort(pods)
	invokeAll(t, "before the kill", a, b)

	lb, killed := killUnderLoad(t, pa, a, b)
	deadline := time.Now().Add(30 * time.Second)
	for h := holder(); h == first || h == ""; h = holder() {
		if time.Now().After(deadline) {
			t.Fatalf("the Lease is still held by %q", h)
		}
		time.Sleep(50 * time.Millisecond) // polling the Lease; nothing to wait on
	}
	took := time.Since(killed)
	// Its own description of the endpoint (not the dead holder's
	// published one): both instances adopted.
	after := b.waitEndpoint("ep", 30*time.Second, func(e *hosting.Endpoint) bool {
		return two(e) && !slices.ContainsFunc(e.Variants[0].Instances, func(s hosting.InstanceSummary) bool { return !s.Adopted })
	})
	lb.waitOK(t, 100)
	ok, failed, errs := lb.finish()
	if failed != 0 {
		t.Fatalf("%d of %d calls through the survivor failed: %v", failed, ok+failed, errs)
	}
	t.Logf("the Lease moved %s after the kill; through the survivor %d calls, none failed", took.Round(100*time.Millisecond), ok)
	now := k.pods("ep")
	slices.Sort(now)
	if !slices.Equal(now, pods) {
		t.Fatalf("pods %v after the takeover, %v before: adopted pods are not replaced", now, pods)
	}
	for i, in := range after.Variants[0].Instances {
		if !slices.ContainsFunc(ep.Variants[0].Instances, func(s hosting.InstanceSummary) bool { return s.ID == in.ID }) {
			t.Fatalf("instance %d after the takeover %+v is not one of the killed holder's", i, in)
		}
	}
	invokeAll(t, "after the takeover", b)

	pb.Stop()
	db := meteredOnce(t, pg)
	for _, in := range ep.Variants[0].Instances {
		first, last, sum := meteredSpan(t, db, in.ID)
		if sum != last-first || last < killed.Add(took).UnixMilli() {
			t.Errorf("instance %s: segments sum to %d ms over a span of %d ms, until %d (killed at %d)", in.ID, sum, last-first, last, killed.UnixMilli())
		}
	}
}

func TestCanaryOnKubernetesRollsBack(t *testing.T) {
	k := startKubeHosted(t)
	art := k.artifact()
	k.model("good", art, nil)
	k.model("bad", art, map[string]string{modelserver.EnvFailRate: "1"})
	k.endpointConfig("good-c", hosting.Variant{Name: "primary", Model: "good", InstanceType: "ml.g6.xlarge"})
	k.endpointConfig("bad-c", hosting.Variant{Name: "primary", Model: "bad", InstanceType: "ml.g6.xlarge"})
	k.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "good-c"}, http.StatusCreated, nil)
	k.waitEndpoint("ep", 2*time.Minute, inService)

	l := startLoad(k.junction, "ep", 4)
	k.admin("PUT", "/api/v1/endpoints/ep", map[string]any{"config": "bad-c", "deployment": map[string]any{
		"type": "canary", "canary_percent": 20, "wait_seconds": 60, "alarms": map[string]any{"max_error_rate": 0.1, "min_invocations": 5}}},
		http.StatusAccepted, nil)
	back := k.waitEndpoint("ep", 2*time.Minute, func(e *hosting.Endpoint) bool { return inService(e) && e.FailureReason != "" })
	ok, failed, _ := l.finish()
	if back.Config != "good-c" || !strings.Contains(back.FailureReason, "error rate") || failed == 0 || failed > ok {
		t.Fatalf("after rollback: config %s, reason %q, %d ok, %d failed", back.Config, back.FailureReason, ok, failed)
	}
	// The canary's pod is gone; the good fleet's one remains.
	deadline := time.Now().Add(time.Minute)
	for len(k.pods("ep")) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("pods after rollback: %v", k.pods("ep"))
		}
		time.Sleep(50 * time.Millisecond) // polling the cluster; nothing to wait on
	}
	for range 20 {
		if status, _, b := k.invoke("ep", `{"inputs":"hello"}`); status != 200 {
			t.Fatalf("after rollback: %d %s", status, b)
		}
	}
}

func TestCrashLoopOnKubernetesFailsTheEndpointWithTheReason(t *testing.T) {
	k := startKubeHosted(t)
	// A short startup timeout: the endpoint fails as soon as it is clear
	// the server will not come up.
	k.admin("POST", "/api/v1/models", hosting.Model{Name: "broken", Artifact: "file://" + k.artifact(),
		Server: hosting.Server{Type: "byoc", Command: "junction", Args: []string{"model-server", "--host=$(POD_IP)"},
			Env: map[string]string{modelserver.EnvExitAtStart: "7"}, StartupTimeoutSeconds: 3}}, http.StatusCreated, nil)
	k.endpointConfig("c", hosting.Variant{Name: "primary", Model: "broken", InstanceType: "ml.g6.xlarge"})
	k.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c"}, http.StatusCreated, nil)
	ep := k.waitEndpoint("ep", 2*time.Minute, func(e *hosting.Endpoint) bool { return e.Status == hosting.StatusFailed })
	if !strings.Contains(ep.FailureReason, "exited with status 7") {
		t.Fatalf("failure reason %q does not say why the server died", ep.FailureReason)
	}
	// Instance time counts from readiness: a pod that never was ready
	// costs nothing.
	k.waitPodsGone("ep")
	if h := k.hostingUsage(); len(h) != 0 {
		t.Fatalf("a never-ready instance was metered: %+v", h)
	}
}

// waitPodsGone waits until the endpoint has no pod and the kubelet runs no
// process.
func (k *kubeJunction) waitPodsGone(endpoint string) {
	k.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for len(k.pods(endpoint)) > 0 || len(k.kubelet.Running()) > 0 {
		if time.Now().After(deadline) {
			k.t.Fatalf("pods %v, processes %v still there", k.pods(endpoint), k.kubelet.Running())
		}
		time.Sleep(50 * time.Millisecond) // polling the cluster; nothing to wait on
	}
}

// hostingUsage is the ledger's metered instance time.
func (k *kubeJunction) hostingUsage() []hosting.HostingRow {
	k.t.Helper()
	var usage struct {
		Hosting []hosting.HostingRow `json:"hosting"`
	}
	k.admin("GET", "/api/v1/usage?group_by=surface", nil, http.StatusOK, &usage)
	return usage.Hosting
}
