package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Goals of the first performance issue, against direct: Junction's own
// cost per request must be tiny.
const (
	goalRPSRatio     = 0.60 // throughput through Junction / direct
	goalAddedP50us   = 200  // added p50 latency of a plain request
	goalChunkDelayUS = 1000 // added delay of a streamed chunk
)

// Goals of issue #21, against the bare proxy in the same run: Junction
// cheaper than a proxy hop, with its governance on.
const (
	goalProxyCPU        = 0.6 // Junction's CPU per plain request / the proxy's
	goalGovernedCPU     = 0.8 // the governed lane's / the proxy's
	goalChunkUS         = 3   // Junction's CPU per streamed chunk beyond the request, µs
	goalGovernedChunkUS = 5   // the governed lane's
	goalAddedP50Ratio   = 0.7 // added p50 at one connection / the proxy's
	laneJunction        = "junction"
	laneGoverned        = "junction-governed"
	proxyLane           = "proxy"
)

// report is one run: the machine, the settings, every scenario and the
// comparisons drawn from them.
type report struct {
	Date    string  `json:"date"`
	Machine machine `json:"machine"`
	// LoadAverage is /proc/loadavg's 1, 5 and 15 minute averages as the
	// measurements start and as they end: how busy the shared machine was.
	LoadAverage []string    `json:"load_average"`
	Settings    *settings   `json:"settings"`
	Results     []Result    `json:"results"`
	Loaded      *comparison `json:"loaded"`
	Unloaded    *comparison `json:"unloaded,omitempty"`
	Goals       []goal      `json:"goals"`
	// VsProxy are each Junction lane's figures against the bare proxy at
	// each concurrency, and ProxyGoals issue #21's goals judged on them.
	VsProxy    []laneFigures `json:"vs_proxy,omitempty"`
	ProxyGoals []goal        `json:"proxy_goals,omitempty"`
	Ledger     ledgerCheck   `json:"ledger"`
}

// laneFigures are one Junction lane's costs against the bare proxy's, at
// one concurrency, all from the same run. CPU figures are the gateway
// process's own (0 with -inproc, where it is not apart); the per-chunk
// cost is (CPU per stream − CPU per plain request) / chunks per stream,
// what a streamed chunk costs beyond the request that carries it. The
// latency ratios are added latency (over direct) against the proxy's.
type laneFigures struct {
	Lane        string  `json:"lane"`
	Concurrency int     `json:"concurrency"`
	CPUPlain    float64 `json:"cpu_per_plain_request_us"`
	ProxyCPU    float64 `json:"proxy_cpu_per_plain_request_us"`
	CPURatio    float64 `json:"cpu_ratio_to_proxy"`
	CPUStream   float64 `json:"cpu_per_stream_us"`
	ProxyStream float64 `json:"proxy_cpu_per_stream_us"`
	CPUChunk    float64 `json:"cpu_per_chunk_us"`
	ProxyChunk  float64 `json:"proxy_cpu_per_chunk_us"`
	AddedP50    float64 `json:"added_p50_us"`
	ProxyAdded  float64 `json:"proxy_added_p50_us"`
	AddedRatio  float64 `json:"added_p50_ratio_to_proxy"`
	ChunkP50    float64 `json:"chunk_delay_added_p50_us"`
	ProxyChunkD float64 `json:"proxy_chunk_delay_added_p50_us"`
	ChunkRatio  float64 `json:"chunk_delay_added_p50_ratio_to_proxy"`
	// KernelPlain and ProxyKernel are the parts of CPUPlain and ProxyCPU
	// spent in the kernel (system calls and the loopback network stack
	// they run), and KernelFloor is ProxyKernel over ProxyCPU: what the
	// ratio to the proxy would be if Junction spent nothing in user space
	// and made the proxy's system calls.
	KernelPlain float64 `json:"kernel_cpu_per_plain_request_us,omitempty"`
	ProxyKernel float64 `json:"proxy_kernel_cpu_per_plain_request_us,omitempty"`
	KernelFloor float64 `json:"kernel_floor_ratio,omitempty"`
	// KernelChunk and ProxyKernelChunk are the kernel's part of CPUChunk
	// and ProxyChunk.
	KernelChunk      float64 `json:"kernel_cpu_per_chunk_us,omitempty"`
	ProxyKernelChunk float64 `json:"proxy_kernel_cpu_per_chunk_us,omitempty"`
}

type machine struct {
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpu_model"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
}

