package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/junctionhq/junction/internal/testkit/fakeopenai"
)

// scenario is one measured load: a kind of request sent to one target.
type scenario struct {
	Name   string // e.g. "plain-junction"
	Via    string // "direct", "proxy" or "junction"
	Stream bool
	URL    string // the chat-completions URL
	// pid is the gateway's process, for its CPU time; 0 when there is no
	// gateway or it runs in the harness.
	pid int
	// key is the bearer token, model the model asked for, and tags, when
	// set, the X-Junction-Tags header.
	key, model, tags string
}

// load is what every scenario of a run shares.
type load struct {
	chunks int // stamped content chunks each stream must carry
	c      int // concurrent connections
}

// Result is one scenario's measurements.
type Result struct {
	Scenario    string  `json:"scenario"`
	Via         string  `json:"via"`
	Stream      bool    `json:"stream"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	// Requests counts successful requests; Errors the rest (a non-200, a
	// transport error, a body without a finish_reason, a stream without
	// [DONE] or with missing chunks).
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	RPS        float64 `json:"rps"`
	// Latency is the full response time: request sent to body read.
	Latency Dist `json:"latency"`
	// TTFT is the time to the first content chunk of a stream.
	TTFT *Dist `json:"ttft,omitempty"`
	// ChunkDelay is, per content chunk, the client's arrival time minus
	// the fake upstream's send time (both wall clock, one machine).
	ChunkDelay *Dist `json:"chunk_delay,omitempty"`
	// HarnessCPU is the CPU time the harness process (load generator and
	// fake upstream, and Junction with -inproc) used per successful
	// request, in µs; GatewayCPU is the gateway child process's. Both are
	// read from /proc, in 10 ms ticks, and are 0 where not measured.
	HarnessCPU float64 `json:"harness_cpu_us_per_request"`
	GatewayCPU float64 `json:"gateway_cpu_us_per_request,omitempty"`
	// GatewaySys is the part of GatewayCPU spent in the kernel: system
	// calls and the network stack they run.
	GatewaySys float64 `json:"gateway_kernel_cpu_us_per_request,omitempty"`
	// sent counts every request sent, warmup included, failed or not,
	// for checking the ledger.
	sent int
}

// newClient returns a client that keeps exactly c connections open to
// one host, so every scenario runs on c keep-alive connections.
func newClient(c int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			// No proxy: the targets are on loopback.
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        c,
			MaxIdleConnsPerHost: c,
			MaxConnsPerHost:     c,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// measurement is one scenario in progress. Its measured time may come in
// several slices, interleaved with other scenarios', so that a machine
// whose speed drifts (other work on it, thermal limits) slows every
// scenario alike instead of the one that ran at the wrong moment.
type measurement struct {
	l       *load
	sc      scenario
	client  *http.Client
	workers []*worker

	warmupSent          int
	elapsed, cpuH, cpuG time.Duration
	sysG                time.Duration // of cpuG, in the kernel
	cpuOK               bool
}

// start opens sc's connections and warms them up for warmup, discarding
// what is measured.
func (l *load) start(ctx context.Context, sc scenario, warmup time.Duration) *measurement {
	m := &measurement{l: l, sc: sc, client: newClient(l.c), cpuOK: true}
	body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"Say hello."}]}`, sc.model)
	if sc.Stream {
		body = fmt.Sprintf(`{"model":%q,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello."}]}`, sc.model)
	}
	m.workers = make([]*worker, l.c)
	for i := range m.workers {
		m.workers[i] = &worker{l: l, client: m.client, url: sc.URL, body: []byte(body), stream: sc.Stream, key: sc.key, tags: sc.tags}
	}
	if warmup > 0 {
		l.phase(ctx, m.workers, warmup)
		for _, w := range m.workers {
			m.warmupSent += w.sent
			w.reset()
		}
	}
	return m
}

// measure runs one measured slice of d. hook, when set, is called as the
// slice starts and its result when it ends (a CPU profile).
func (m *measurement) measure(ctx context.Context, d time.Duration, hook func() func()) {
	var stop func()
	if hook != nil {
		stop = hook()
	}
	h0, hok := processCPU(0)
	gu0, gs0, gok := processTimes(m.sc.pid)
	m.elapsed += m.l.phase(ctx, m.workers, d)
	h1, _ := processCPU(0)
	gu1, gs1, _ := processTimes(m.sc.pid)
	if stop != nil {
		stop()
	}
	m.cpuOK = m.cpuOK && hok && gok
	m.cpuH += h1 - h0
	m.cpuG += gu1 + gs1 - gu0 - gs0
	m.sysG += gs1 - gs0
}

