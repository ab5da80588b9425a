// Package kubetest runs a real Kubernetes control plane for tests: etcd and
// kube-apiserver on loopback, started once per test binary, and a fake
// kubelet (Kubelet) that plays the node, since no kubelet can run here. It
// is for tests only.
//
// The API server binary is built from the k8s.io/kubernetes module source
// by scripts/kube-apiserver.sh and cached outside the repository; etcd is
// Debian's etcd-server. scripts/test.sh prepares both and exports
// JUNCTION_KUBE_APISERVER, so in CI a test that needs the cluster always
// runs it. Run elsewhere, Start uses the cached binary if it is there, and
// skips the test, saying how to build it, if it is not.
//
// A package that uses it stops the cluster when its tests end:
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Run(m)) }
package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeclient "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Environment variables that locate the binaries.
const (
	// EnvAPIServer is the kube-apiserver binary; scripts/test.sh sets it.
	EnvAPIServer = "JUNCTION_KUBE_APISERVER"
	// EnvEtcd is the etcd binary; default "etcd" from PATH.
	EnvEtcd = "JUNCTION_ETCD"
	// KubeVersion is the Kubernetes release scripts/kube-apiserver.sh
	// builds, and the one client-go matches.
	KubeVersion = "v1.34.3"
)

// RuntimeUser is a user the API server knows with no rights of its own:
// tests bind it to the Kubernetes runtime's Role to check that the Role is
// all the runtime needs.
const RuntimeUser = "junction-runtime"

// Cluster is a running etcd and kube-apiserver.
type Cluster struct {
	// Config reaches the API server as a cluster admin
	// (system:masters).
	Config *rest.Config
	// Client is a clientset on Config.
	Client kubeclient.Interface

	dir          string
	runtimeToken string
	procs        []*exec.Cmd
}

var shared struct {
	once sync.Once
	c    *Cluster
	err  error
	skip string
}

// Run runs a package's tests and then stops the shared cluster; call it
// from TestMain: os.Exit(kubetest.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop stops the shared cluster, if one was started.
func Stop() {
	if shared.c != nil {
		shared.c.stop()
	}
}