// ledgerCheck compares the usage records Junction wrote with the requests
// sent through it (warmups included).
type ledgerCheck struct {
	Records int `json:"records"`
	Sent    int `json:"requests_sent"`
}

// comparison sets Junction, and the reference proxy, against direct at
// one concurrency.
type comparison struct {
	Concurrency    int    `json:"concurrency"`
	JunctionPlain  delta  `json:"junction_plain"`
	JunctionStream delta  `json:"junction_stream"`
	ProxyPlain     *delta `json:"proxy_plain,omitempty"`
	ProxyStream    *delta `json:"proxy_stream,omitempty"`

	results map[string]*Result // by scenario name
}

// delta is one target against direct: RPSRatio is target/direct, Added
// values are target minus direct in µs. CPURatio is direct's CPU per
// request over the target's (harness and gateway together): the
// throughput ratio the machine would show if these processes had its CPUs
// to themselves. Other work on a shared machine skews RPSRatio in the
// gateways' favour, as a second process wins a second share of the CPUs;
// CPURatio does not move with it.
type delta struct {
	RPSRatio      float64 `json:"rps_ratio"`
	CPURatio      float64 `json:"cpu_ratio,omitempty"`
	AddedP50      float64 `json:"added_p50_us"`
	AddedP90      float64 `json:"added_p90_us"`
	AddedP99      float64 `json:"added_p99_us"`
	TTFTAddedP50  float64 `json:"ttft_added_p50_us,omitempty"`
	TTFTAddedP99  float64 `json:"ttft_added_p99_us,omitempty"`
	ChunkAddedP50 float64 `json:"chunk_delay_added_p50_us,omitempty"`
	ChunkAddedP99 float64 `json:"chunk_delay_added_p99_us,omitempty"`
}

func against(r, direct *Result) delta {
	d := delta{
		RPSRatio: ratio(r.RPS, direct.RPS),
		AddedP50: r.Latency.P50 - direct.Latency.P50,
		AddedP90: r.Latency.P90 - direct.Latency.P90,
		AddedP99: r.Latency.P99 - direct.Latency.P99,
	}
	if r.HarnessCPU > 0 && direct.HarnessCPU > 0 {
		d.CPURatio = direct.HarnessCPU / (r.HarnessCPU + r.GatewayCPU)
	}
	if r.Stream {
		d.TTFTAddedP50 = r.TTFT.P50 - direct.TTFT.P50
		d.TTFTAddedP99 = r.TTFT.P99 - direct.TTFT.P99
		d.ChunkAddedP50 = r.ChunkDelay.P50 - direct.ChunkDelay.P50
		d.ChunkAddedP99 = r.ChunkDelay.P99 - direct.ChunkDelay.P99
	}
	return d
}

// goal is one of the goals and whether this run met it.
type goal struct {
	Name     string  `json:"name"`
	Target   string  `json:"target"`
	Measured float64 `json:"measured"`
	Unit     string  `json:"unit"`
	Met      bool    `json:"met"`
}

func newReport(s *settings) *report {
	return &report{
		Date:     time.Now().UTC().Format(time.RFC3339),
		Settings: s,
		Machine: machine{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), GOMAXPROCS: runtime.GOMAXPROCS(0),
			GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH},
	}
}

