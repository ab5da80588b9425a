package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// The open-streams soak (-open-streams N) measures what Junction holds in
// memory for N streams open at once: a slow upstream in the harness
// answers every request with a stream that sends one content chunk every
// -chunk-every for -stream-life, and N clients each keep one stream open
// through Junction, opening the next as soon as one ends. Junction's
// resident set (VmRSS in /proc) is sampled every -sample-every over
// -soak once every stream is open; a flat line is what the issue asks for.
var (
	openStreams = flag.Int("open-streams", 0, "measure memory instead: Junction's RSS with this many streams open at once, over -soak (writes bench/results/streams-latest.json unless -out says otherwise)")
	soakFor     = flag.Duration("soak", 3*time.Minute, "with -open-streams, how long to hold the streams open once all are open")
	chunkEvery  = flag.Duration("chunk-every", time.Second, "with -open-streams, the slow upstream's time between content chunks")
	streamLife  = flag.Duration("stream-life", time.Minute, "with -open-streams, how long one stream lasts before its finish, usage and [DONE]; each client then opens the next")
	sampleEvery = flag.Duration("sample-every", 10*time.Second, "with -open-streams, how often Junction's RSS is read")
)

// soakReport is one open-streams run.
type soakReport struct {
	Date       string  `json:"date"`
	Machine    machine `json:"machine"`
	Streams    int     `json:"open_streams"`
	ChunkEvery string  `json:"chunk_every"`
	StreamLife string  `json:"stream_life"`
	Soak       string  `json:"soak"`
	// IdleRSSMB is Junction's RSS after start, before any stream; OpenRSSMB
	// when the last of the streams opened.
	IdleRSSMB float64 `json:"idle_rss_mb"`
	OpenRSSMB float64 `json:"all_open_rss_mb"`
	// OpenAtStart is how many were open when OpenRSSMB was read.
	OpenAtStart int64 `json:"open_at_reading"`
	// PerStreamKB is (OpenRSS − IdleRSS) / streams.
	PerStreamKB float64 `json:"rss_per_open_stream_kb"`
	// Samples are taken every sample-every during the soak.
	Samples []soakSample `json:"samples"`
	// Growth is the last sample's RSS less the first's, in MB, and
	// SecondHalfGrowth the last's less the one at the soak's half way:
	// what is left once the heap has found its size.
	GrowthMB           float64 `json:"growth_mb"`
	SecondHalfGrowthMB float64 `json:"second_half_growth_mb"`
	MaxRSSMB           float64 `json:"max_rss_mb"`
	// Completed counts streams that ended with [DONE] and every chunk;
	// Errors the rest (excluding those cut by the run's end).
	Completed  int64  `json:"streams_completed"`
	Errors     int64  `json:"stream_errors"`
	FirstError string `json:"first_error,omitempty"`
	LoadAvg    string `json:"load_average"`
}

// soakSample is one reading during the soak. RSS alone follows the Go
// collector's cycle (the heap grows to twice what was live before it is
// collected), so the heap goal (go_memstats_next_gc_bytes: twice the heap
// live after the last collection) and the goroutine count are read from
// Junction's /metrics too: a leak shows as a goal that keeps rising.
type soakSample struct {
	AtS        float64 `json:"at_s"`
	RSSMB      float64 `json:"rss_mb"`
	HeapGoalMB float64 `json:"heap_goal_mb"`
	Goroutines int64   `json:"goroutines"`
	Open       int64   `json:"open_streams"`
	Chunks     int64   `json:"chunks_received"`
}

// slowUpstream streams chunks slowly: one content chunk per every, for
// life, then the finish, the usage chunk and [DONE].
type slowUpstream struct {
	every, life time.Duration
}

