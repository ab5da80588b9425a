package process

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/junctionhq/junction/internal/hostrt"
)

// testEnv is the base environment of the tests' servers: this test binary
// becomes the child server (see TestMain). Under -race a binary waits a
// second at exit unless told not to, which would slow every stop.
func testEnv() []string {
	return append(os.Environ(), "HOSTRT_TEST_CHILD=1", "GORACE=atexit_sleep_ms=0")
}

func newRuntime(t *testing.T, root string, opts ...Option) *Runtime {
	t.Helper()
	if root == "" {
		root = t.TempDir()
	}
	opts = append([]Option{
		WithEnv(testEnv()),
		WithLogger(slog.New(slog.DiscardHandler)),
		WithBackoff(20*time.Millisecond, 200*time.Millisecond),
	}, opts...)
	r, err := New(root, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(r.workRoot) })
	return r
}

// reopen is newRuntime for a root another Runtime has just detached from.
// A child forked by a parallel test holds a copy of every descriptor until
// it execs, the lock's included, so the lock may take a moment to free.
func reopen(t *testing.T, root string) *Runtime {
	t.Helper()
	var r *Runtime
	waitFor(t, "the root's lock", func() bool {
		var err error
		r, err = New(root, WithEnv(testEnv()), WithLogger(slog.New(slog.DiscardHandler)),
			WithBackoff(20*time.Millisecond, 200*time.Millisecond))
		return err == nil
	})
	return r
}

func childSpec(t *testing.T, id string, env map[string]string) hostrt.Spec {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return hostrt.Spec{
		ID: id, Endpoint: "ep", Variant: "v1", ConfigHash: "h1", Command: exe, Env: env,
		StartupTimeout: 20 * time.Second, HealthInterval: 50 * time.Millisecond, StopGrace: 5 * time.Second,
	}
}

// recorder collects the states an instance reports through OnChange.
type recorder struct {
	mu     sync.Mutex
	states []hostrt.State
}

func (r *recorder) on(st hostrt.Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.states); n == 0 || r.states[n-1] != st.State {
		r.states = append(r.states, st.State)
	}
}

func (r *recorder) seen() []hostrt.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.states)
}

// start starts spec and stops the instance when the test ends.
func start(t *testing.T, r *Runtime, spec hostrt.Spec) *Instance {
	t.Helper()
	hi, err := r.Start(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	in := hi.(*Instance)
	t.Cleanup(func() { stopNow(t, in) })
	return in
}

func stopNow(t *testing.T, in hostrt.Instance) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := in.Stop(ctx); err != nil && !errors.Is(err, ErrDetached) {
		t.Errorf("stop %s: %v", in.ID(), err)
	}
}

func waitReady(t *testing.T, in hostrt.Instance) hostrt.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := in.Ready(ctx); err != nil {
		t.Fatalf("%s not ready: %v (status %+v)", in.ID(), err, in.Status())
	}
	return in.Status()
}

// waitStatus polls the instance's status until cond holds.
func waitStatus(t *testing.T, in hostrt.Instance, what string, cond func(hostrt.Status) bool) hostrt.Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := in.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: gave up waiting for %s; status %+v", in.ID(), what, st)
		}
		time.Sleep(5 * time.Millisecond) // polling, not synchronising
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling, not synchronising
	}
}

func get(t *testing.T, addr, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s %v", path, resp.StatusCode, b, err)
	}
	return string(b)
}

