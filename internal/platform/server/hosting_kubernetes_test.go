package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
		"kubernetes: {kubeconfig: %q, default_image: junction:test, port: %d, artifact_claim: artifacts}}\n", kubeconfig, port)
	dataDir := t.TempDir()
	j := startHosted(t, dataDir, "", extra)
	return &kubeJunction{junction: j, cluster: c, ns: ns, kubelet: kubelet}
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
	art := k.artifact()
	k.model("m", art, nil)
	k.endpointConfig("c1", hosting.Variant{Name: "primary", Model: "m", InstanceType: "ml.g6.xlarge", InstanceCount: 2})
	k.admin("POST", "/api/v1/endpoints", map[string]string{"name": "ep", "config": "c1"}, http.StatusCreated, nil)
	ep := k.waitEndpoint("ep", 2*time.Minute, inService)
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

	// A pod lost under load is replaced; once the replacement is ready no
	// request fails.
	l := startLoad(k.junction, "ep", 4)
	l.waitOK(t, 50)
	lost := k.pods("ep")[0]
	if err := k.kubelet.KillPod(lost); err != nil {
		t.Fatal(err)
	}
	k.waitEndpoint("ep", time.Minute, func(e *hosting.Endpoint) bool {
		pods := k.pods("ep")
		return readyInstances(e) == 2 && len(pods) == 2 && pods[0] != lost && pods[1] != lost
	})
	l.mark()
	l.waitOK(t, 100)
	ok, failed, errs := l.finish()
	if failed > 4 || l.failedAfter.Load() != 0 {
		t.Fatalf("%d of %d requests failed around the lost pod, %d after its replacement was ready: %v", failed, ok+failed, l.failedAfter.Load(), errs)
	}
	t.Logf("lost pod: %d ok, %d failed", ok, failed)

	// Scale out and back in, under load, without a failed request.
	l = startLoad(k.junction, "ep", 4)
	k.admin("PUT", "/api/v1/endpoints/ep/variants", map[string]any{"variants": []map[string]any{{"variant": "primary", "instance_count": 3}}}, http.StatusOK, nil)
	k.waitEndpoint("ep", 2*time.Minute, func(e *hosting.Endpoint) bool { return converged(e) && readyInstances(e) == 3 })
	if pods := k.pods("ep"); len(pods) != 3 {
		t.Fatalf("scaled out to %v", pods)
	}
	l.waitOK(t, 50)
	k.admin("PUT", "/api/v1/endpoints/ep/variants", map[string]any{"variants": []map[string]any{{"variant": "primary", "instance_count": 1}}}, http.StatusOK, nil)
	k.waitEndpoint("ep", 2*time.Minute, func(e *hosting.Endpoint) bool { return converged(e) && len(k.pods("ep")) == 1 })
	l.waitOK(t, 50)
	ok, failed, errs = l.finish()
	if failed != 0 {
		t.Fatalf("%d of %d requests failed while scaling: %v", failed, ok+failed, errs)
	}

	// Deleting the endpoint deletes its pods and stops their servers; their
	// time is in the ledger.
	k.admin("DELETE", "/api/v1/endpoints/ep", nil, http.StatusAccepted, nil)
	k.waitPodsGone("ep")
	if h := k.hostingUsage(); len(h) != 1 || h[0].Endpoint != "ep" || h[0].InstanceHours <= 0 || h[0].CostUSD <= 0 {
		t.Fatalf("hosting usage %+v", h)
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