// cpuModel is the first "model name" in /proc/cpuinfo, where there is one.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// compare draws the comparisons and judges the goals on the loaded pass.
func (r *report) compare() {
	byC := map[int]*comparison{}
	for i := range r.Results {
		res := &r.Results[i]
		c := byC[res.Concurrency]
		if c == nil {
			c = &comparison{Concurrency: res.Concurrency, results: map[string]*Result{}}
			byC[res.Concurrency] = c
		}
		c.results[res.Scenario] = res
	}
	for _, c := range byC {
		pd, sd := c.results["plain-direct"], c.results["stream-direct"]
		c.JunctionPlain = against(c.results["plain-junction"], pd)
		c.JunctionStream = against(c.results["stream-junction"], sd)
		if p := c.results["plain-proxy"]; p != nil {
			d := against(p, pd)
			c.ProxyPlain = &d
		}
		if p := c.results["stream-proxy"]; p != nil {
			d := against(p, sd)
			c.ProxyStream = &d
		}
	}
	r.Loaded = byC[r.Settings.Concurrency]
	if r.Settings.Concurrency != 1 {
		r.Unloaded = byC[1]
	}
	r.vsProxy(byC)
	jp, js := r.Loaded.JunctionPlain, r.Loaded.JunctionStream
	r.Goals = []goal{
		{Name: "throughput through Junction, plain", Target: fmt.Sprintf(">= %.0f%% of direct", goalRPSRatio*100),
			Measured: round(jp.RPSRatio * 100), Unit: "%", Met: jp.RPSRatio >= goalRPSRatio},
		{Name: "throughput through Junction, streamed", Target: fmt.Sprintf(">= %.0f%% of direct", goalRPSRatio*100),
			Measured: round(js.RPSRatio * 100), Unit: "%", Met: js.RPSRatio >= goalRPSRatio},
		{Name: "added p50 latency, plain", Target: fmt.Sprintf("< %d µs", goalAddedP50us),
			Measured: round(jp.AddedP50), Unit: "µs", Met: jp.AddedP50 < goalAddedP50us},
		{Name: "streamed chunk forwarded (added p99 chunk delay)", Target: fmt.Sprintf("< %d µs", goalChunkDelayUS),
			Measured: round(js.ChunkAddedP99), Unit: "µs", Met: js.ChunkAddedP99 < goalChunkDelayUS},
	}
}

// vsProxy draws each lane's figures against the proxy and judges issue
// #21's goals: CPU at the loaded pass, latency at one connection.
func (r *report) vsProxy(byC map[int]*comparison) {
	chunks := float64(r.Settings.Chunks)
	for _, c := range []int{r.Settings.Concurrency, 1} {
		cmpn := byC[c]
		if cmpn == nil || cmpn.results["plain-"+proxyLane] == nil || (c == 1 && r.Settings.Concurrency == 1 && len(r.VsProxy) > 0) {
			continue
		}
		res := func(kind, via string) *Result { return cmpn.results[kind+"-"+via] }
		pp, ps := res("plain", proxyLane), res("stream", proxyLane)
		pd, sd := res("plain", "direct"), res("stream", "direct")
		for _, lane := range []string{laneJunction, laneGoverned, "before", "before-governed"} {
			jp, js := res("plain", lane), res("stream", lane)
			if jp == nil || js == nil {
				continue
			}
			f := laneFigures{Lane: lane, Concurrency: c,
				CPUPlain: jp.GatewayCPU, ProxyCPU: pp.GatewayCPU, CPURatio: ratio(jp.GatewayCPU, pp.GatewayCPU),
				CPUStream: js.GatewayCPU, ProxyStream: ps.GatewayCPU,
				KernelPlain: round(jp.GatewaySys), ProxyKernel: round(pp.GatewaySys), KernelFloor: ratio(pp.GatewaySys, pp.GatewayCPU),
				AddedP50: jp.Latency.P50 - pd.Latency.P50, ProxyAdded: pp.Latency.P50 - pd.Latency.P50,
				ChunkP50: js.ChunkDelay.P50 - sd.ChunkDelay.P50, ProxyChunkD: ps.ChunkDelay.P50 - sd.ChunkDelay.P50,
			}
			if jp.GatewayCPU > 0 && js.GatewayCPU > 0 {
				f.CPUChunk = round((js.GatewayCPU - jp.GatewayCPU) / chunks)
				f.ProxyChunk = round((ps.GatewayCPU - pp.GatewayCPU) / chunks)
				f.KernelChunk = round((js.GatewaySys - jp.GatewaySys) / chunks)
				f.ProxyKernelChunk = round((ps.GatewaySys - pp.GatewaySys) / chunks)
			}
			f.AddedRatio = ratio(f.AddedP50, f.ProxyAdded)
			f.ChunkRatio = ratio(f.ChunkP50, f.ProxyChunkD)
			r.VsProxy = append(r.VsProxy, f)
		}
	}
	for _, f := range r.VsProxy {
		loaded := f.Concurrency == r.Settings.Concurrency
		at := fmt.Sprintf(" (c=%d)", f.Concurrency)
		if f.Lane != laneJunction && f.Lane != laneGoverned {
			continue // an earlier version's, for comparison
		}
		cpuGoal, chunkGoal := goalProxyCPU, float64(goalChunkUS)
		if f.Lane == laneGoverned {
			cpuGoal, chunkGoal = goalGovernedCPU, goalGovernedChunkUS
		}
		if f.CPUPlain > 0 {
			r.ProxyGoals = append(r.ProxyGoals,
				goal{Name: f.Lane + ": CPU per plain request / proxy's" + at, Target: fmt.Sprintf("<= %.1f", cpuGoal),
					Measured: round2(f.CPURatio), Unit: "x", Met: f.CPURatio <= cpuGoal},
				goal{Name: f.Lane + ": CPU per chunk beyond the request" + at, Target: fmt.Sprintf("<= %.0f µs", chunkGoal),
					Measured: f.CPUChunk, Unit: "µs", Met: f.CPUChunk <= chunkGoal})
		}
		if f.Lane == laneJunction && (!loaded || r.Settings.Concurrency == 1) {
			r.ProxyGoals = append(r.ProxyGoals, goal{Name: f.Lane + ": added p50, plain, / proxy's" + at,
				Target: fmt.Sprintf("<= %.1f", goalAddedP50Ratio), Measured: round2(f.AddedRatio), Unit: "x",
				Met: f.AddedRatio <= goalAddedP50Ratio})
		}
	}
}