// Start returns the test binary's cluster, starting it on first use (about
// 20 seconds). It skips the test when the API server has not been built
// and the environment does not name it (see the package comment), and
// fails it when the cluster cannot start.
func Start(t testing.TB) *Cluster {
	t.Helper()
	shared.once.Do(func() {
		apiserver, skip := locate()
		if skip != "" {
			shared.skip = skip
			return
		}
		shared.c, shared.err = start(apiserver)
	})
	if shared.skip != "" {
		t.Skip(shared.skip)
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.c
}

// locate finds the kube-apiserver binary, or says why the test skips.
func locate() (path, skip string) {
	if p := os.Getenv(EnvAPIServer); p != "" {
		return p, ""
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	p := filepath.Join(cache, "junction", "kube-apiserver-"+KubeVersion)
	if _, err := os.Stat(p); err == nil {
		return p, ""
	}
	return "", fmt.Sprintf("no kube-apiserver: %s is unset and %s is not built; "+
		"run scripts/test.sh, or `export %s=$(bash scripts/kube-apiserver.sh)` (builds it once, ~10 min)", EnvAPIServer, p, EnvAPIServer)
}

func start(apiserver string) (c *Cluster, err error) {
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{dir: dir}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	etcd := os.Getenv(EnvEtcd)
	if etcd == "" {
		etcd = "etcd"
	}
	if err := c.spawn("etcd", etcd, "--name", "kubetest", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "kubetest="+peerURL, "--log-level", "error"); err != nil {
		return nil, err
	}
	if err := waitHTTP(etcdURL+"/health", nil, 60*time.Second, "etcd", c.logOf("etcd")); err != nil {
		return nil, err
	}
	if err := writeKeys(dir); err != nil {
		return nil, err
	}
	admin, runtimeToken := token(), token()
	c.runtimeToken = runtimeToken
	tokens := fmt.Sprintf("%s,admin,admin,system:masters\n%s,%s,%s\n", admin, runtimeToken, RuntimeUser, RuntimeUser)
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return nil, err
	}
	secure := strconv.Itoa(ports[2])
	if err := c.spawn("kube-apiserver", apiserver,
		"--etcd-servers="+etcdURL,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--bind-address=127.0.0.1", "--secure-port="+secure,
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--service-cluster-ip-range=10.96.0.0/24", "--advertise-address=127.0.0.1",
		"--enable-priority-and-fairness=false", "--profiling=false", "--v=0"); err != nil {
		return nil, err
	}
	host := "https://127.0.0.1:" + secure
	insecure := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // a throwaway self-signed test server
	if err := waitHTTP(host+"/readyz", map[string]string{"Authorization": "Bearer " + admin}, 3*time.Minute, "kube-apiserver", c.logOf("kube-apiserver"), insecure); err != nil {
		return nil, err
	}
	c.Config = &rest.Config{Host: host, BearerToken: admin, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 200, Burst: 400}
	if c.Client, err = kubeclient.NewForConfig(c.Config); err != nil {
		return nil, err
	}
	return c, nil
}

// Namespace creates a fresh namespace with its default service account
// (no controller manager runs to make one) and returns its name.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	ns, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "kt-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// RuntimeConfig reaches the API server as RuntimeUser, who may do only
// what a test binds it to.
func (c *Cluster) RuntimeConfig() *rest.Config {
	cfg := rest.CopyConfig(c.Config)
	cfg.BearerToken = c.runtimeToken
	return cfg
}

// WriteKubeconfig writes a kubeconfig file for cfg into dir and returns
// its path, for code that reads one (Junction's hosting.kubernetes).
func WriteKubeconfig(t testing.TB, cfg *rest.Config, namespace string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: cfg.Host, InsecureSkipTLSVerify: true}
	kc.AuthInfos["kubetest"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "kubetest", Namespace: namespace}
	kc.CurrentContext = "kubetest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func (c *Cluster) logOf(name string) string { return filepath.Join(c.dir, name+".log") }

// spawn starts a control-plane process with its output in dir/name.log;
// it dies with the test binary.
func (c *Cluster) spawn(name, path string, args ...string) error {
	out, err := os.Create(c.logOf(name))
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("kubetest: start %s: %w", name, err)
	}
	out.Close()
	c.procs = append(c.procs, cmd)
	return nil
}

func (c *Cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	c.procs = nil
	_ = os.RemoveAll(c.dir)
}

// waitHTTP polls url until it answers 200.
func waitHTTP(url string, header map[string]string, within time.Duration, what, logPath string, tlsConf ...*tls.Config) error {
	tr := &http.Transport{}
	if len(tlsConf) > 0 {
		tr.TLSClientConfig = tlsConf[0]
	}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	deadline := time.Now().Add(within)
	for {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			if len(log) > 4000 {
				log = log[len(log)-4000:]
			}
			return fmt.Errorf("kubetest: %s not ready at %s within %s (last: %v); its log ends:\n%s", what, url, within, err, bytes.TrimSpace(log))
		}
		time.Sleep(100 * time.Millisecond) // polling a starting server; nothing to wait on
	}
}

// writeKeys writes the service-account signing key pair.
func writeKeys(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
}

func token() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// GrantRuntimeUser gives RuntimeUser a Role with rules in namespace ns,
// and returns a kubeconfig file that acts as that user there.
func (c *Cluster) GrantRuntimeUser(t testing.TB, ns string, rules []rbacv1.PolicyRule) string {
	t.Helper()
	ctx := context.Background()
	if _, err := c.Client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: RuntimeUser},
		Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: RuntimeUser},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: RuntimeUser},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: RuntimeUser}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return WriteKubeconfig(t, c.RuntimeConfig(), ns)
}