func (u *slowUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/readyz" {
		return
	}
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/event-stream")
	const head = `data: {"id":"chatcmpl-soak","object":"chat.completion.chunk","created":1765000000,"model":"bench-upstream","choices":[{"index":0,`
	f := w.(http.Flusher)
	io.WriteString(w, head+`"delta":{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n")
	f.Flush()
	t := time.NewTicker(u.every)
	defer t.Stop()
	// Lives spread over life/2 to 3·life/2, so that streams end and
	// clients open new ones steadily rather than all at once.
	end := time.Now().Add(u.life/2 + rand.N(u.life))
	n := 0
	for time.Now().Before(end) {
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
		n++
		io.WriteString(w, head+`"delta":{"content":"word `+strconv.Itoa(n)+` "},"finish_reason":null}]}`+"\n\n")
		f.Flush()
	}
	io.WriteString(w, head+`"delta":{},"finish_reason":"stop"}]}`+"\n\n")
	io.WriteString(w, `data: {"id":"chatcmpl-soak","object":"chat.completion.chunk","created":1765000000,"model":"bench-upstream","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":`+strconv.Itoa(2*n)+`,"total_tokens":`+strconv.Itoa(9+2*n)+"}}\n\ndata: [DONE]\n\n")
	f.Flush()
}

// rssMB is a process's resident set in MB, from /proc/PID/status.
func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// goMetrics reads the heap goal (MB) and the goroutine count from a
// Junction's /metrics; zeros where it cannot.
func goMetrics(url string) (heapGoalMB float64, goroutines int64) {
	m := readMetrics(url, "go_memstats_next_gc_bytes", "go_goroutines")
	return round(m["go_memstats_next_gc_bytes"] / (1 << 20)), int64(m["go_goroutines"])
}

// readMetrics reads the named unlabelled series from a Junction's
// /metrics; a series it cannot read is absent from the map.
func readMetrics(url string, names ...string) map[string]float64 {
	out := map[string]float64{}
	req, _ := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[name] = f
		}
	}
	return out
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// runStreamSoak is the open-streams soak.
func runStreamSoak(ctx context.Context, s *settings) {
	rep, err := streamSoak(ctx, s, *openStreams)
	if err != nil {
		fail(err)
	}
	rep.print(os.Stdout)
	out := s.out
	if out == defaultOut {
		out = "bench/results/streams-latest.json"
	}
	if out != "" {
		if err := writeJSON(out, rep); err != nil {
			fail(err)
		}
		fmt.Printf("\nresults written to %s\n", out)
	}
}

func streamSoak(ctx context.Context, s *settings, n int) (*soakReport, error) {
	dir, err := os.MkdirTemp("", "junction-soak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	up := &http.Server{Handler: &slowUpstream{every: *chunkEvery, life: *streamLife}, ReadHeaderTimeout: 10 * time.Second}
	go up.Serve(ln)
	defer up.Close()
	bin := s.bin
	if bin == "" {
		progress("building ./cmd/junction")
		if bin, err = buildJunction(ctx, dir); err != nil {
			return nil, err
		}
	}
	gw, err := startProcess(ctx, bin, filepath.Join(dir), "http://"+ln.Addr().String(), s.GatewayProcs, "")
	if err != nil {
		return nil, err
	}
	defer gw.stop()

	rep := &soakReport{Date: time.Now().UTC().Format(time.RFC3339), Machine: newReport(s).Machine, Streams: n,
		ChunkEvery: chunkEvery.String(), StreamLife: streamLife.String(), Soak: soakFor.String()}
	rep.IdleRSSMB = round(rssMB(gw.pid))

	client := newClient(n)
	client.Timeout = 0 // streams outlive any fixed timeout
	var open, started, chunks, completed, errs atomic.Int64
	var firstErr atomic.Value
	body := []byte(fmt.Sprintf(`{"model":%q,"stream":true,"messages":[{"role":"user","content":"Count slowly."}]}`, model))
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	one := func(first bool) {
		req, _ := http.NewRequestWithContext(cctx, http.MethodPost, gw.URL+"/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+adminKey)
		fail := func(err error) {
			if cctx.Err() == nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}
		// A stream is open from its request on: Junction holds it while it
		// waits for the first token, before the client sees headers.
		open.Add(1)
		defer open.Add(-1)
		if first {
			started.Add(1)
		}
		resp, err := client.Do(req)
		if err != nil {
			fail(err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
			fail(fmt.Errorf("HTTP %d: %s", resp.StatusCode, b))
			return
		}
		br := bufio.NewReader(resp.Body)
		done := false
		for {
			line, err := br.ReadSlice('\n')
			if bytes.HasPrefix(line, []byte("data: [DONE]")) {
				done = true
			} else if bytes.Contains(line, []byte(`"content":"word `)) {
				chunks.Add(1)
			}
			if err != nil {
				break
			}
		}
		if !done {
			fail(fmt.Errorf("stream ended without [DONE]"))
			return
		}
		completed.Add(1)
	}
	var wg sync.WaitGroup
	// Open the streams over about ten seconds.
	ramp := 10 * time.Second
	progress("opening %d streams over %v through %s (chunk every %v, %v each)", n, ramp, gw.URL, *chunkEvery, *streamLife)
	for i := range n {
		wg.Go(func() {
			time.Sleep(ramp * time.Duration(i) / time.Duration(n))
			for first := true; cctx.Err() == nil; first = false {
				one(first)
			}
		})
	}
	deadline := time.Now().Add(2 * time.Minute)
	for started.Load() < int64(n) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			cancel()
			wg.Wait()
			return nil, fmt.Errorf("only %d of %d streams open after 2 minutes (errors %d: %v)", open.Load(), n, errs.Load(), firstErr.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep.OpenRSSMB = round(rssMB(gw.pid))
	rep.OpenAtStart = open.Load()
	rep.PerStreamKB = round((rep.OpenRSSMB - rep.IdleRSSMB) * 1024 / float64(max(rep.OpenAtStart, 1)))
	progress("%d open: RSS %.1f MB (idle %.1f MB); soaking %v", rep.OpenAtStart, rep.OpenRSSMB, rep.IdleRSSMB, *soakFor)
	start := time.Now()
	for {
		goal, gor := goMetrics(gw.URL)
		rep.Samples = append(rep.Samples, soakSample{AtS: round(time.Since(start).Seconds()), RSSMB: round(rssMB(gw.pid)),
			HeapGoalMB: goal, Goroutines: gor, Open: open.Load(), Chunks: chunks.Load()})
		last := rep.Samples[len(rep.Samples)-1]
		progress("%5.0fs: RSS %.1f MB, heap goal %.1f MB, %d goroutines, %d open, %d chunks", last.AtS, last.RSSMB, last.HeapGoalMB, last.Goroutines, last.Open, last.Chunks)
		if time.Since(start) >= *soakFor || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(*sampleEvery, *soakFor-time.Since(start))):
		}
	}
	last := rep.Samples[len(rep.Samples)-1].RSSMB
	rep.GrowthMB = round(last - rep.Samples[0].RSSMB)
	rep.SecondHalfGrowthMB = round(last - rep.Samples[len(rep.Samples)/2].RSSMB)
	for _, sm := range rep.Samples {
		rep.MaxRSSMB = max(rep.MaxRSSMB, sm.RSSMB)
	}
	rep.LoadAvg = loadAvg()
	cancel()
	wg.Wait()
	rep.Completed, rep.Errors = completed.Load(), errs.Load()
	if e, ok := firstErr.Load().(string); ok {
		rep.FirstError = e
	}
	return rep, ctx.Err()
}