// result closes the scenario's connections and summarises its slices.
func (m *measurement) result() Result {
	m.client.CloseIdleConnections()
	sc := m.sc
	r := Result{Scenario: sc.Name, Via: sc.Via, Stream: sc.Stream, Concurrency: m.l.c, Seconds: m.elapsed.Seconds(), sent: m.warmupSent}
	var lat, ttft, delay []int64
	for _, w := range m.workers {
		r.sent += w.sent
		r.Requests += len(w.lat)
		r.Errors += w.errs
		if r.FirstError == "" {
			r.FirstError = w.firstErr
		}
		lat = append(lat, w.lat...)
		ttft = append(ttft, w.ttft...)
		delay = append(delay, w.delay...)
	}
	r.RPS = float64(r.Requests) / m.elapsed.Seconds()
	if r.Requests > 0 && m.cpuOK {
		r.HarnessCPU = us(int64(m.cpuH)) / float64(r.Requests)
		if sc.pid != 0 {
			r.GatewayCPU = us(int64(m.cpuG)) / float64(r.Requests)
			r.GatewaySys = us(int64(m.sysG)) / float64(r.Requests)
		}
	}
	r.Latency = summarise(lat)
	if sc.Stream {
		t, d := summarise(ttft), summarise(delay)
		r.TTFT, r.ChunkDelay = &t, &d
	}
	return r
}

// phase runs every worker until d has passed and returns how long it took
// for the last in-flight request to finish.
func (l *load) phase(ctx context.Context, workers []*worker, d time.Duration) time.Duration {
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			pprof.Do(ctx, roleLabel("loadgen"), func(ctx context.Context) {
				for time.Now().Before(deadline) && ctx.Err() == nil {
					w.one(ctx)
				}
			})
		})
	}
	wg.Wait()
	return time.Since(start)
}

// worker sends requests one at a time on its own connection and keeps its
// own samples, so the hot loop shares no locks with other workers.
type worker struct {
	l      *load
	client *http.Client
	url    string
	body   []byte
	stream bool
	// key and tags are the Authorization bearer and X-Junction-Tags.
	key, tags string

	buf bytes.Buffer
	br  *bufio.Reader

	lat, ttft, delay []int64
	errs, sent       int
	firstErr         string
}

func (w *worker) reset() {
	w.lat, w.ttft, w.delay = w.lat[:0], w.ttft[:0], w.delay[:0]
	w.errs, w.sent, w.firstErr = 0, 0, ""
}

func (w *worker) fail(format string, args ...any) {
	w.errs++
	if w.firstErr == "" {
		w.firstErr = fmt.Sprintf(format, args...)
	}
}

var finished = []byte(`"finish_reason":"stop"`)

// one sends one request and records its outcome.
func (w *worker) one(ctx context.Context) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(w.body))
	if err != nil {
		w.fail("%v", err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+w.key)
	if w.tags != "" {
		req.Header.Set("X-Junction-Tags", w.tags)
	}
	w.sent++
	start := time.Now()
	resp, err := w.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			w.fail("%v", err)
		}
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		w.fail("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
		return
	}
	if w.stream {
		w.readStream(resp.Body, start)
		return
	}
	w.buf.Reset()
	if _, err := w.buf.ReadFrom(resp.Body); err != nil {
		w.fail("reading body: %v", err)
		return
	}
	if !bytes.Contains(w.buf.Bytes(), finished) {
		w.fail("body without a finish_reason: %.200s", w.buf.Bytes())
		return
	}
	w.lat = append(w.lat, int64(time.Since(start)))
}

// readStream reads an SSE body, timing each stamped content chunk as it
// arrives.
func (w *worker) readStream(body io.Reader, start time.Time) {
	if w.br == nil {
		w.br = bufio.NewReaderSize(body, 16<<10)
	} else {
		w.br.Reset(body)
	}
	mark := len(w.delay)
	var first time.Duration
	chunks, done := 0, false
	for {
		line, err := w.br.ReadSlice('\n')
		if len(line) > 0 {
			now := time.Now()
			data, ok := bytes.CutPrefix(line, []byte("data: "))
			switch {
			case !ok:
			case bytes.HasPrefix(data, []byte("[DONE]")):
				done = true
			case bytes.HasPrefix(data, []byte(`{"error"`)):
				w.delay = w.delay[:mark]
				w.fail("error event: %.200s", data)
				return
			default:
				if n := fakeopenai.EachSentAt(data, func(sent int64) { w.delay = append(w.delay, now.UnixNano()-sent) }); n > 0 {
					if chunks == 0 {
						first = now.Sub(start)
					}
					chunks += n
				}
			}
		}
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: no chunk of ours is, and the
			// rest of it is read as lines without a "data: " prefix.
			continue
		}
		if err != nil {
			if err != io.EOF {
				w.delay = w.delay[:mark]
				w.fail("reading stream: %v", err)
				return
			}
			break
		}
	}
	switch {
	case !done:
		w.delay = w.delay[:mark]
		w.fail("stream ended without [DONE]")
	case chunks != w.l.chunks:
		w.delay = w.delay[:mark]
		w.fail("stream carried %d stamped words, want %d", chunks, w.l.chunks)
	default:
		w.lat = append(w.lat, int64(time.Since(start)))
		w.ttft = append(w.ttft, int64(first))
	}
}
