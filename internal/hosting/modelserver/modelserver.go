// Package modelserver is Junction's reference model server: a small HTTP
// server that loads the refmodel artifact from SM_MODEL_DIR and answers
// either the SageMaker "bring your own container" contract (GET /ping,
// POST /invocations) or the OpenAI chat API (GET /v1/models, POST
// /v1/chat/completions). Junction starts it as the child process of a
// self-hosted endpoint in tests and in the quick start, in place of a real
// inference container.
//
// Every answer is computed by the loaded model; nothing is canned. On top
// of that the server has fault knobs, so that tests can make it slow,
// failing, hanging, crashing, unhealthy or unable to start: at start-up
// through environment variables, and — only when started with --faults or
// JUNCTION_MODEL_SERVER_FAULTS=1 — per request through the
// X-Amzn-SageMaker-Custom-Attributes header and live through POST /faults.
// The request knobs are off by default because whoever may invoke an
// endpoint could otherwise crash its instances. See docs/model-server.md.
//
// It is not a production server: it has no authentication, and with the
// request knobs on, anyone who can reach it can break it. It listens on
// 127.0.0.1 unless told otherwise.
package modelserver

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// Environment variables the server reads.
const (
	// EnvPort is the SageMaker port variable, used when --port is not given.
	EnvPort = "SAGEMAKER_BIND_TO_PORT"
	// EnvPortFallback is the generic port variable, used after EnvPort.
	EnvPortFallback = "PORT"
	// EnvModelDir is the artifact directory, used when --model-dir is not
	// given.
	EnvModelDir = "SM_MODEL_DIR"
	// EnvMode selects byoc or openai when --mode is not given.
	EnvMode = "JUNCTION_MODEL_SERVER_MODE"
	// EnvStartupDelay is a duration ("2s") that /ping stays 503 after the
	// model has loaded.
	EnvStartupDelay = "JUNCTION_MODEL_SERVER_STARTUP_DELAY"
	// EnvDelay is a duration added to every invocation.
	EnvDelay = "JUNCTION_MODEL_SERVER_DELAY"
	// EnvFailRate is the fraction (0 to 1) of invocations answered 500.
	EnvFailRate = "JUNCTION_MODEL_SERVER_FAIL_RATE"
	// EnvCrashAfter makes the process exit with CrashExitCode, without
	// answering, on the Nth invocation.
	EnvCrashAfter = "JUNCTION_MODEL_SERVER_CRASH_AFTER"
	// EnvExitAtStart makes Main return this exit code at once, as a server
	// that cannot start.
	EnvExitAtStart = "JUNCTION_MODEL_SERVER_EXIT_AT_START"
	// EnvCallCost is a duration every invocation spends on the server's
	// one device, one call at a time ("2ms"): the fixed part of a call's
	// cost, for measuring batching.
	EnvCallCost = "JUNCTION_MODEL_SERVER_CALL_COST"
	// EnvItemCost is a duration added to a call's cost per item (per
	// text, or per batch item).
	EnvItemCost = "JUNCTION_MODEL_SERVER_ITEM_COST"
	// EnvMemory is the memory, in bytes, a multi-model server has for
	// models (each counts the size of its model.json); a load that does
	// not fit is answered 507.
	EnvMemory = "JUNCTION_MODEL_SERVER_MEMORY_BYTES"
	// EnvExecutionParameters is a JSON object the server answers GET
	// /execution-parameters with, as a container tells SageMaker's batch
	// transform its defaults ({"MaxConcurrentTransforms": 4,
	// "BatchStrategy": "MultiRecord", "MaxPayloadInMB": 6}); unset, the
	// route is not served (404), as in most containers.
	EnvExecutionParameters = "JUNCTION_MODEL_SERVER_EXECUTION_PARAMETERS"
	// EnvFaults, set to 1 (or true), turns on the fault knobs a request
	// can reach: the custom-attributes header and /faults. Without it, or
	// --faults, they are ignored and /faults answers 404.
	EnvFaults = "JUNCTION_MODEL_SERVER_FAULTS"
)