func round2(v float64) float64 { return float64(int64(v*100+0.5*sign(v))) / 100 }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func round(v float64) float64 { return float64(int64(v*10+0.5*sign(v))) / 10 }

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}

// print writes the run as readable tables.
func (r *report) print(out io.Writer) {
	s := r.Settings
	fmt.Fprintf(out, "\nJunction bench, %s: %d CPUs (%s), %s\n", r.Date, r.Machine.CPUs, r.Machine.CPUModel, r.Machine.GoVersion)
	fmt.Fprintf(out, "gateway: %s; fake upstream in the harness, %d chunks per stream; load average %s\n", s.Gateway, s.Chunks, strings.Join(r.LoadAverage, " → "))
	r.printPass(out, r.Loaded, fmt.Sprintf("%d connections, %v each after %v warmup", s.Concurrency, s.Duration, s.Warmup))
	if r.Unloaded != nil {
		r.printPass(out, r.Unloaded, fmt.Sprintf("1 connection (no queueing), %v each", s.Unloaded))
	}
	fmt.Fprintf(out, "\nledger: %d records for %d requests sent through Junction", r.Ledger.Records, r.Ledger.Sent)
	if r.Ledger.Records != r.Ledger.Sent {
		fmt.Fprint(out, "  <- MISMATCH")
	}
	fmt.Fprintln(out)

	r.printVsProxy(out)
	printGoals(out, fmt.Sprintf("goals against direct (at %d connections)", s.Concurrency), r.Goals)
}

// printGoals writes goals under a title, each met or not.
func printGoals(out io.Writer, title string, goals []goal) {
	fmt.Fprintf(out, "\n%s\n", title)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-58s\ttarget\tmeasured\tmet\t\n", "goal")
	for _, g := range goals {
		met := "NO"
		if g.Met {
			met = "yes"
		}
		fmt.Fprintf(tw, "%-58s\t%s\t%.2f %s\t%s\t\n", g.Name, g.Target, g.Measured, g.Unit, met)
	}
	tw.Flush()
}

// printVsProxy writes each lane's figures against the bare proxy, and
// issue #21's goals.
func (r *report) printVsProxy(out io.Writer) {
	if len(r.VsProxy) == 0 {
		return
	}
	fmt.Fprintf(out, "\n== against the bare proxy, same run (per-chunk CPU = (stream - plain) / %d chunks)\n\n", r.Settings.Chunks)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "lane\tc\tCPU/plain req\tproxy's\tratio\tCPU/stream\tproxy's\tCPU/chunk\tproxy's\tadded p50\tproxy's\tratio\tadded chunk p50\tproxy's\tratio\t")
	for _, f := range r.VsProxy {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.2fx\t%s\t%s\t%.1fµs\t%.1fµs\t%s\t%s\t%.2fx\t%s\t%s\t%.2fx\t\n", f.Lane, f.Concurrency,
			cpu(f.CPUPlain), cpu(f.ProxyCPU), f.CPURatio, cpu(f.CPUStream), cpu(f.ProxyStream), f.CPUChunk, f.ProxyChunk,
			added(f.AddedP50), added(f.ProxyAdded), f.AddedRatio, added(f.ChunkP50), added(f.ProxyChunkD), f.ChunkRatio)
	}
	tw.Flush()
	fmt.Fprintf(out, "\nin the kernel, per plain request (system calls and the loopback TCP they run); floor = the proxy's kernel time over its CPU\n\n")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "lane\tc\tkernel/plain req\tproxy's\tfloor\tkernel/chunk\tproxy's\t")
	for _, f := range r.VsProxy {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.2fx\t%.1fµs\t%.1fµs\t\n", f.Lane, f.Concurrency, cpu(f.KernelPlain), cpu(f.ProxyKernel), f.KernelFloor,
			f.KernelChunk, f.ProxyKernelChunk)
	}
	tw.Flush()
	printGoals(out, "goals against the bare proxy (issue #21)", r.ProxyGoals)
}

