package config

import (
	"fmt"
	"go/build"
	"strings"
	"testing"
)

// A section type of the kind a configured package declares.
type words struct {
	ID    string   `yaml:"id"`
	Words []string `yaml:"words"`
}

func TestSectionsAreDecodedByTheirPackagesWithTheFilesLines(t *testing.T) {
	c, err := Parse([]byte(`server: {addr: "127.0.0.1:0"}
guardrails:
  - id: a
    words: [x, y]
  - id: b
    wordz: [z]
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var got []words
	err = c.Guardrails.Decode(&got)
	if err == nil || !strings.Contains(err.Error(), "guardrails:") || !strings.Contains(err.Error(), "line 6: field wordz not found") {
		t.Fatalf("decoding an unknown field: %v, want the section and the file's line named", err)
	}
	var gov struct{ RedisURL string }
	if err := c.Governance.Decode(&gov); err != nil || gov.RedisURL != "" || !c.Governance.IsZero() {
		t.Fatalf("a section the file lacks: %v, %+v", err, gov)
	}

	s, err := SectionOf("guardrails", []words{{ID: "c", Words: []string{"w"}}})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	if err := s.Decode(&got); err != nil || len(got) != 1 || got[0].ID != "c" || got[0].Words[0] != "w" {
		t.Fatalf("a section built in code: %v, %+v", err, got)
	}
}

func TestChecksReportWithTheRestOfTheConfig(t *testing.T) {
	check := func(c *Config) []string {
		var ws []words
		if err := c.Guardrails.Decode(&ws); err != nil {
			return []string{err.Error()}
		}
		var p []string
		for i, w := range ws {
			if len(w.Words) == 0 {
				p = append(p, fmt.Sprintf("guardrails[%d].words: required", i))
			}
		}
		return p
	}
	_, err := Parse([]byte(`
log: {level: loud}
guardrails: [{id: a}]
`), func(string) string { return "" }, check)
	if err == nil || !strings.Contains(err.Error(), "log.level:") || !strings.Contains(err.Error(), "guardrails[0].words: required") {
		t.Fatalf("got %v, want the config's problem and the check's in one error", err)
	}
}

// TestConfigImportsNoPackageItConfigures keeps the dependency one way:
// the packages Junction is made of import config, never the reverse.
func TestConfigImportsNoPackageItConfigures(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if strings.HasPrefix(imp, "github.com/junctionhq/junction/") {
			t.Errorf("config imports %s", imp)
		}
	}
}