// Modes of the server.
const (
	// ModeBYOC serves the SageMaker container contract.
	ModeBYOC = "byoc"
	// ModeOpenAI serves the OpenAI chat completions API.
	ModeOpenAI = "openai"
	// ModeMultiModel serves SageMaker's multi-model container contract:
	// models loaded and unloaded through /models, invoked through
	// /models/{name}/invoke (multimodel.go).
	ModeMultiModel = "multi-model"
)

// CrashExitCode is the exit status of a crash asked for by a fault knob.
const CrashExitCode = 3

// Defaults.
const (
	// DefaultPort is the port when neither --port nor the environment
	// gives one, as in SageMaker.
	DefaultPort = 8080
	// DefaultShutdownTimeout bounds the graceful stop; it stays inside the
	// 30 seconds SageMaker allows between SIGTERM and SIGKILL.
	DefaultShutdownTimeout = 10 * time.Second
)

// config is the server's settings after flags and environment are read.
type config struct {
	host            string
	port            int
	modelDir        string
	mode            string
	servedName      string
	shutdownTimeout time.Duration

	startupDelay time.Duration
	delay        time.Duration
	failRate     float64
	crashAfter   int64
	// callCost and itemCost are spent per call and per item, one call at
	// a time.
	callCost, itemCost time.Duration
	// memory bounds a multi-model server's loaded models, in bytes (0:
	// no bound).
	memory      int64
	exitAtStart *int
	// faults turns on the knobs a request can reach (custom attributes
	// and /faults).
	faults bool
	// execParams answers GET /execution-parameters; nil: not served.
	execParams []byte
}

const usageText = `Usage: model-server [flags]

Runs Junction's reference model server on the artifact in --model-dir
(default $SM_MODEL_DIR). Stops on SIGTERM or SIGINT after finishing the
requests in flight. Fault knobs: see docs/model-server.md.

Flags:
`

