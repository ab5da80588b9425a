// Package junctiontest runs the real junction binary in tests: it builds
// ./cmd/junction once per test binary and starts "junction serve" as a
// child process with its own config, data directory and loopback port, so
// that a test can send it requests, stop it with SIGTERM, kill it with
// SIGKILL and start it again on the same data. It is for tests only.
//
// A package that uses it removes the built binary when its tests end:
//
//	func TestMain(m *testing.M) { os.Exit(junctiontest.Run(m)) }
package junctiontest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Run runs a package's tests and then removes the binary built for them;
// call it from TestMain: os.Exit(junctiontest.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	Remove()
	return code
}

// Remove deletes the binary built for this test binary, if any. Run calls
// it; a TestMain that already wraps m.Run another way calls it itself.
func Remove() {
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}

// Binary returns the path of a junction binary built from this module's
// ./cmd/junction, building it on first use (with -race when the test
// binary has it, so that the child's races are caught too).
func Binary(tb testing.TB) string {
	tb.Helper()
	built.once.Do(func() { built.path, built.err = build() })
	if built.err != nil {
		tb.Fatal(built.err)
	}
	return built.path
}

func build() (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if root == "." || root == "" {
		return "", errors.New("junctiontest: not inside the junction module")
	}
	dir, err := os.MkdirTemp("", "junctiontest-")
	if err != nil {
		return "", err
	}
	built.dir = dir
	path := filepath.Join(dir, "junction")
	args := []string{"build", "-o", path}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/junction")...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/junction: %w\n%s", err, out.String())
	}
	return path, nil
}

// hermetic is the environment of a child: this process's, without the
// variables through which the embedded defaults and the CLI reach real
// providers or another Junction. Tests add their own with Env.
func hermetic(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "JUNCTION_"), strings.HasPrefix(name, "OPENAI_"),
			strings.HasPrefix(name, "ANTHROPIC_"), strings.HasPrefix(name, "AWS_"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// Command returns the junction binary run with args and a hermetic
// environment plus env ("NAME=value"), ready to run.
func Command(tb testing.TB, env []string, args ...string) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command(Binary(tb), args...)
	cmd.Env = hermetic(env)
	return cmd
}
