package hostrt

import (
	"strings"
	"testing"
)

func TestContainerValidate(t *testing.T) {
	secs := int64(5)
	ok := Container{Image: "img", ImagePullPolicy: PullNever, NodeSelector: map[string]string{"gpu": "a10g"},
		Tolerations: []Toleration{{Key: "k", Value: "v", Effect: "NoSchedule"}, {Operator: "Exists"}, {Key: "n", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: &secs}}}
	if err := ok.Validate("server."); err != nil {
		t.Fatal(err)
	}
	bad := Container{ImagePullPolicy: "Sometimes", NodeSelector: map[string]string{"": "x"},
		Tolerations: []Toleration{{Value: "v"}, {Key: "k", Operator: "Exists", Value: "v"}, {Key: "k", Operator: "Near"},
			{Key: "k", Effect: "NoRun"}, {Key: "k", Effect: "NoSchedule", TolerationSeconds: &secs}}}
	err := bad.Validate("server.")
	for _, want := range []string{`server.image_pull_policy: "Sometimes"`, "server.node_selector", "server.tolerations[0].key: required",
		"server.tolerations[1].value", `server.tolerations[2].operator: "Near"`, `server.tolerations[3].effect: "NoRun"`,
		"server.tolerations[4].toleration_seconds"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	// A spec with an image may leave the command to the image's entrypoint.
	if err := (Spec{ID: "a", Container: Container{Image: "img"}}).Validate(); err != nil {
		t.Errorf("image without command: %v", err)
	}
}