func (r *report) printPass(out io.Writer, c *comparison, title string) {
	fmt.Fprintf(out, "\n== %s\n\n", title)
	targets := []string{"direct", "proxy", "junction", "junction-governed", "before", "before-governed", "junction-nojournal", "junction-nojournal-governed"}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "plain     \treq/s\tvs direct\tby CPU\tp50\tp90\tp99\tCPU/req harness\tCPU/req gateway\terrors\t")
	for _, t := range targets {
		res := c.results["plain-"+t]
		if res == nil {
			continue
		}
		fmt.Fprintf(tw, "%-10s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", t, res.RPS, c.vs(res), c.vsCPU(res),
			dur(res.Latency.P50), dur(res.Latency.P90), dur(res.Latency.P99), cpu(res.HarnessCPU), cpu(res.GatewayCPU), res.Errors)
	}
	for _, t := range targets[1:] {
		if res := c.results["plain-"+t]; res != nil {
			d := against(res, c.results["plain-direct"])
			fmt.Fprintf(tw, "%-10s\t\t\t\t%s\t%s\t%s\t\t\t\t\n", t+" added", added(d.AddedP50), added(d.AddedP90), added(d.AddedP99))
		}
	}
	tw.Flush()

	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "streamed  \tstreams/s\tvs direct\tby CPU\tTTFT p50\tTTFT p99\tfull p50\tfull p99\tchunk delay p50\tchunk delay p99\tCPU/stream harness\tCPU/stream gateway\terrors\t")
	for _, t := range targets {
		res := c.results["stream-"+t]
		if res == nil {
			continue
		}
		fmt.Fprintf(tw, "%-10s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", t, res.RPS, c.vs(res), c.vsCPU(res),
			dur(res.TTFT.P50), dur(res.TTFT.P99), dur(res.Latency.P50), dur(res.Latency.P99),
			dur(res.ChunkDelay.P50), dur(res.ChunkDelay.P99), cpu(res.HarnessCPU), cpu(res.GatewayCPU), res.Errors)
	}
	for _, t := range targets[1:] {
		if res := c.results["stream-"+t]; res != nil {
			d := against(res, c.results["stream-direct"])
			fmt.Fprintf(tw, "%-10s\t\t\t\t%s\t%s\t%s\t%s\t%s\t%s\t\t\t\t\n", t+" added", added(d.TTFTAddedP50), added(d.TTFTAddedP99),
				added(d.AddedP50), added(d.AddedP99), added(d.ChunkAddedP50), added(d.ChunkAddedP99))
		}
	}
	tw.Flush()
	for _, res := range r.Results {
		if res.Concurrency == c.Concurrency && res.FirstError != "" {
			fmt.Fprintf(out, "first error in %s: %s\n", res.Scenario, res.FirstError)
		}
	}
}

// vs is res's throughput against direct's, blank for direct itself.
func (c *comparison) vs(res *Result) string {
	if res.Via == "direct" {
		return ""
	}
	return fmt.Sprintf("%.2fx", ratio(res.RPS, c.results[kind(res.Stream)+"-direct"].RPS))
}

// vsCPU is res's CPU-normalised throughput against direct's (see delta).
func (c *comparison) vsCPU(res *Result) string {
	if res.Via == "direct" {
		return ""
	}
	d := against(res, c.results[kind(res.Stream)+"-direct"])
	if d.CPURatio == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", d.CPURatio)
}

func cpu(us float64) string {
	if us == 0 {
		return "-"
	}
	return dur(us)
}

// dur formats microseconds.
func dur(us float64) string {
	if us >= 10000 || us <= -10000 {
		return fmt.Sprintf("%.1fms", us/1000)
	}
	return fmt.Sprintf("%.0fµs", us)
}

func added(us float64) string {
	if us >= 0 {
		return "+" + dur(us)
	}
	return dur(us)
}

// write saves the report as indented JSON.
func (r *report) write(path string) error { return writeJSON(path, r) }
