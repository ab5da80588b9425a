package hostrt

import (
	"strings"
	"testing"
	"time"
)

func TestSpecDefaults(t *testing.T) {
	s := Spec{ID: "a", Command: "serve"}.WithDefaults()
	if s.ServerType != ServerBYOC || s.StartupTimeout != 4*time.Minute || s.HealthInterval != 2*time.Second ||
		s.UnhealthyAfter != 3 || s.StopGrace != 30*time.Second {
		t.Fatalf("defaults = %+v", s)
	}
	set := Spec{StartupTimeout: time.Second, HealthInterval: time.Millisecond, UnhealthyAfter: 1, StopGrace: time.Nanosecond}
	if got := set.WithDefaults(); got.StartupTimeout != time.Second || got.HealthInterval != time.Millisecond ||
		got.UnhealthyAfter != 1 || got.StopGrace != time.Nanosecond {
		t.Fatalf("WithDefaults changed set fields: %+v", got)
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		spec Spec
		want string // "" for valid
	}{
		{Spec{ID: "ep1-blue-v1-0-k3j2", Command: "serve"}, ""},
		{Spec{ID: "ep1.cfg.v1.ab12", Command: "serve", ServerType: ServerOpenAI, GPUs: []int{0, 1}}, ""},
		{Spec{Command: "serve"}, "id: must not be empty"},
		{Spec{ID: "..", Command: "serve"}, "not a usable instance id"},
		{Spec{ID: "a/b", Command: "serve"}, "may hold only"},
		{Spec{ID: "a"}, "command: must not be empty"},
		{Spec{ID: "a", Command: "serve", ServerType: "grpc"}, `server_type: "grpc"`},
		{Spec{ID: "a", Command: "serve", GPUs: []int{-1}}, "gpus: -1"},
		{Spec{ID: "a", Command: "serve", MemoryMB: -1}, "must not be negative"},
	}
	for _, tc := range tests {
		err := tc.spec.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.spec, err, tc.want)
		}
	}
	// Every problem is reported, not just the first.
	err := Spec{ServerType: "x"}.Validate()
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Fatalf("Validate reported %v, want three problems", err)
	}
}

func TestProbePath(t *testing.T) {
	if got := (Spec{}).ProbePath(); got != "/ping" {
		t.Fatalf("BYOC probe path = %q", got)
	}
	if got := (Spec{ServerType: ServerOpenAI}).ProbePath(); got != "/v1/models" {
		t.Fatalf("OpenAI probe path = %q", got)
	}
}
