package modelserver

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestConfigPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		port int
		dir  string
		mode string
	}{
		{"defaults", nil, map[string]string{EnvModelDir: "/opt/ml/model"}, 8080, "/opt/ml/model", ModeBYOC},
		{"PORT", nil, map[string]string{EnvModelDir: "/m", EnvPortFallback: "9000"}, 9000, "/m", ModeBYOC},
		{"SageMaker port wins over PORT", nil, map[string]string{EnvModelDir: "/m", EnvPortFallback: "9000", EnvPort: "9100"}, 9100, "/m", ModeBYOC},
		{"flags win", []string{"--port", "9200", "--model-dir", "/flag", "--mode", "openai"},
			map[string]string{EnvModelDir: "/env", EnvPort: "9100", EnvMode: "byoc"}, 9200, "/flag", ModeOpenAI},
		{"mode from env", nil, map[string]string{EnvModelDir: "/m", EnvMode: "openai"}, 8080, "/m", ModeOpenAI},
	} {
		c, _, err := parseConfig(tc.args, func(k string) string { return tc.env[k] })
		if err != nil || c.port != tc.port || c.modelDir != tc.dir || c.mode != tc.mode || c.host != "127.0.0.1" {
			t.Errorf("%s: port %d dir %q mode %q host %q err %v", tc.name, c.port, c.modelDir, c.mode, c.host, err)
		}
	}
	c, _, err := parseConfig(nil, func(k string) string {
		return map[string]string{EnvModelDir: "/m", EnvStartupDelay: "2s", EnvDelay: "15ms", EnvFailRate: "0.25", EnvCrashAfter: "9", EnvExitAtStart: "4"}[k]
	})
	if err != nil || c.startupDelay != 2*time.Second || c.delay != 15*time.Millisecond || c.failRate != 0.25 || c.crashAfter != 9 || *c.exitAtStart != 4 {
		t.Fatalf("knobs %+v %v", c, err)
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	env := map[string]string{EnvPort: "http", EnvMode: "grpc", EnvDelay: "soon", EnvFailRate: "1.5", EnvCrashAfter: "0", EnvExitAtStart: "300",
		EnvExecutionParameters: "MaxConcurrentTransforms=4"}
	_, _, err := parseConfig(nil, func(k string) string { return env[k] })
	for _, want := range []string{EnvPort, "no model directory", `mode "grpc"`, EnvDelay, EnvFailRate, EnvCrashAfter, EnvExitAtStart, EnvExecutionParameters} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
	if _, _, err := parseConfig([]string{"--model-dir", "/m", "extra"}, func(string) string { return "" }); err == nil {
		t.Error("a stray argument was accepted")
	}
	if _, _, err := parseConfig([]string{"-h"}, func(string) string { return "" }); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestMainHelpAndUsageErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"-h"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "-model-dir") {
		t.Fatalf("help: %d %q", code, out.String())
	}
	out.Reset()
	if code := Main([]string{"--mode", "nope", "--model-dir", "/m"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `mode "nope"`) {
		t.Fatalf("bad mode: %d %q", code, errOut.String())
	}
}
