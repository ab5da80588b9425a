package process

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The tests' model server is this test binary run again with
// HOSTRT_TEST_CHILD=1: a tiny BYOC server on $SAGEMAKER_BIND_TO_PORT
// (GET /ping, POST /invocations echo, GET /v1/models) whose faults are
// chosen by environment variables:
//
//	HOSTRT_ONCE=<file>       apply the faults below only in the first run
//	                         (the one that creates <file>)
//	HOSTRT_EXIT_AT_START=N   exit with status N before listening
//	HOSTRT_HANG_START=1      never listen
//	HOSTRT_CRASH_AFTER=D     exit with status 3 D after listening
//	HOSTRT_PING_FAIL_AFTER=N answer /ping 500 after N good answers
//	HOSTRT_IGNORE_TERM=1     ignore SIGTERM (itself and its grandchild)
//	HOSTRT_GRANDCHILD=1      start a grandchild; GET /grandchild gives its pid
//	HOSTRT_LOG_LINES=N       print N lines of 100 bytes at start
//
// GET /env answers the variables named in ?name= as a JSON object (all of
// them without ?name=); GET /find?name=F looks for a file F in the working
// directory and each directory above it and answers the first path it
// could read, or nothing.
func TestMain(m *testing.M) {
	switch os.Getenv("HOSTRT_TEST_CHILD") {
	case "1":
		runChild()
		return
	case "sleep":
		if os.Getenv("HOSTRT_IGNORE_TERM") != "" {
			signal.Ignore(syscall.SIGTERM)
		}
		time.Sleep(time.Hour)
		return
	}
	code := m.Run()
	if code == 0 {
		code = checkLeaks()
	}
	os.Exit(code)
}

// checkLeaks fails the run if a goroutine of this package outlives the
// tests: every supervisor, waiter and poller must have ended with its
// instance.
func checkLeaks() int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		leaked := leakedGoroutines()
		if leaked == "" {
			return 0
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "goroutines left running after the tests:\n%s\n", leaked)
			return 1
		}
		time.Sleep(10 * time.Millisecond) // polling, not synchronising
	}
}

func leakedGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaked []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "hostrt/process.") && !strings.Contains(g, "process.TestMain") {
			leaked = append(leaked, g)
		}
	}
	return strings.Join(leaked, "\n\n")
}

func runChild() {
	faulty := true
	if once := os.Getenv("HOSTRT_ONCE"); once != "" {
		f, err := os.OpenFile(once, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		faulty = err == nil
		if f != nil {
			f.Close()
		}
	}
	knob := func(name string) string {
		if !faulty {
			return ""
		}
		return os.Getenv(name)
	}
	if code := knob("HOSTRT_EXIT_AT_START"); code != "" {
		n, _ := strconv.Atoi(code)
		fmt.Println("child: exiting at start")
		os.Exit(n)
	}
	ignoreTerm := os.Getenv("HOSTRT_IGNORE_TERM") != ""
	term := make(chan os.Signal, 1)
	if ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(term, syscall.SIGTERM)
	}
	lines, _ := strconv.Atoi(os.Getenv("HOSTRT_LOG_LINES"))
	for range lines {
		fmt.Println(strings.Repeat("x", 99))
	}
	grandchild := 0
	if os.Getenv("HOSTRT_GRANDCHILD") != "" {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "HOSTRT_TEST_CHILD=sleep")
		if err := cmd.Start(); err != nil {
			fmt.Println("child: grandchild:", err)
			os.Exit(4)
		}
		grandchild = cmd.Process.Pid
	}
	if knob("HOSTRT_HANG_START") == "" {
		serveChild(knob, grandchild)
	} else {
		fmt.Println("child: hanging at start")
	}
	if ignoreTerm {
		time.Sleep(time.Hour)
	}
	<-term
	fmt.Println("child: SIGTERM received, shutting down")
	os.Exit(0)
}

func serveChild(knob func(string) string, grandchild int) {
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("SAGEMAKER_BIND_TO_PORT"))
	if err != nil {
		fmt.Println("child: listen:", err)
		os.Exit(5)
	}
	failAfter, _ := strconv.Atoi(knob("HOSTRT_PING_FAIL_AFTER"))
	var pings atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) {
		if n := pings.Add(1); failAfter > 0 && n > int64(failAfter) {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"object":"list","data":[]}`)
	})
	mux.HandleFunc("POST /invocations", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, r *http.Request) {
		out := map[string]string{}
		for _, name := range r.URL.Query()["name"] {
			if v, ok := os.LookupEnv(name); ok {
				out[name] = v
			}
		}
		if !r.URL.Query().Has("name") {
			for _, kv := range os.Environ() {
				k, v, _ := strings.Cut(kv, "=")
				out[k] = v
			}
		}
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /find", func(w http.ResponseWriter, r *http.Request) {
		rel := r.URL.Query().Get("name")
		for range 32 {
			if _, err := os.ReadFile(rel); err == nil {
				abs, _ := filepath.Abs(rel)
				fmt.Fprint(w, abs)
				return
			}
			rel = filepath.Join("..", rel)
		}
	})
	mux.HandleFunc("GET /grandchild", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, grandchild)
	})
	go http.Serve(ln, mux)
	if d := knob("HOSTRT_CRASH_AFTER"); d != "" {
		after, _ := time.ParseDuration(d)
		time.AfterFunc(after, func() {
			fmt.Println("child: crashing")
			os.Exit(3)
		})
	}
}
