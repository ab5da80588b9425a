package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkBatchJob runs one OpenAI batch of n chat records through the
// batch engine against the zero-latency fake, and reports records/s beside
// direct-records/s: the same number of calls sent straight to the fake by
// as many workers as the engine runs (batch.concurrency, 16), in the same
// run. The ratio says how much of the fake's speed the engine keeps. The
// peak heap is sampled while the job runs; comparing sizes shows whether
// memory grows with the input.
//
//	go test -run XXX -bench BatchJob -benchtime 1x ./internal/platform/server
func BenchmarkBatchJob(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			up, j := startBenchJunction(b, "log: {level: warn}")
			direct := directRate(b, up+"/v1/chat/completions", n, 16)
			for range b.N {
				rate, peak := runBenchBatch(b, j, n)
				b.ReportMetric(rate, "records/s")
				b.ReportMetric(direct, "direct-records/s")
				b.ReportMetric(rate/direct, "ratio")
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			}
		})
	}
}

// directRate sends n chat calls to url from workers goroutines and
// returns calls per second.
func directRate(b *testing.B, url string, n, workers int) float64 {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				resp, err := client.Post(url, "application/json", bytes.NewReader(benchPlainBody))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// runBenchBatch uploads n records (generated as they stream), runs them
// as a batch, and returns records/s from its creation (validation included) to completed, and
// the peak heap in use meanwhile.
func runBenchBatch(b *testing.B, j string, n int) (float64, uint64) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		mw.WriteField("purpose", "batch")
		fw, _ := mw.CreateFormFile("file", "bench.jsonl")
		for i := range n {
			fmt.Fprintf(fw, `{"custom_id":"r%d","method":"POST","url":"/v1/chat/completions","body":{"model":"bench-model","messages":[{"role":"user","content":"Say hello."}]}}`+"\n", i)
		}
		mw.Close()
		pw.Close()
	}()
	var file struct{ ID string }
	benchPost(b, j+"/v1/files", mw.FormDataContentType(), pr, &file)
	var batch struct{ ID, Status string }
	benchPost(b, j+"/v1/batches", "application/json",
		bytes.NewReader([]byte(`{"input_file_id":"`+file.ID+`","endpoint":"/v1/chat/completions","completion_window":"24h"}`)), &batch)

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	var got struct {
		Status        string
		RequestCounts struct{ Completed, Failed int64 } `json:"request_counts"`
	}
	start := time.Now()
	for {
		req, _ := http.NewRequest("GET", j+"/v1/batches/"+batch.ID, nil)
		req.Header.Set("Authorization", "Bearer "+benchAdminKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if got.Status == "completed" || got.Status == "failed" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	if got.Status != "completed" || got.RequestCounts.Completed != int64(n) {
		b.Fatalf("batch ended %s with %+v", got.Status, got.RequestCounts)
	}
	return float64(n) / elapsed.Seconds(), peak.Load()
}

func benchPost(b *testing.B, url, contentType string, body io.Reader, out any) {
	req, _ := http.NewRequest("POST", url, body)
	req.Header.Set("Authorization", "Bearer "+benchAdminKey)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(raw, out) != nil {
		b.Fatalf("POST %s: %d %s", url, resp.StatusCode, raw)
	}
}
