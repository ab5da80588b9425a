// Package internal_test checks that the directory layout keeps the
// dependency direction the README's layout table describes.
package internal_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/junctionhq/junction/"

// imports lists every package of the module with the module packages it
// imports (not counting its tests).
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pkg := strings.TrimPrefix(f[0], module)
		deps[pkg] = nil
		for _, imp := range f[1:] {
			if rest, ok := strings.CutPrefix(imp, module); ok {
				deps[pkg] = append(deps[pkg], rest)
			}
		}
	}
	if len(deps) < 40 {
		t.Fatalf("go list found only %d packages", len(deps))
	}
	return deps
}

func TestWireFormatsImportNothingElseOfJunction(t *testing.T) {
	for pkg, deps := range imports(t) {
		if !strings.HasPrefix(pkg, "internal/wire/") {
			continue
		}
		for _, d := range deps {
			if !strings.HasPrefix(d, "internal/wire/") {
				t.Errorf("%s imports %s: wire formats may import only other wire formats", pkg, d)
			}
		}
	}
}

func TestTheBinaryImportsNoTestKit(t *testing.T) {
	for pkg, deps := range imports(t) {
		if strings.HasPrefix(pkg, "internal/testkit/") || strings.HasPrefix(pkg, "bench") {
			continue
		}
		for _, d := range deps {
			if strings.HasPrefix(d, "internal/testkit/") {
				t.Errorf("%s imports the test kit %s", pkg, d)
			}
		}
	}
}
