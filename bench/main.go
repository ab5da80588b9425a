// Command bench measures what Junction costs per request. It sends the
// same load straight to a zero-latency fake upstream ("direct"), through a
// bare reverse proxy ("proxy", the cost of any HTTP hop) and through
// Junction, plain and streamed, and reports each against direct from the
// same run: the machines it runs on are shared and noisy, so only ratios
// and differences measured side by side mean anything. Run it from the
// repository root:
//
//	go run ./bench                          # -c 50 -duration 10s -warmup 2s, about 100 s
//	go run ./bench -out bench/results/mine.json
//	go run ./bench -inproc -cpuprofile /tmp/prof/cpu.pprof
//	go tool pprof -tagfocus role=junction /tmp/prof/cpu-plain-junction-c50.pprof
//	go run ./bench -governance             # limits and budgets in memory, on Redis and a Redis Cluster (governance.go)
//	go run ./bench -open-streams 5000 -soak 10m  # Junction's RSS with 5,000 streams open (streams.go)
//
// The fake upstream (internal/testkit/fakeopenai) runs in the harness and stamps
// each streamed content chunk with its send time, so the client can tell
// how long the chunk took to reach it. Junction runs as `junction serve`,
// built from ./cmd/junction into a temporary directory, with its ledger
// and access log on; the reference proxy is this program run again as a
// child. Each scenario's measured time is cut into rounds interleaved with
// the other targets', so drift in the machine's speed falls on all alike.
// See docs/performance.md for the method and the goals; bench is a
// measuring tool, not a test, and fails only when it cannot run.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"
)

// defaultOut is where a run's results go unless -out says otherwise.
const defaultOut = "bench/results/latest.json"

// settings are the run's flags.
type settings struct {
	Concurrency int           `json:"concurrency"`
	Duration    time.Duration `json:"-"`
	Warmup      time.Duration `json:"-"`
	Unloaded    time.Duration `json:"-"`
	Chunks      int           `json:"chunks_per_stream"`
	Reference   bool          `json:"reference_proxy"`
	Rounds      int           `json:"rounds"`
	// GatewayProcs is the children's GOMAXPROCS; 0 is Go's default.
	GatewayProcs int     `json:"gateway_gomaxprocs,omitempty"`
	Gateway      string  `json:"gateway"`
	Seconds      float64 `json:"duration_s"`
	WarmupS      float64 `json:"warmup_s"`
	UnloadedS    float64 `json:"unloaded_duration_s"`
	// NoJournal adds a second Junction with ledger.journal off (target
	// junction-nojournal): the journal's cost, measured in the same run.
	NoJournal bool `json:"no_journal_target,omitempty"`
	// Governed adds the governed lane (target junction-governed): the same
	// Junction, called with a key that has RPM and TPM limits and a team
	// with a hard budget, on a model with a one-regex guardrail, with
	// request tags.
	Governed bool `json:"governed_lane"`
	// Before is a second junction binary measured beside the first, as
	// target before (and before-governed): an A/B in one run.
	Before string `json:"before_binary,omitempty"`

	out, bin, cpuprofile, trace string
	inproc, keep                bool
}

