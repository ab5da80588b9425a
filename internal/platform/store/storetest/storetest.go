// Package storetest gives tests the databases Junction runs on: a SQLite
// file, or a fresh database on a throwaway PostgreSQL server that the
// test binary starts on first use and stops when it exits.
//
// The server is PostgreSQL's own binaries (Debian: apt-get install
// postgresql), found in /usr/lib/postgresql/*/bin or on PATH. initdb and
// postgres refuse to run as root; as root, they run as the postgres user
// that Debian's package creates, by setting the child process's
// credentials (no su, runuser or sudo needed). Call Main from TestMain
// to stop the server when the tests end.
// The server listens on a free loopback port with its socket and data in
// a temporary directory, fsync off, and is sent SIGQUIT if the test
// binary dies without stopping it (the next start removes what it left).
//
// The environment variable JUNCTION_TEST_POSTGRES changes that: "skip"
// skips the PostgreSQL cases; a postgres:// URL uses that server (which
// must let the user create databases) instead of starting one.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Backend is a kind of database a test can run against.
type Backend struct {
	// Name is "sqlite" or "postgres", for subtest names.
	Name string
	// DSN returns a new, empty database for t, to pass to store.Open.
	DSN func(t testing.TB) string
}

// Backends lists every backend, for tests that run once on each.
var Backends = []Backend{{"sqlite", SQLite}, {"postgres", Postgres}}

// SQLite returns the path of a new SQLite file in t's temporary
// directory.
func SQLite(t testing.TB) string {
	return filepath.Join(t.TempDir(), "junction.db")
}

// EnvVar is the environment variable that skips the PostgreSQL cases
// ("skip") or names a server to use instead of starting one.
const EnvVar = "JUNCTION_TEST_POSTGRES"

var (
	once    sync.Once
	srv     *server
	srvErr  error
	dbCount atomic.Int64
)

// Postgres returns the URL of a new, empty database on the test
// server, starting the server on first use. Without PostgreSQL installed
// the test fails, saying how to install it, unless JUNCTION_TEST_POSTGRES
// is "skip".
func Postgres(t testing.TB) string {
	t.Helper()
	env := os.Getenv(EnvVar)
	if env == "skip" {
		t.Skipf("%s=skip", EnvVar)
	}
	once.Do(func() {
		if env != "" {
			srv, srvErr = &server{url: env}, nil
			return
		}
		srv, srvErr = start()
	})
	if srvErr != nil {
		t.Fatalf("PostgreSQL for tests: %v", srvErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, srv.url)
	if err != nil {
		t.Fatalf("PostgreSQL for tests: %v", err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("junction_test_%d_%d", os.Getpid(), dbCount.Add(1))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("PostgreSQL for tests: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, srv.url); err == nil {
			conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(ctx)
		}
	})
	u, _ := url.Parse(srv.url)
	u.Path = "/" + name
	return u.String()
}

// Main runs a test binary's tests, then stops the PostgreSQL server if
// one was started, and exits. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the PostgreSQL server if one was started, for a TestMain
// that runs its tests some other way (after m.Run has returned).
func Stop() {
	if srv != nil {
		srv.stop()
	}
}

// server is a running PostgreSQL; cmd is nil for one named by EnvVar.
type server struct {
	url    string
	dir    string
	cmd    *exec.Cmd
	exited chan error // receives cmd's exit
}

const installHint = "install PostgreSQL's server binaries (Debian, Ubuntu: apt-get install -y postgresql; " +
	"CI does) or set " + EnvVar + "=skip to skip these tests, or to a postgres:// URL to use a running server"

// start makes a cluster in a temporary directory and starts it.
func start() (*server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and initdb will not: the postgres user it could run as is missing (%v); %s", err, installHint)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	removeStale()
	dir, err := os.MkdirTemp("", fmt.Sprintf("junction-pg-%d-", os.Getpid()))
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir}
	fail := func(err error) (*server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v\n%s", err, out))
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return fail(err)
	}
	defer logFile.Close()
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	// SIGQUIT is PostgreSQL's immediate shutdown: if this process dies
	// without stopping the server, the kernel stops it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	if err := s.cmd.Start(); err != nil {
		return fail(err)
	}
	s.exited = make(chan error, 1)
	go func() { s.exited <- s.cmd.Wait() }()
	s.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.url)
		if err == nil {
			conn.Close(ctx)
			cancel()
			return s, nil
		}
		cancel()
		select {
		case werr := <-s.exited:
			log, _ := os.ReadFile(logFile.Name())
			return fail(fmt.Errorf("postgres exited while starting (%v):\n%s", werr, log))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.cmd.Process.Kill()
			<-s.exited
			return fail(fmt.Errorf("postgres did not accept connections within a minute: %v", err))
		}
	}
}

// stop shuts the server down (fast: open sessions are ended) and removes
// its directory.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	os.RemoveAll(s.dir)
}

// removeStale removes the directories of servers whose test binaries
// exited without calling Main (their servers died with them): the
// directory names the process that made it.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "junction-pg-*-*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.Split(filepath.Base(d), "-")[2])
		if err == nil && pid > 0 && errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}

// binDir finds the directory of initdb and postgres: the newest of
// Debian's /usr/lib/postgresql/VERSION/bin, or the one on PATH.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("initdb and postgres were not found in /usr/lib/postgresql/*/bin or on PATH; " + installHint)
}

func version(binDir string) int {
	n, _ := strconv.Atoi(strings.SplitN(filepath.Base(filepath.Dir(binDir)), ".", 2)[0])
	return n
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// freePort returns a loopback TCP port that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