func (r *soakReport) print(out io.Writer) {
	fmt.Fprintf(out, "\nJunction open-streams soak, %s: %d CPUs (%s), load average at the end %s\n", r.Date, r.Machine.CPUs, r.Machine.CPUModel, r.LoadAvg)
	fmt.Fprintf(out, "%d streams open at once, a chunk every %s, %s each, soaked %s\n", r.Streams, r.ChunkEvery, r.StreamLife, r.Soak)
	fmt.Fprintf(out, "RSS idle %.1f MB, %d open %.1f MB (%.1f KB per open stream); over the soak: max %.1f MB, growth %+.1f MB, in its second half %+.1f MB\n",
		r.IdleRSSMB, r.OpenAtStart, r.OpenRSSMB, r.PerStreamKB, r.MaxRSSMB, r.GrowthMB, r.SecondHalfGrowthMB)
	fmt.Fprintf(out, "streams completed %d, errors %d %s\n\n", r.Completed, r.Errors, r.FirstError)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "at\tRSS\theap goal\tgoroutines\topen\tchunks\t")
	for _, s := range r.Samples {
		fmt.Fprintf(tw, "%.0fs\t%.1f MB\t%.1f MB\t%d\t%d\t%d\t\n", s.AtS, s.RSSMB, s.HeapGoalMB, s.Goroutines, s.Open, s.Chunks)
	}
	tw.Flush()
}