func invoke(t *testing.T, addr, body string) string {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/invocations", "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("invoke: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// running reports whether pid is a live (not zombie) process.
func running(pid int) bool {
	st, err := readProcStat(pid)
	return err == nil && st.running()
}

func TestStartReadyInvoke(t *testing.T) {
	t.Parallel()
	r := newRuntime(t, "")
	var rec recorder
	spec := childSpec(t, "ep-v1-0", nil)
	spec.OnChange = rec.on
	began := time.Now()
	in := start(t, r, spec)
	st := waitReady(t, in)
	t.Logf("start to Ready: %v", time.Since(began))

	if st.State != hostrt.StateReady || st.PID == 0 || st.Adopted || st.Restarts != 0 {
		t.Fatalf("status = %+v", st)
	}
	if got := invoke(t, st.Addr, "hello"); got != "hello" {
		t.Fatalf("invocation answered %q", got)
	}
	if got := rec.seen(); !slices.Equal(got, []hostrt.State{hostrt.StateStarting, hostrt.StateReady}) {
		t.Fatalf("OnChange saw %v", got)
	}
	saved, err := readState(filepath.Join(r.Root(), "ep-v1-0"))
	if err != nil {
		t.Fatal(err)
	}
	if saved.PID != st.PID || saved.StartTicks == 0 || "127.0.0.1:"+strconv.Itoa(saved.Port) != st.Addr ||
		saved.JunctionPID != os.Getpid() || saved.Spec.ConfigHash != "h1" {
		t.Fatalf("state file = %+v, status %+v", saved, st)
	}
	log, _ := os.ReadFile(in.LogPath())
	if !strings.Contains(string(log), "=== junction") {
		t.Fatalf("log has no start marker: %q", log)
	}
	if got := in.Spec(); got.StopGrace != 5*time.Second || got.UnhealthyAfter != hostrt.DefaultUnhealthyAfter || got.OnChange != nil {
		t.Fatalf("Spec() = %+v", got)
	}
}

func TestOpenAIServerIsProbedOnModels(t *testing.T) {
	t.Parallel()
	r := newRuntime(t, "")
	spec := childSpec(t, "oai", nil)
	spec.ServerType = hostrt.ServerOpenAI
	in := start(t, r, spec)
	st := waitReady(t, in)
	if got := get(t, st.Addr, "/v1/models"); !strings.Contains(got, `"list"`) {
		t.Fatalf("/v1/models = %q", got)
	}
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	names := []string{"SM_MODEL_DIR", "PORT", "SAGEMAKER_BIND_TO_PORT", "CUDA_VISIBLE_DEVICES",
		"JUNCTION_CPUS", "JUNCTION_MEMORY_MB", "JUNCTION_INSTANCE_ID", "MODEL_NAME"}
	tests := []struct {
		id   string
		spec func(*hostrt.Spec)
		want map[string]string // "<port>" stands for the instance's port
	}{
		{
			id: "everything",
			spec: func(s *hostrt.Spec) {
				s.ModelDir = "/opt/ml/model"
				s.GPUs = []int{0, 1}
				s.CPUs, s.MemoryMB = 1.5, 2048
				s.Env = map[string]string{"MODEL_NAME": "tiny", "PORT": "1", "CUDA_VISIBLE_DEVICES": "9"}
			},
			want: map[string]string{
				"SM_MODEL_DIR": "/opt/ml/model", "PORT": "<port>", "SAGEMAKER_BIND_TO_PORT": "<port>",
				"CUDA_VISIBLE_DEVICES": "0,1", "JUNCTION_CPUS": "1.5", "JUNCTION_MEMORY_MB": "2048",
				"JUNCTION_INSTANCE_ID": "everything", "MODEL_NAME": "tiny",
			},
		},
		{
			// No GPUs: CUDA_VISIBLE_DEVICES stays as the base environment has it.
			id:   "no-gpus",
			spec: func(s *hostrt.Spec) {},
			want: map[string]string{
				"PORT": "<port>", "SAGEMAKER_BIND_TO_PORT": "<port>", "CUDA_VISIBLE_DEVICES": "7",
				"JUNCTION_INSTANCE_ID": "no-gpus",
			},
		},
	}
	r := newRuntime(t, "", WithEnv(append(testEnv(), "CUDA_VISIBLE_DEVICES=7")))
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			t.Parallel()
			spec := childSpec(t, tc.id, nil)
			tc.spec(&spec)
			in := start(t, r, spec)
			st := waitReady(t, in)
			q := url.Values{"name": names}
			var got map[string]string
			if err := json.Unmarshal([]byte(get(t, st.Addr, "/env?"+q.Encode())), &got); err != nil {
				t.Fatal(err)
			}
			port := strings.TrimPrefix(st.Addr, "127.0.0.1:")
			want := map[string]string{}
			for k, v := range tc.want {
				want[k] = strings.ReplaceAll(v, "<port>", port)
			}
			if !mapsEqual(got, want) {
				t.Fatalf("child environment = %v, want %v", got, want)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestCrashRestartsOnNewPort(t *testing.T) {
	t.Parallel()
	r := newRuntime(t, "")
	var rec recorder
	spec := childSpec(t, "crashy", map[string]string{
		"HOSTRT_ONCE": filepath.Join(t.TempDir(), "once"), "HOSTRT_CRASH_AFTER": "500ms"})
	spec.OnChange = rec.on
	in := start(t, r, spec)
	first := waitReady(t, in)
	st := waitStatus(t, in, "Ready after a restart", func(s hostrt.Status) bool {
		return s.Restarts == 1 && s.State == hostrt.StateReady
	})
	if st.Addr == first.Addr || st.Addr == "" {
		t.Fatalf("restarted on %q, first ran on %q: want a new port", st.Addr, first.Addr)
	}
	if st.PID == first.PID || running(first.PID) {
		t.Fatalf("old process %d still there (new %d)", first.PID, st.PID)
	}
	if st.LastError != "exited with status 3" {
		t.Fatalf("LastError = %q", st.LastError)
	}
	want := []hostrt.State{hostrt.StateStarting, hostrt.StateReady, hostrt.StateRestarting, hostrt.StateStarting, hostrt.StateReady}
	if got := rec.seen(); !slices.Equal(got, want) {
		t.Fatalf("OnChange saw %v, want %v", got, want)
	}
	if got := invoke(t, st.Addr, "again"); got != "again" {
		t.Fatalf("invocation answered %q", got)
	}
	log, _ := os.ReadFile(in.LogPath())
	if n := strings.Count(string(log), "=== junction"); n != 2 {
		t.Fatalf("log has %d start markers, want 2:\n%s", n, log)
	}
}

func TestFailingHealthRestarts(t *testing.T) {
	t.Parallel()
	r := newRuntime(t, "")
	var rec recorder
	spec := childSpec(t, "sickly", map[string]string{
		"HOSTRT_ONCE": filepath.Join(t.TempDir(), "once"), "HOSTRT_PING_FAIL_AFTER": "1"})
	spec.UnhealthyAfter = 2
	spec.OnChange = rec.on
	in := start(t, r, spec)
	waitReady(t, in)
	st := waitStatus(t, in, "Ready after a restart", func(s hostrt.Status) bool {
		return s.Restarts == 1 && s.State == hostrt.StateReady
	})
	if st.LastError != "2 health checks failed: GET /ping: status 500" {
		t.Fatalf("LastError = %q", st.LastError)
	}
	if got := rec.seen(); !slices.Contains(got, hostrt.StateUnhealthy) {
		t.Fatalf("OnChange saw %v, never Unhealthy", got)
	}
}

func TestStartupTimeoutRestarts(t *testing.T) {
	t.Parallel()
	r := newRuntime(t, "")
	spec := childSpec(t, "slow", map[string]string{
		"HOSTRT_ONCE": filepath.Join(t.TempDir(), "once"), "HOSTRT_HANG_START": "1"})
	spec.StartupTimeout = time.Second
	in := start(t, r, spec)
	st := waitStatus(t, in, "Ready after a restart", func(s hostrt.Status) bool {
		return s.Restarts >= 1 && s.State == hostrt.StateReady
	})
	if st.LastError != "did not answer /ping within 1s" {
		t.Fatalf("LastError = %q", st.LastError)
	}
	if err := in.Ready(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestStopIsGraceful(t *testing.T) {
	t.Parallel()
	r := newRuntime(t, "")
	in := start(t, r, childSpec(t, "polite", nil))
	st := waitReady(t, in)
	began := time.Now()
	if err := in.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("graceful stop took %v", d)
	}
	if running(st.PID) {
		t.Fatalf("process %d still running", st.PID)
	}
	if got := in.Status(); got.State != hostrt.StateStopped || got.Addr != "" || got.PID != 0 {
		t.Fatalf("status after Stop = %+v", got)
	}
	log, _ := os.ReadFile(in.LogPath())
	if !strings.Contains(string(log), "child: SIGTERM received") {
		t.Fatalf("the child did not see SIGTERM; log:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(r.Root(), "polite", stateName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state file after Stop: %v", err)
	}
	if err := in.Stop(t.Context()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	// The ID is free again.
	again := start(t, r, childSpec(t, "polite", nil))
	waitReady(t, again)
}

func TestStopKillsAfterGrace(t *testing.T) {
	t.Parallel()
	r := newRuntime(t, "")
	spec := childSpec(t, "stubborn", map[string]string{"HOSTRT_IGNORE_TERM": "1", "HOSTRT_GRANDCHILD": "1"})
	spec.StopGrace = 300 * time.Millisecond
	in := start(t, r, spec)
	st := waitReady(t, in)
	grandchild, err := strconv.Atoi(get(t, st.Addr, "/grandchild"))
	if err != nil || !running(grandchild) {
		t.Fatalf("grandchild %d: %v", grandchild, err)
	}
	began := time.Now()
	if err := in.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d < spec.StopGrace {
		t.Fatalf("Stop returned after %v, before the grace period ended", d)
	}
	for _, pid := range []int{st.PID, grandchild} {
		if running(pid) {
			t.Fatalf("process %d survived Stop", pid)
		}
	}
}

func TestStopWinsOverRestarting(t *testing.T) {
	t.Parallel()
	r := newRuntime(t, "")
	in := start(t, r, childSpec(t, "doomed", map[string]string{"HOSTRT_EXIT_AT_START": "5"}))
	waitStatus(t, in, "two restarts", func(s hostrt.Status) bool { return s.Restarts >= 2 })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := in.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	st := in.Status()
	if st.State != hostrt.StateStopped || st.LastError != "exited with status 5" {
		t.Fatalf("status = %+v", st)
	}
	err := in.Ready(t.Context())
	if err == nil || !strings.Contains(err.Error(), "exited with status 5") {
		t.Fatalf("Ready = %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	r := newRuntime(t, "")
	spec := childSpec(t, "missing", nil)
	spec.Command = "no-such-model-server-4c1f"
	_, err := r.Start(t.Context(), spec)
	if !errors.Is(err, exec.ErrNotFound) || !strings.Contains(err.Error(), `cannot run command "no-such-model-server-4c1f": exec: "no-such-model-server-4c1f": executable file not found in $PATH`) {
		t.Fatalf("Start with a missing command: %v", err)
	}
	if _, err := os.Stat(filepath.Join(r.Root(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed start left its directory: %v", err)
	}

	spec = childSpec(t, "../escape", nil)
	if _, err := r.Start(t.Context(), spec); err == nil || !strings.Contains(err.Error(), "id:") {
		t.Fatalf("Start with a bad id: %v", err)
	}

	in := start(t, r, childSpec(t, "twice", nil))
	if _, err := r.Start(t.Context(), childSpec(t, "twice", nil)); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second Start with one id: %v", err)
	}
	waitReady(t, in)
}

func TestLogIsRotated(t *testing.T) {
	t.Parallel()
	r := newRuntime(t, "", WithLogLimit(1024))
	in := start(t, r, childSpec(t, "chatty", map[string]string{"HOSTRT_LOG_LINES": "50"}))
	waitReady(t, in)
	waitFor(t, "output.log.1", func() bool {
		_, err := os.Stat(in.LogPath() + ".1")
		return err == nil
	})
	fi, err := os.Stat(in.LogPath())
	if err != nil || fi.Size() > 1024 {
		t.Fatalf("output.log after rotation: %v, %v bytes", err, fi.Size())
	}
}

func TestRuntimeLocksItsRoot(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	r := newRuntime(t, root)
	if _, err := New(root); err == nil || !strings.Contains(err.Error(), "in use by another Junction (pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second Runtime on one root: %v", err)
	}
	if err := r.Detach(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Start(t.Context(), childSpec(t, "late", nil)); !errors.Is(err, ErrDetached) {
		t.Fatalf("Start after Detach: %v", err)
	}
	r2 := reopen(t, root)
	r2.Detach()
}

// TestRecover plays a Junction restart: a first Runtime starts instances and
// detaches (as if its process had exited), a second one recovers them.
func TestRecover(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	first := newRuntime(t, root)
	pids := map[string]int{}
	addrs := map[string]string{}
	for _, id := range []string{"keep", "drop", "dead"} {
		hi, err := first.Start(t.Context(), childSpec(t, id, nil))
		if err != nil {
			t.Fatal(err)
		}
		st := waitReady(t, hi)
		pids[id], addrs[id] = st.PID, st.Addr
	}
	t.Cleanup(func() { // whatever went wrong, leave no process behind
		for _, pid := range pids {
			signalGroup(pid, syscall.SIGKILL)
		}
	})
	if err := first.Detach(); err != nil {
		t.Fatal(err)
	}
	// One server dies while no Junction watches; an old directory holds
	// only the logs of an instance stopped long ago.
	signalGroup(pids["dead"], syscall.SIGKILL)
	waitFor(t, "dead to die", func() bool { return !running(pids["dead"]) })
	os.MkdirAll(filepath.Join(root, "old"), 0o755)
	os.WriteFile(filepath.Join(root, "old", logName), []byte("old\n"), 0o644)
	// A copy of keep's directory names the same process and port: only one
	// may have it, and the copy must not take the process down with it.
	os.MkdirAll(filepath.Join(root, "keep-copy"), 0o755)
	copied, _ := os.ReadFile(filepath.Join(root, "keep", stateName))
	os.WriteFile(filepath.Join(root, "keep-copy", stateName), copied, 0o644)
	// A state file whose pid now belongs to another process (this one,
	// started at another time) must not get that process signalled.
	os.MkdirAll(filepath.Join(root, "reused"), 0o755)
	if err := writeState(filepath.Join(root, "reused"), savedState{
		Spec: childSpec(t, "reused", nil), PID: os.Getpid(), StartTicks: 1, Port: 1}); err != nil {
		t.Fatal(err)
	}

	second := reopen(t, root)
	var asked []string
	found, err := second.Recover(t.Context(), func(s hostrt.Spec) bool {
		asked = append(asked, s.ID)
		return (s.ID == "keep" || s.ID == "keep-copy") && s.ConfigHash == "h1" && s.OnChange == nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].ID() != "keep" {
		t.Fatalf("Recover adopted %v", found)
	}
	slices.Sort(asked)
	if !slices.Equal(asked, []string{"drop", "keep", "keep-copy"}) {
		t.Fatalf("keep was asked about %v, want drop, keep and keep-copy (dead is not alive)", asked)
	}
	kept := found[0]
	t.Cleanup(func() { stopNow(t, kept) })
	st := kept.Status()
	if !st.Adopted || st.State != hostrt.StateReady || st.PID != pids["keep"] || st.Addr != addrs["keep"] {
		t.Fatalf("adopted status = %+v", st)
	}
	if err := kept.Ready(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := invoke(t, st.Addr, "still here"); got != "still here" {
		t.Fatalf("invocation answered %q", got)
	}
	if running(pids["drop"]) {
		t.Fatalf("unwanted leftover %d still running", pids["drop"])
	}
	for _, id := range []string{"drop", "dead", "old", "keep-copy", "reused"} {
		if _, err := os.Stat(filepath.Join(root, id)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: directory left after Recover: %v", id, err)
		}
	}
	saved, err := readState(filepath.Join(root, "keep"))
	if err != nil || saved.JunctionPID != os.Getpid() {
		t.Fatalf("adopted state file: %+v, %v", saved, err)
	}

	// An adopted server that dies is replaced by a child of our own.
	var rec recorder
	kept.SetOnChange(rec.on)
	signalGroup(pids["keep"], syscall.SIGKILL)
	st = waitStatus(t, kept, "Ready after a restart", func(s hostrt.Status) bool {
		return s.Restarts == 1 && s.State == hostrt.StateReady
	})
	if st.Adopted || st.PID == pids["keep"] || st.LastError != "process "+strconv.Itoa(pids["keep"])+" exited" {
		t.Fatalf("status after the adopted process died = %+v", st)
	}
	if got := rec.seen(); !slices.Equal(got, []hostrt.State{hostrt.StateRestarting, hostrt.StateStarting, hostrt.StateReady}) {
		t.Fatalf("OnChange saw %v", got)
	}
	stopNow(t, kept)
	if got := kept.Status(); got.State != hostrt.StateStopped {
		t.Fatalf("status after Stop = %+v", got)
	}
}

// TestRecoverStopsUnhealthyLeftover: a live leftover that fails its probe is
// stopped, not adopted.
func TestRecoverStopsUnhealthyLeftover(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	first := newRuntime(t, root)
	spec := childSpec(t, "sick", map[string]string{"HOSTRT_PING_FAIL_AFTER": "1"})
	spec.HealthInterval = time.Hour // the first runtime must not restart it
	hi, err := first.Start(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	pid := waitReady(t, hi).PID
	t.Cleanup(func() { signalGroup(pid, syscall.SIGKILL) })
	first.Detach()

	second := reopen(t, root)
	found, err := second.Recover(t.Context(), func(hostrt.Spec) bool { return true })
	if err != nil || len(found) != 0 {
		t.Fatalf("Recover = %v, %v; want nothing adopted", found, err)
	}
	if running(pid) {
		t.Fatalf("unhealthy leftover %d still running", pid)
	}
}

// BenchmarkStartReady measures a start of the test child until its first
// /ping answers, and its stop.
func BenchmarkStartReady(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	r, err := New(b.TempDir(), WithEnv(testEnv()), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Detach()
	ctx := context.Background()
	var ready time.Duration
	i := 0
	for b.Loop() {
		began := time.Now()
		in, err := r.Start(ctx, hostrt.Spec{ID: "bench-" + strconv.Itoa(i), Command: exe})
		if err != nil {
			b.Fatal(err)
		}
		if err := in.Ready(ctx); err != nil {
			b.Fatal(err)
		}
		ready += time.Since(began)
		if err := in.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(ready.Microseconds())/float64(i)/1000, "ms-to-ready/op")
}