// parseConfig reads flags from args and, for what they leave unset, the
// environment through getenv.
func parseConfig(args []string, getenv func(string) string) (config, *flag.FlagSet, error) {
	var c config
	fs := flag.NewFlagSet("model-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.host, "host", "127.0.0.1", "address to listen on")
	port := fs.Int("port", 0, "port to listen on (default $"+EnvPort+", else $"+EnvPortFallback+", else 8080; 0 picks a free one)")
	fs.StringVar(&c.modelDir, "model-dir", "", "artifact directory holding model.json (default $"+EnvModelDir+")")
	fs.StringVar(&c.mode, "mode", "", "byoc (SageMaker /ping and /invocations), openai (/v1/chat/completions) or multi-model (SageMaker's /models) (default $"+EnvMode+", else byoc)")
	fs.StringVar(&c.servedName, "served-model-name", "", "model id in openai mode (default: the artifact's name)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", DefaultShutdownTimeout, "how long SIGTERM waits for requests in flight")
	fs.BoolVar(&c.faults, "faults", false, "turn on the fault knobs requests can reach: the "+customAttributes+" header and /faults (default $"+EnvFaults+")")
	if err := fs.Parse(args); err != nil {
		return c, fs, err
	}
	if fs.NArg() > 0 {
		return c, fs, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var errs []error
	bad := func(name, value, want string) {
		errs = append(errs, fmt.Errorf("%s=%q: %s", name, value, want))
	}
	c.port = DefaultPort
	switch {
	case set["port"]:
		c.port = *port
	case getenv(EnvPort) != "" || getenv(EnvPortFallback) != "":
		name := EnvPort
		if getenv(name) == "" {
			name = EnvPortFallback
		}
		p, err := strconv.Atoi(getenv(name))
		if err != nil {
			bad(name, getenv(name), "want a port number")
		}
		c.port = p
	}
	if c.port < 0 || c.port > 65535 {
		errs = append(errs, fmt.Errorf("port %d: want 0 to 65535", c.port))
	}
	if !set["model-dir"] {
		c.modelDir = getenv(EnvModelDir)
	}
	if !set["mode"] {
		c.mode = getenv(EnvMode)
	}
	if c.mode == "" {
		c.mode = ModeBYOC
	}
	if c.mode != ModeBYOC && c.mode != ModeOpenAI && c.mode != ModeMultiModel {
		errs = append(errs, fmt.Errorf("mode %q: want %s, %s or %s", c.mode, ModeBYOC, ModeOpenAI, ModeMultiModel))
	}
	if c.modelDir == "" && c.mode != ModeMultiModel {
		errs = append(errs, fmt.Errorf("no model directory: pass --model-dir or set %s", EnvModelDir))
	}
	if v := getenv(EnvMemory); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			bad(EnvMemory, v, "want a number of bytes, 1 or more")
		}
		c.memory = n
	}
	if c.shutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-timeout %v: must not be negative", c.shutdownTimeout))
	}
	duration := func(name string) time.Duration {
		v := getenv(name)
		if v == "" {
			return 0
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			bad(name, v, `want a duration such as "500ms" or "2s"`)
		}
		return d
	}
	c.startupDelay = duration(EnvStartupDelay)
	c.delay = duration(EnvDelay)
	c.callCost = duration(EnvCallCost)
	c.itemCost = duration(EnvItemCost)
	if v := getenv(EnvFailRate); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 0 && f <= 1) {
			bad(EnvFailRate, v, "want a fraction from 0 to 1")
		}
		c.failRate = f
	}
	if v := getenv(EnvCrashAfter); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			bad(EnvCrashAfter, v, "want a count of invocations, 1 or more")
		}
		c.crashAfter = n
	}
	if v := getenv(EnvExecutionParameters); v != "" {
		var obj map[string]any
		if json.Unmarshal([]byte(v), &obj) != nil {
			bad(EnvExecutionParameters, v, `want a JSON object such as {"MaxConcurrentTransforms": 4}`)
		}
		c.execParams = []byte(v)
	}
	if v := getenv(EnvExitAtStart); v != "" {
		code, err := strconv.Atoi(v)
		if err != nil || code < 0 || code > 255 {
			bad(EnvExitAtStart, v, "want an exit code from 0 to 255")
		}
		c.exitAtStart = &code
	}
	if v := getenv(EnvFaults); v != "" && !set["faults"] {
		on, err := strconv.ParseBool(v)
		if err != nil {
			bad(EnvFaults, v, "want 1 or 0")
		}
		c.faults = on
	}
	return c, fs, errors.Join(errs...)
}

// Main runs the model server with command-line args (without the program
// name) until SIGTERM or SIGINT, and returns the process exit status: 0
// after a clean stop, 1 when the model cannot be loaded or the port cannot
// be bound, 2 for bad flags or environment, or the code that
// JUNCTION_MODEL_SERVER_EXIT_AT_START asks for. A crash asked for by a
// fault knob does not return: it exits the process with CrashExitCode.
// Help goes to stdout; logs and errors go to stderr.
func Main(args []string, stdout, stderr io.Writer) int {
	cfg, fs, err := parseConfig(args, os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usageText)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "model-server: %v\nRun with -h for the flags.\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if cfg.exitAtStart != nil {
		log.Warn("exiting at start", "reason", EnvExitAtStart, "code", *cfg.exitAtStart)
		return *cfg.exitAtStart
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal during the graceful stop kills at once
	}()
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port)))
	if err != nil {
		log.Error("cannot listen", "err", err)
		return 1
	}
	s := newServer(cfg, log, os.Exit)
	if err := s.serve(ctx, ln); err != nil {
		log.Error("model server failed", "err", err)
		return 1
	}
	return 0
}
