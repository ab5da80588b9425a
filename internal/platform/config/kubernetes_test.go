package config

import (
	"strings"
	"testing"
)

func TestHostingRuntimeIsChecked(t *testing.T) {
	good := "hosting: {runtime: kubernetes, kubernetes: {namespace: ml, default_image: j:1, image_pull_policy: IfNotPresent, port: 8080, artifact_claim: art}}\n"
	cfg, err := Parse([]byte(good), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if k := cfg.Hosting.Kubernetes; cfg.Hosting.Runtime != RuntimeKubernetes || k.Namespace != "ml" || k.ArtifactClaim != "art" || k.Port != 8080 {
		t.Fatalf("parsed %+v", cfg.Hosting)
	}
	bad := "hosting: {runtime: nomad, kubernetes: {image_pull_policy: Sometimes, port: 70000, artifact_claim: a, artifact_host_path: true}}\n"
	_, err = Parse([]byte(bad), func(string) string { return "" })
	for _, want := range []string{`hosting.runtime: "nomad"`, `hosting.kubernetes.image_pull_policy: "Sometimes"`,
		"hosting.kubernetes.port", "artifact_claim or artifact_host_path, not both"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}