func main() {
	if up := os.Getenv(proxyUpstreamEnv); up != "" {
		// This process is the reference proxy the harness started.
		if err := serveReferenceProxy(up, os.Getenv(proxyAddrEnv)); err != nil {
			fail(err)
		}
		return
	}
	var s settings
	flag.IntVar(&s.Concurrency, "c", 50, "concurrent keep-alive connections")
	flag.DurationVar(&s.Duration, "duration", 10*time.Second, "measured time of each scenario")
	flag.DurationVar(&s.Warmup, "warmup", 2*time.Second, "unmeasured load before each scenario")
	flag.DurationVar(&s.Unloaded, "unloaded", 2*time.Second, "measured time of each scenario again at one connection, which shows the gateway's own latency without queueing (0 skips them)")
	flag.BoolVar(&s.Reference, "reference", true, "also measure a bare reverse proxy (net/http/httputil) placed as Junction is: the cost of any proxy hop")
	flag.IntVar(&s.Rounds, "rounds", 5, "slices each scenario's measured time is cut into, interleaved with the other targets' (1 with -cpuprofile)")
	flag.IntVar(&s.Chunks, "chunks", 20, "words in the fake's reply: content chunks per stream")
	flag.StringVar(&s.out, "out", defaultOut, "write the results as JSON here (empty: don't)")
	flag.BoolVar(&s.inproc, "inproc", false, "run Junction inside the harness instead of as a child process")
	flag.IntVar(&s.GatewayProcs, "gateway-procs", 0, "GOMAXPROCS of the Junction and reference proxy processes (0: the Go default, one per CPU)")
	flag.BoolVar(&s.keep, "keep", false, "keep the temporary directory (Junction's config, data, ledger and logs) and print its path")
	flag.StringVar(&s.bin, "junction", "", "a built junction binary to run (default: go build ./cmd/junction)")
	flag.StringVar(&s.cpuprofile, "cpuprofile", "", "with -inproc, write a CPU profile of each scenario to this file, the scenario's name inserted before the extension; goroutines are labelled role=loadgen, upstream or junction")
	flag.StringVar(&s.trace, "trace", "", "with -inproc, write a runtime execution trace of each scenario to this file, the scenario's name inserted before the extension (go tool trace reads it): where goroutines block and wake")
	flag.BoolVar(&s.Governed, "governed", true, "also measure the governed lane (junction-governed): a key with RPM/TPM limits, a team budget, a one-regex guardrail and tags, on the same Junction")
	flag.StringVar(&s.Before, "before", "", "also measure this junction binary, beside the one built or named by -junction, as target before (and before-governed): the two versions side by side in one run")
	flag.BoolVar(&s.NoJournal, "no-journal", false, "also measure a second Junction with ledger.journal off (junction-nojournal), to see what the durable ledger costs")
	flag.Parse()
	if s.Concurrency < 1 || s.Duration <= 0 || s.Warmup < 0 || s.Unloaded < 0 || s.Chunks < 1 || s.Rounds < 1 {
		fail(errors.New("-c, -duration, -rounds and -chunks must be positive; -warmup and -unloaded must not be negative"))
	}
	for _, path := range []string{s.cpuprofile, s.trace} {
		if path == "" {
			continue
		}
		if !s.inproc {
			fail(errors.New("-cpuprofile and -trace observe this process: add -inproc so that Junction runs in it"))
		}
		s.Rounds = 1 // one profile or trace per scenario
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			fail(err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *governanceLane {
		runGovernanceLane(ctx, &s)
		return
	}
	if *openStreams > 0 {
		runStreamSoak(ctx, &s)
		return
	}
	rep, err := run(ctx, &s)
	if err != nil {
		fail(err)
	}
	rep.print(os.Stdout)
	if s.out != "" {
		if err := rep.write(s.out); err != nil {
			fail(err)
		}
		fmt.Printf("\nresults written to %s\n", s.out)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// run starts the fake, Junction and the reference proxy, measures every
// scenario in turn and checks the ledger.
func run(ctx context.Context, s *settings) (*report, error) {
	s.Seconds, s.WarmupS, s.UnloadedS = s.Duration.Seconds(), s.Warmup.Seconds(), s.Unloaded.Seconds()
	dir, err := os.MkdirTemp("", "junction-bench-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if s.keep {
			progress("kept %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()

	var stops []func() error // of the Junctions beside the measured one
	upstream, stopFake, err := startFake(s.Chunks)
	if err != nil {
		return nil, err
	}
	defer stopFake()

	var gw *gateway
	var others []target // more Junctions beside the measured one
	if s.inproc {
		s.Gateway = "in-process (-inproc)"
		gw, err = startInProcess(ctx, dir, upstream)
	} else {
		s.Gateway = "child process (junction serve)"
		bin := s.bin
		if bin == "" {
			progress("building ./cmd/junction")
			if bin, err = buildJunction(ctx, dir); err != nil {
				return nil, err
			}
		}
		gw, err = startProcess(ctx, bin, dir, upstream, s.GatewayProcs, "")
		// another starts a second Junction from bin, with extraYAML in its
		// config, as target name (and name-governed with -governed).
		another := func(name, bin, extraYAML string) error {
			odir := filepath.Join(dir, name)
			if err := os.MkdirAll(odir, 0o700); err != nil {
				return err
			}
			g, err := startProcess(ctx, bin, odir, upstream, s.GatewayProcs, extraYAML)
			if err != nil {
				return fmt.Errorf("starting %s: %w", name, err)
			}
			stops = append(stops, g.stop)
			others = append(others, target{name: name, url: g.URL, pid: g.pid})
			if s.Governed {
				key, err := governedKey(ctx, g.URL)
				if err != nil {
					return err
				}
				others = append(others, target{name: name + "-governed", url: g.URL, pid: g.pid, key: key, model: governedModel, tags: governedTags})
			}
			return nil
		}
		if err == nil && s.NoJournal {
			err = another("junction-nojournal", bin, "ledger: {journal: false}\n")
		}
		if err == nil && s.Before != "" {
			err = another("before", s.Before, "")
		}
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	if err != nil {
		if gw != nil {
			gw.stop()
		}
		return nil, fmt.Errorf("starting junction: %w", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			gw.stop()
		}
	}()
	targets := []target{{name: "direct", url: upstream}}
	if s.Reference {
		ref, err := startReferenceProxy(ctx, dir, upstream, s.GatewayProcs)
		if err != nil {
			return nil, fmt.Errorf("starting the reference proxy: %w", err)
		}
		defer ref.stop()
		targets = append(targets, target{name: "proxy", url: ref.URL, pid: ref.pid})
	}
	targets = append(targets, target{name: "junction", url: gw.URL, pid: gw.pid})
	if s.Governed {
		key, err := governedKey(ctx, gw.URL)
		if err != nil {
			return nil, err
		}
		targets = append(targets, target{name: "junction-governed", url: gw.URL, pid: gw.pid, key: key, model: governedModel, tags: governedTags})
	}
	targets = append(targets, others...)

	rep := newReport(s)
	rep.LoadAverage = []string{loadAvg()}
	type pass struct {
		c        int
		duration time.Duration
		warmup   time.Duration
	}
	passes := []pass{{s.Concurrency, s.Duration, s.Warmup}}
	if s.Unloaded > 0 && s.Concurrency != 1 {
		passes = append(passes, pass{1, s.Unloaded, min(s.Warmup, time.Second)})
	}
	sentThrough := 0
	for _, p := range passes {
		l := &load{chunks: s.Chunks, c: p.c}
		for _, stream := range []bool{false, true} {
			ms := make([]*measurement, len(targets))
			for i, t := range targets {
				sc := scenario{Name: kind(stream) + "-" + t.name, Via: t.name, Stream: stream, URL: t.url + "/v1/chat/completions", pid: t.pid,
					key: cmp.Or(t.key, adminKey), model: cmp.Or(t.model, model), tags: t.tags}
				progress("%s at c=%d: %v warmup, then %d × %v", sc.Name, p.c, p.warmup, s.Rounds, p.duration/time.Duration(s.Rounds))
				ms[i] = l.start(ctx, sc, p.warmup)
			}
			// Interleave the targets' slices, each round starting with
			// the next target.
			for round := range s.Rounds {
				for i := range ms {
					m := ms[(i+round)%len(ms)]
					var hook func() func()
					if s.cpuprofile != "" {
						hook = profiler(s.cpuprofile, fmt.Sprintf("%s-c%d", m.sc.Name, p.c))
					}
					if s.trace != "" {
						hook = tracer(s.trace, fmt.Sprintf("%s-c%d", m.sc.Name, p.c))
					}
					m.measure(ctx, p.duration/time.Duration(s.Rounds), hook)
				}
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			for _, m := range ms {
				r := m.result()
				if r.Via == "junction" || r.Via == "junction-governed" {
					sentThrough += r.sent
				}
				rep.Results = append(rep.Results, r)
			}
		}
	}

	// Stopping Junction drains its ledger; every request sent through it
	// must then be on record.
	stopped = true
	if err := gw.stop(); err != nil {
		return nil, fmt.Errorf("stopping junction: %w", err)
	}
	n, err := ledgerRecords(ctx, gw.dataDir)
	if err != nil {
		return nil, fmt.Errorf("reading the ledger: %w", err)
	}
	rep.Ledger = ledgerCheck{Records: n, Sent: sentThrough}
	rep.LoadAverage = append(rep.LoadAverage, loadAvg())
	rep.compare()
	return rep, nil
}

// target is where a scenario's requests go.
type target struct {
	name string // direct, proxy, junction, junction-governed...
	url  string
	pid  int // the process to take CPU times of; 0 for none
	// key, model and tags are what its requests carry; empty: the admin
	// key, the plain model, no tags.
	key, model, tags string
}

func kind(stream bool) string {
	if stream {
		return "stream"
	}
	return "plain"
}

// profiler returns a measure hook that writes a CPU profile of the
// measured phase to path with name inserted before its extension.
func profiler(path, name string) func() func() {
	ext := filepath.Ext(path)
	file := strings.TrimSuffix(path, ext) + "-" + name + ext
	return func() func() {
		f, err := os.Create(file)
		if err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			progress("no CPU profile: %v", err)
			return func() {}
		}
		return func() {
			pprof.StopCPUProfile()
			f.Close()
			progress("CPU profile written to %s", file)
		}
	}
}

// tracer returns a hook that writes a runtime execution trace of one
// measured slice to path with name inserted before its extension.
func tracer(path, name string) func() func() {
	ext := filepath.Ext(path)
	file := strings.TrimSuffix(path, ext) + "-" + name + ext
	return func() func() {
		f, err := os.Create(file)
		if err == nil {
			if err = trace.Start(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			progress("no trace: %v", err)
			return func() {}
		}
		return func() {
			trace.Stop()
			f.Close()
			progress("trace written to %s", file)
		}
	}
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
